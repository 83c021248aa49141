"""A batch that needs several state groups held elsewhere asks for all of them at once
(issue #25): the kept halves of a round's pairs, measured in one block, cost one wait,
not one per pair."""

from __future__ import annotations

from qnodeos.lang import codec
from qnodeos.lang import messages as m
from qnodeos.qdevice.server import ToPeer

from .test_server import Wire


def test_a_batch_asks_for_every_group_it_needs_at_once() -> None:
    for seed in range(4):
        w = Wire(seed=seed)
        for q in range(3):
            w.entangle(f"r{q}", qubit=q)
        w.replies["alice"].clear()
        w.replies["bob"].clear()
        bob = w.q["bob"]
        assert bob.away == {0: "alice", 1: "alice", 2: "alice"}
        ops = [m.PhysOp("meas", (q,)) for q in range(3)]
        outs = bob.handle([b"k", codec.to_device().encode(m.DeviceRequest(seq=99, ops=ops))], 0, 0)
        pulls = [codec.qdevice_peer().decode(o.data) for o in outs if isinstance(o, ToPeer)]
        assert [p.qubit for p in pulls if isinstance(p, m.QPull)] == [
            ("bob", 0), ("bob", 1), ("bob", 2)
        ]
        w.run("bob", outs)
        (reply,) = w.replies["bob"]
        assert isinstance(reply, m.DeviceReply) and reply.error is None
        theirs = [w.measure("alice", q) for q in range(3)]
        assert reply.outcomes == theirs  # Phi+ in Z: the same outcomes at both ends
        assert bob.away == {} and w.q["alice"].groups.ghosts == {} and not bob._asked


def test_a_pull_that_crossed_its_group_gets_no_answer() -> None:
    """A node asks for its qubit's group just as the holder sends it (a chain's
    repeater asks for its half that its neighbour, done swapping, just sent it): the
    group is already on the one ordered channel to the asker, so the holder says
    nothing (a 'not here' would only cost both a message); the asker gets its group."""
    w = Wire()
    w.entangle("r")
    alice, bob = w.q["alice"], w.q["bob"]
    assert bob.away == {0: "alice"}
    enc = codec.qdevice_peer()
    pull = enc.encode(m.QPull(frm="bob", for_node="bob", qubit=("bob", 0)))
    (give,) = [o for o in alice.peer_message(pull, 0.0, 0.0) if isinstance(o, ToPeer)]
    assert isinstance(enc.decode(give.data), m.QGroup)
    assert [o for o in alice.peer_message(pull, 0.0, 0.0) if isinstance(o, ToPeer)] == []
    w.run("alice", [give])
    assert bob.away == {} and bob.groups.slot_here(("bob", 0)) is not None
    # a pull for a qubit it never held, or sent elsewhere, is still answered
    other = enc.encode(m.QPull(frm="bob", for_node="bob", qubit=("bob", 1)))
    (answer,) = [o for o in alice.peer_message(other, 0.0, 0.0) if isinstance(o, ToPeer)]
    assert isinstance(enc.decode(answer.data), m.QNotHere)


def test_groups_that_come_in_one_bundle_are_taken_together() -> None:
    """The groups a batch asked for come back in one bundle (one zmq message): all are
    installed before the batch goes on, so it runs once and gives back every partner
    half (alone at bob once bob's were measured) in the one call, not one per group; a
    frame of the bundle that is no message is dropped and counted, the rest go on."""
    w = Wire(seed=3)
    for q in range(3):
        w.entangle(f"r{q}", qubit=q)
    w.replies["bob"].clear()
    alice, bob = w.q["alice"], w.q["bob"]
    ops = [m.PhysOp("meas", (q,)) for q in range(3)]
    asks = bob.handle([b"k", codec.to_device().encode(m.DeviceRequest(seq=99, ops=ops))], 0, 0)
    pulls = [o.data for o in asks if isinstance(o, ToPeer)]
    gives = [o.data for o in alice.peer_messages(pulls, 0.0, 0.0) if isinstance(o, ToPeer)]
    assert len(gives) == 3
    steps = []
    step = bob._step_batch
    bob._step_batch = lambda *a: steps.append(1) or step(*a)  # type: ignore[method-assign]
    outs = bob.peer_messages([gives[0], b"\xc1", *gives[1:]], 0.0, 0.0)
    assert bob.bad.total == 1 and len(steps) == 1  # the batch went on once
    home = [codec.qdevice_peer().decode(o.data) for o in outs if isinstance(o, ToPeer)]
    assert [g.qubits for g in home if isinstance(g, m.QGroup)] == [
        [("alice", 0)], [("alice", 1)], [("alice", 2)]
    ]
    w.run("bob", outs)
    (reply,) = w.replies["bob"]
    assert isinstance(reply, m.DeviceReply) and reply.error is None
    assert reply.outcomes == [w.measure("alice", q) for q in range(3)]
    assert bob.away == {} and alice.away == {} and alice.groups.ghosts == {}
