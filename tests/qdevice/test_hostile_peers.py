"""Hostile peers of a quantum process (issue 21), driven in-process.

Identity is not permission: a quantum process moves state only for a node with a
claim on it. alice (hosting the link's station) and bob share a kept pair, whose state
lives in alice's process; mallory is a listed node with no link and no qubit in the
pair, who sends well-formed messages under her own name (as a keyed node would:
identities come from keys, so she cannot pose as alice or bob). Before: a QPull for
bob's qubit, made for mallory, handed her the pair's state (she read bob's half), and a
QGroup with bob's qubit replaced his half (she pushed |0>); 300 forged groups of made-up
qubits grew the register (+307 MB), and 3,000 attempts from the linked peer the station
(+478 MB).
"""

from __future__ import annotations

import numpy as np
import pytest

from qnodeos.lang import codec
from qnodeos.lang import messages as m
from qnodeos.netlink.models import Perfect
from qnodeos.qdevice.server import ToPeer

from .test_server import Wire

ENC = codec.qdevice_peer()


def world() -> Wire:
    w = Wire(Perfect(cycle_ns=100))
    w.entangle("r")  # a kept pair: bob's qubit 0 is away, with alice
    assert w.q["bob"].away == {0: "alice"}
    return w


def from_mallory(w: Wire, to: str, msg: m.QPeer) -> list[ToPeer]:
    outs = w.q[to].peer_message(ENC.encode(msg), 0.0, 0.0)
    return [o for o in outs if isinstance(o, ToPeer)]


def pair_state(w: Wire) -> np.ndarray:
    alice = w.q["alice"]
    slot = alice.groups.slot_here(("bob", 0))
    assert slot is not None
    return alice.device.reg.density_matrix([0, slot])


def test_a_node_cannot_pull_a_state_it_has_no_qubit_in() -> None:
    w = world()
    before = pair_state(w)
    for frm, for_node in (("mallory", "mallory"), ("mallory", "alice")):
        sent = from_mallory(w, "alice", m.QPull(frm=frm, for_node=for_node, qubit=("bob", 0)))
        assert sent == []  # no group, no answer: bob's qubit is not for_node's
    assert w.q["alice"].bad.total == 2
    # asking for bob, its owner, is allowed: the group goes to bob, not to the asker
    sent = from_mallory(w, "alice", m.QPull(frm="mallory", for_node="bob", qubit=("bob", 0)))
    assert [o.node for o in sent] == ["bob"]
    w.run("alice", sent)
    assert w.q["bob"].away == {} and np.allclose(
        w.q["bob"].device.reg.density_matrix([0, w.q["bob"].groups.slot_here(("alice", 0))]),
        before,
    )


@pytest.mark.parametrize("guess", [b"\x00" * 8, b"t" * 8])
def test_a_node_cannot_push_a_state_in_place_of_anothers(guess: bytes) -> None:
    w = world()
    before = pair_state(w)
    zero = np.zeros((2, 2), dtype="<c16")
    zero[0, 0] = 1
    forged = m.QGroup(frm="mallory", qubits=[("bob", 0)], rho=zero.tobytes(), tokens=[guess])
    assert from_mallory(w, "bob", forged) == []
    assert w.q["bob"].away == {0: "alice"} and w.q["bob"].bad.total == 1
    assert np.allclose(pair_state(w), before)  # the pair's state is untouched
    # and stays a Bell pair: measuring both halves agrees, pair after pair
    for _ in range(20):
        w.entangle("again")
        assert w.measure("bob") == w.measure("alice")


def test_200_rounds_of_reads_and_overwrites_disturb_no_outcome() -> None:
    """The issue's statistical check: in each of 200 rounds mallory tries to read the
    pair (pull bob's half for herself, or for alice) and to overwrite bob's half with
    |0> under a random token; bob's and alice's outcomes agree every time. Had one
    push got through, bob would read 0 while alice reads 0 or 1: ~100 disagreements."""
    rng = np.random.default_rng(21)
    zero = np.zeros((2, 2), dtype="<c16")
    zero[0, 0] = 1
    w = world()
    disturbed = ones = 0
    for i in range(200):
        w.entangle(f"round-{i}")
        for for_node in ("mallory", "alice"):
            pull = m.QPull(frm="mallory", for_node=for_node, qubit=("bob", 0))
            assert from_mallory(w, "alice", pull) == []
        token = rng.bytes(8)
        push = m.QGroup(frm="mallory", qubits=[("bob", 0)], rho=zero.tobytes(), tokens=[token])
        assert from_mallory(w, "bob", push) == []
        b, a = w.measure("bob"), w.measure("alice")
        disturbed += a != b
        ones += b
    assert disturbed == 0
    assert 60 <= ones <= 140  # bob's half was never |0>: random outcomes (4 sigma)


def test_forged_groups_of_other_nodes_qubits_never_grow_the_register() -> None:
    w = world()
    bob = w.q["bob"]
    slots = len(bob.device.reg.group_of)
    rho = np.eye(4, dtype="<c16") / 4
    for i in range(300):
        group = m.QGroup(
            frm="mallory",
            qubits=[("mallory", i), ("carol", i)],
            rho=rho.tobytes(),
            tokens=[b"m" * 8, b"c" * 8],
        )
        assert from_mallory(w, "bob", group) == []
    assert bob.groups.ghosts == {} and bob.bad.total == 300
    assert len(bob.device.reg.group_of) == slots  # not one slot more


def test_legit_moves_still_work_both_ways() -> None:
    """The custody token travels with the state: bob pulls his pair home and alice
    pulls it back, any number of times, and the halves stay correlated."""
    w = world()
    for _ in range(5):
        w.run("bob", w.q["bob"]._ask(("bob", 0)))
        assert w.q["bob"].away == {} and w.q["alice"].away == {0: "bob"}
        w.run("alice", w.q["alice"]._ask(("alice", 0)))
        assert w.q["alice"].away == {} and w.q["bob"].away == {0: "alice"}
    assert w.measure("bob") == w.measure("alice")


def test_a_stale_token_is_refused_after_the_state_came_home() -> None:
    """A holder that kept a copy of an old group cannot push it back later: the token
    was spent when the state came home, and a new one is drawn the next time it leaves."""
    w = world()
    alice = w.q["alice"]
    w.hold = True
    w.run("bob", w.q["bob"]._ask(("bob", 0)))  # bob pulls; alice's answer is held
    w.run("alice", alice.peer_message(w.held.pop(0).data, 0.0, 0.0))
    (group_msg,) = w.held
    w.hold = False
    w.release()
    assert w.q["bob"].away == {}
    # the same group again (a replay) is refused: bob's qubit is home
    assert w.q["bob"].peer_message(group_msg.data, 0.0, 0.0) == []
    assert w.q["bob"].bad.total == 1


def test_a_flood_of_attempts_from_the_linked_peer_holds_one_at_the_station() -> None:
    """3,000 attempts with made-up round keys from the linked peer (before: +478 MB):
    each supersedes the one before (answered, to be attempted again), so the station
    and its process hold one attempt of bob's at a time."""
    w = Wire(Perfect(cycle_ns=100))
    alice = w.q["alice"]
    answered = 0
    for i in range(3000):
        att = m.QAttempt(
            frm="bob", key=f"flood-{i}", qubits=list(range(1000)), start_ns=0.0,
            max_attempts=10, expires_s=1e9, epoch_ns=0, pairs=1000, token=b"b" * 8,
        )  # fmt: skip
        answered += len(from_mallory(w, "alice", att))
    station = alice.rounds.stations["bob"]
    assert len(station.pending) == 1 and len(alice.rounds.peer_qubits) == 1
    assert answered == 2999  # every superseded round was answered, to go again
    # and the link still works
    w.entangle("after")
    assert w.measure("bob") == w.measure("alice")
