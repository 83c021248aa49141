"""A state group lost where its owner did not send it (review of the dropped-group
change): along a chain the owner believes its half is with the node it gave it to,
which passed it on; the lost notice must still reach the owner, vouched for by each
node that passed the group on, and a bug on one message of a bundle must not throw
away what the bundle's other messages gave."""

from __future__ import annotations

import pytest

from qnodeos.config.network import LinkConfig
from qnodeos.lang import codec
from qnodeos.lang import messages as m
from qnodeos.netlink.models import Perfect
from qnodeos.qdevice.realtime import _Guard
from qnodeos.qdevice.server import Out, QDeviceServer, ToPeer
from tests.qdevice.test_server import Wire, node


class Chain(Wire):
    """alice - bob - carol, quantum processes only; delivers as ``Wire`` does (``hold``
    keeps the messages between the processes in ``held``)."""

    def __init__(self) -> None:
        links = [
            LinkConfig(nodes=("alice", "bob"), model=Perfect(cycle_ns=100), seed=1),
            LinkConfig(nodes=("bob", "carol"), model=Perfect(cycle_ns=100), seed=2),
        ]
        names = ("alice", "bob", "carol")
        self.q = {
            n: QDeviceServer(node(n, 1 + i), [x for x in links if n in x.nodes])
            for i, n in enumerate(names)
        }
        self.replies = {n: [] for n in names}
        self.enc, self.dec = codec.to_device(), codec.from_device()
        self.seq, self.peer_messages, self.hold = 0, 0, False
        self.held = []
        for n in names:
            self.send(n, m.Ping(seq=0))
            self.replies[n].clear()

    def pair(self, a: str, b: str, key: str, qa: int, qb: int) -> None:
        for n, peer, q in ((b, a, qb), (a, b, qa)):
            self.seq += 1
            self.send(
                n,
                m.Entangle(
                    seq=self.seq, peer=peer, key=key, qubits=[q], max_attempts=10,
                    expires_s=60.0, pairs=1,
                ),
            )

    def ops(self, at: str, *ops: tuple[str, tuple[int, ...]]) -> None:
        self.seq += 1
        self.send(at, m.DeviceRequest(seq=self.seq, ops=[m.PhysOp(*o) for o in ops]))


def _swapped_then_dropped() -> tuple[Chain, str, ToPeer]:
    """bob swaps; alice measures (pulling the group from bob); the group with carol's
    half, on its way home from alice, is dropped unsent. Returns where it was dropped
    and the dropped message."""
    w = Chain()
    w.pair("alice", "bob", "r1", 0, 0)  # (alice 0, bob 0) lives at alice
    w.pair("bob", "carol", "r2", 1, 0)  # (bob 1, carol 0) lives at bob
    w.ops("bob", ("cnot", (0, 1)), ("h", (0,)), ("meas", (0,)), ("meas", (1,)))  # swap
    assert w.q["carol"].groups.away == {0: "bob"}
    w.hold = True
    w.ops("alice", ("meas", (0,)))  # pulls the group from bob; carol's half goes home
    dropped = None
    while w.held:
        held, w.held = w.held, []
        for o in held:
            msg = w.q["alice"].peer_codec.decode(o.data)
            if isinstance(msg, m.QGroup) and o.node == "carol":
                dropped = (msg.frm, o)
            else:
                w.run(o.node, w.q[o.node].peer_message(o.data, 0.0, 0.0))
    assert dropped is not None
    w.hold = False
    return w, dropped[0], dropped[1]


def test_the_owner_learns_of_a_loss_where_its_holder_passed_the_group_on() -> None:
    w, here, o = _swapped_then_dropped()
    carol = w.q["carol"]
    assert here == "alice" and carol.groups.away == {0: "bob"}  # carol never heard of alice
    w.run(here, w.q[here].undelivered("carol", o.data, 0.0, 0.1))
    assert not carol.groups.lost  # alice's own word is not enough: carol gave it to bob
    w.replies["carol"].clear()
    w.ops("carol", ("meas", (0,)))  # asks bob; bob passes the ask on; alice answers bob
    (reply,) = w.replies["carol"]
    assert isinstance(reply, m.DeviceReply) and reply.error is not None
    assert "lost" in reply.error and "'bob'" in reply.error and "dropped" in reply.error
    assert ("carol", 0) in w.q["bob"].groups.dropped  # bob now answers for it himself


def test_a_waiting_owner_asks_again_at_once_when_told_by_another_node() -> None:
    w, here, o = _swapped_then_dropped()
    carol = w.q["carol"]
    w.hold = True
    w.replies["carol"].clear()
    w.ops("carol", ("meas", (0,)))  # carol waits on bob (its ask is held)
    w.held.clear()
    w.hold = False
    w.run(here, w.q[here].undelivered("carol", o.data, 0.0, 0.1))
    w.run("carol", carol.timer(0.0, 0.2))  # the hint: carol asks bob again now
    (reply,) = w.replies["carol"]
    assert isinstance(reply, m.DeviceReply) and reply.error is not None and "lost" in reply.error


def test_only_the_node_a_group_was_given_to_can_say_it_is_lost_there() -> None:
    w = Chain()
    w.pair("alice", "bob", "r1", 0, 0)
    w.pair("bob", "carol", "r2", 1, 0)
    w.ops("bob", ("cnot", (0, 1)), ("h", (0,)), ("meas", (0,)), ("meas", (1,)))
    bob = w.q["bob"]
    forged = m.QNotHere(frm="alice", qubit=("carol", 0), lost="made up")
    assert bob.peer_message(bob.peer_codec.encode(forged), 0.0, 0.0) == []
    assert ("carol", 0) not in bob.groups.dropped  # bob still holds it: nothing lost


def test_a_bug_on_one_message_of_a_bundle_keeps_the_others_work(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    w = Wire()
    w.entangle("r")  # (alice 0, bob 0) lives at alice
    alice = w.q["alice"]
    codec_ = alice.peer_codec
    pull = codec_.encode(m.QPull(frm="bob", for_node="bob", qubit=("bob", 0)))
    ping = codec_.encode(m.QPing(frm="bob", proc=None))
    real = alice._peer_message

    def flaky(msg: m.QPeer, *a: float) -> list[Out]:
        if isinstance(msg, m.QPing):
            raise RuntimeError("a bug")
        return real(msg, *a)

    monkeypatch.setattr(alice, "_peer_message", flaky)
    outs = _Guard()(alice.peer_messages, [pull, ping], 0.0, 0.0, None)
    assert any(isinstance(alice.peer_codec.decode(o.data), m.QGroup) for o in outs)  # type: ignore[union-attr]
    assert alice.internal_errors == 1


def test_in_one_process_a_bug_in_a_bundle_still_ends_the_run(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Deterministic mode fails fast: the per-message catch must not swallow the bug."""
    w = Wire()
    alice = w.q["alice"]
    alice.fail_fast = True
    ping = alice.peer_codec.encode(m.QPing(frm="bob", proc=None))

    def broken(msg: m.QPeer, *a: float) -> list[Out]:
        raise RuntimeError("a bug")

    monkeypatch.setattr(alice, "_peer_message", broken)
    with pytest.raises(RuntimeError, match="a bug"):
        alice.peer_messages([ping], 0.0, 0.0, None)
