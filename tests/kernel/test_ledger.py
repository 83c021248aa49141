"""The pair ledger, sans-IO: a pair is kept by both apps or voided at both ends."""

from __future__ import annotations

import gc

from qnodeos.kernel.ledger import Ledger
from qnodeos.kernel.outputs import Out, ToApp, ToNode
from qnodeos.lang import messages as m


def pairs(*seqs: int) -> list[m.EprPair]:
    return [
        m.EprPair(ent_id=("alice", "bob", s), bell_index=0, goodness=1.0, attempts=1, at_ns=0)
        for s in seqs
    ]


def test_acknowledged_pairs_are_confirmed_to_the_other_end() -> None:
    led = Ledger("alice")
    led.delivered(1, b"A", 7, "bob", pairs(1, 2, 3))
    (confirm,) = led.acked(1, 7, 2)
    assert isinstance(confirm, ToNode) and confirm.node == "bob"
    assert isinstance(confirm.msg, m.Egp) and confirm.msg.msg == m.EgpConfirm(seqs=[1, 2])
    (confirm,) = led.acked(1, 7, 3)
    assert isinstance(confirm.msg, m.Egp) and confirm.msg.msg == m.EgpConfirm(seqs=[3])
    assert led.deliveries == {}
    assert led.acked(1, 7, 3) == []  # a repeated ack changes nothing


def test_the_app_hears_a_pair_is_settled_once_it_acked_and_the_other_end_confirmed() -> None:
    def settled(out: list[Out]) -> list[list[tuple[str, str, int]]]:
        return [
            o.msg.ent_ids for o in out if isinstance(o, ToApp) and isinstance(o.msg, m.EprConfirmed)
        ]

    led = Ledger("alice")
    led.confirmed("bob", [3])  # early: before our node handed pair 3 out
    led.delivered(1, b"A", 7, "bob", pairs(1, 2, 3))
    assert settled(led.confirmed("bob", [1])[0]) == []  # our app has not acked it yet
    assert settled(led.acked(1, 7, 3)) == [[("alice", "bob", 1), ("alice", "bob", 3)]]
    (told,) = led.confirmed("bob", [2])[0]  # acked already: settled at once
    assert told == ToApp(b"A", m.EprConfirmed(req=7, ent_ids=[("alice", "bob", 2)]))


def test_pairs_the_app_never_acknowledged_are_expired_when_it_goes() -> None:
    led = Ledger("alice")
    led.delivered(1, b"A", 7, "bob", pairs(1, 2, 3))
    led.acked(1, 7, 1)
    led.delivered(2, b"B", 9, "bob", pairs(4))
    void, (told,) = led.app_gone(1, "gone")
    assert void == {"bob": [2, 3]}
    # the app is told too: it may still read those pairs from its socket
    assert told == ToApp(
        b"A", m.EprExpired(req=7, ent_ids=[("alice", "bob", 2), ("alice", "bob", 3)], reason="gone")
    )
    # the other app's pair is untouched
    out, missing = led.expired("bob", [4], "gone")
    assert missing == [] and len(out) == 1


def test_the_other_end_going_away_voids_what_it_never_confirmed() -> None:
    led = Ledger("alice")
    led.delivered(1, b"A", 7, "bob", pairs(1, 2, 3))
    led.confirmed("bob", [1, 3])
    (told,), seqs = led.peer_down("bob", "bob stopped answering")
    assert seqs == [2]
    assert isinstance(told, ToApp) and told.addr == b"A"
    assert told.msg == m.EprExpired(
        req=7, ent_ids=[("alice", "bob", 2)], reason="bob stopped answering"
    )


def test_confirmations_and_expiries_that_arrive_first_are_kept() -> None:
    led = Ledger("alice")
    led.confirmed("bob", [5])  # bob's app got pair 5 before our node handed it out
    out, missing = led.expired("bob", [6], "gone")
    assert out == [] and missing == [6]
    led.remember_expired("bob", missing, "gone")
    assert led.void_early("bob", 6) == "gone" and led.void_early("bob", 6) is None
    led.delivered(1, b"A", 7, "bob", pairs(5))
    assert led.peer_down("bob", "down") == ([], [])  # 5 was confirmed: nothing to void


def test_an_expiry_wins_over_the_other_ends_earlier_confirmation() -> None:
    """bob (paused) confirmed pair 1 for its app, then lost contact with us before our
    app acknowledged it, and voided it: our app is told, although bob confirmed it."""
    led = Ledger("alice")
    led.confirmed("bob", [1])  # bob's confirmation arrives before we hand the pair out
    led.delivered(1, b"A", 7, "bob", pairs(1, 2))
    (told,), missing = led.expired("bob", [1], "bob lost contact")
    assert missing == []
    assert told == ToApp(
        b"A", m.EprExpired(req=7, ent_ids=[("alice", "bob", 1)], reason="bob lost contact")
    )
    # what we voided ourselves is not told twice
    (told,), seqs = led.peer_down("bob", "bob stopped answering")
    assert seqs == [2]
    assert led.expired("bob", [2], "again") == ([], [2])


def test_the_records_of_pairs_handed_out_are_not_walked_by_the_garbage_collector() -> None:
    """A ledger keeps up to 200,000 records per link: were the cyclic collector to
    track them, it would walk them all again and again (most of a node's CPU per
    measured pair, in py-spy)."""
    led = Ledger("alice")
    led.delivered(1, b"A", 7, "bob", pairs(1, 2))
    held = led.handed["bob"][1]
    assert not gc.is_tracked(held) and held is led.open["bob"][1]
    led.acked(1, 7, 1)
    assert held.acked and not gc.is_tracked(held)
