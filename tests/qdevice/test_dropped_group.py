"""A state group whose message is dropped, never sent (the receiving quantum process
took no message for ``SEND_GIVE_UP_S``: ``realtime.py`` then calls ``undelivered``):
its state is lost at both ends, and both say so at once instead of waiting in silence
(before, the puller asked on and heard nothing until its holder was judged hung, 30 s,
and the sender's own half of the pair waited as long)."""

from __future__ import annotations

import pytest

from qnodeos.lang import messages as m
from qnodeos.qdevice.server import PULL_GIVE_UP_S, ToPeer
from tests.qdevice.test_server import Wire


def dropped_pull(w: Wire) -> tuple[ToPeer, m.DeviceReply | None]:
    """bob measures his half of a pair that lives at alice: his pull reaches alice, and
    the state group alice sends back is dropped. Returns alice's group message (not
    delivered) and bob's reply, if one came."""
    w.entangle("r")
    w.replies["bob"].clear()
    w.hold = True
    w.seq += 1
    w.send("bob", m.DeviceRequest(seq=w.seq, ops=[m.PhysOp("meas", (0,))]))
    (pull,) = w.held
    assert isinstance(w.q["alice"].peer_codec.decode(pull.data), m.QPull)
    w.held.clear()
    w.run("alice", w.q["alice"].peer_message(pull.data, 0.0, 0.0))  # (held, not sent)
    (group,) = w.held
    assert isinstance(w.q["alice"].peer_codec.decode(group.data), m.QGroup)
    w.held.clear()
    w.hold = False
    reply = w.replies["bob"][-1] if w.replies["bob"] else None
    assert reply is None or isinstance(reply, m.DeviceReply)
    return group, reply


def test_a_dropped_group_fails_the_pullers_op_and_the_senders_half_with_a_clear_error() -> None:
    w = Wire()
    group, reply = dropped_pull(w)
    assert reply is None  # bob waits for the group
    alice = w.q["alice"]
    w.run("alice", alice.undelivered("bob", group.data, 0.0, 0.1))  # the drop: bob is told
    (told,) = w.replies["bob"]
    assert isinstance(told, m.DeviceReply)
    assert told.error is not None and "the state of qubit 0 is lost" in told.error
    assert "dropped, never sent" in told.error and "'alice'" in told.error
    # alice's half was in the group too: an op on it fails at once, saying why
    w.seq += 1
    w.send("alice", m.DeviceRequest(seq=w.seq, ops=[m.PhysOp("meas", (0,))]))
    mine = w.replies["alice"][-1]
    assert isinstance(mine, m.DeviceReply) and mine.error is not None
    assert "qubit 0 is lost" in mine.error and "'bob''s quantum process, which never got it" in (
        mine.error
    )
    # and each starts over once it initialises the qubit
    for n in ("alice", "bob"):
        w.seq += 1
        w.send(n, m.DeviceRequest(seq=w.seq, ops=[m.PhysOp("init", (0,)), m.PhysOp("meas", (0,))]))
        ok = w.replies[n][-1]
        assert isinstance(ok, m.DeviceReply) and ok.error is None and ok.outcomes[-1] == 0


def test_a_puller_that_missed_the_news_hears_it_when_it_asks_again(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The notice to bob may be lost as well (its process still takes nothing): when
    bob asks again (past ``PULL_GIVE_UP_S``), alice answers that the group is lost, and
    bob's op fails then, not after the 30 s a hung holder is given."""
    w = Wire()
    group, _ = dropped_pull(w)
    w.hold = True
    w.run("alice", w.q["alice"].undelivered("bob", group.data, 0.0, 0.1))
    w.held.clear()  # the notice is dropped too
    assert not w.replies["bob"]
    bob = w.q["bob"]
    monkeypatch.setattr(bob.live, "alive", lambda peer: peer == "alice")  # (the OS says)
    w.run("bob", bob.timer(0.0, PULL_GIVE_UP_S + 0.5))  # alice is alive: ask again
    w.release()
    (told,) = w.replies["bob"]
    assert isinstance(told, m.DeviceReply)
    assert told.error is not None and "lost" in told.error and "dropped, never sent" in told.error


def test_the_lost_notice_round_trips_and_a_forged_one_changes_nothing() -> None:
    """Only the node holding our qubit's group can say it is lost."""
    w = Wire()
    codec = w.q["alice"].peer_codec
    msg = m.QNotHere(frm="alice", qubit=("bob", 0), lost="dropped")
    assert codec.decode(codec.encode(msg)) == msg
    assert codec.decode(codec.encode(m.QNotHere(frm="a", qubit=("b", 1)))).lost == ""
    w.entangle("r")  # bob's half lives at alice
    bob = w.q["bob"]
    forged = m.QNotHere(frm="carol", qubit=("bob", 0), lost="dropped")
    assert bob.peer_message(codec.encode(forged), 0.0, 0.0, None) == []
    assert bob.groups.away == {0: "alice"} and not bob.groups.lost


def test_a_new_pair_on_a_lost_qubit_is_not_reported_lost() -> None:
    """Once the qubit starts over and a new pair's state is at alice again, the old
    loss is forgotten there (were the new group passed on, a pull for it must not be
    told it is lost), and bob's pull gets the new group."""
    w = Wire()
    group, _ = dropped_pull(w)
    w.run("alice", w.q["alice"].undelivered("bob", group.data, 0.0, 0.1))
    w.replies["bob"].clear()
    for n in ("alice", "bob"):
        w.seq += 1
        w.send(n, m.DeviceRequest(seq=w.seq, ops=[m.PhysOp("init", (0,))]))
    w.entangle("r2")
    assert ("bob", 0) in w.q["alice"].groups.ghosts
    assert ("bob", 0) not in w.q["alice"].groups.dropped
    assert w.q["bob"].groups.away == {0: "alice"}
    a, b = w.measure("bob"), w.measure("alice")
    assert a == b
