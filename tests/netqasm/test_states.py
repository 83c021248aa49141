"""Reading states in simulation: ``Node.state(q, group=True)`` (``peek_group``) gives the
joint state of a qubit's entangled group, wherever its parts live (deterministic mode,
two nodes): a Werner pair of fidelity F is F|Phi+><Phi+| + (1 - F)/3 (the other Bell
states), the same matrix from both ends; local groups come back whole; a lone qubit
is 2x2; the state is not disturbed by reading it."""

from __future__ import annotations

import numpy as np
import pytest
import trio

from qnodeos import sdk
from qnodeos.testbed.local import local_network
from tests.conftest import network

NET = """
[nodes.alice]
device = "generic"
qubits = 3
speed = inf
seed = 1
[nodes.bob]
device = "generic"
qubits = 3
speed = inf
seed = 2
[[links]]
nodes = ["alice", "bob"]
model = "depolarise"
fidelity = 0.85
p_success = 0.5
cycle_ns = 1000
seed = 3
"""
F = 0.85
PHI = np.array([1, 0, 0, 1]) / np.sqrt(2)
BELL = [
    np.array([1, 0, 0, 1]) / np.sqrt(2),
    np.array([1, 0, 0, -1]) / np.sqrt(2),
    np.array([0, 1, 1, 0]) / np.sqrt(2),
    np.array([0, 1, -1, 0]) / np.sqrt(2),
]


def werner(f: float) -> np.ndarray:
    rho = f * np.outer(BELL[0], BELL[0])
    for b in BELL[1:]:
        rho = rho + (1 - f) / 3 * np.outer(b, b)
    return rho


async def test_pair_state_is_the_joint_werner_state(autojump_clock: object) -> None:
    got: dict[str, list[np.ndarray]] = {}

    async def end(name: str, peer: str, eps: dict[str, str]) -> None:
        async with sdk.connect(name, app="a", qubits=2, endpoint=eps[name]) as node:
            epr = node.epr_socket(peer, "a")
            if name == "alice":
                (pair,) = await epr.create_keep()
            else:
                (pair,) = await epr.recv_keep()
            assert pair.qubit is not None
            q = pair.qubit.id
            got[name] = [await node.state(q, group=True), await node.state(q)]
            # reading twice changes nothing
            got[name].append(await node.state(q, group=True))
            async with node.block() as b:
                b.wait(0.0)

    async with local_network(network(NET)) as eps, trio.open_nursery() as n:
        n.start_soon(end, "alice", "bob", eps)
        n.start_soon(end, "bob", "alice", eps)
    for name in ("alice", "bob"):
        joint, one, again = got[name]
        assert joint.shape == (4, 4)
        assert np.allclose(joint, werner(F), atol=1e-9), name
        assert np.allclose(one, np.eye(2) / 2, atol=1e-9)
        assert np.allclose(again, joint, atol=1e-12)


async def test_local_groups_and_lone_qubits(autojump_clock: object) -> None:
    async with local_network(network(NET)) as eps:
        async with sdk.connect("alice", app="b", qubits=3, endpoint=eps["alice"]) as node:
            async with node.block() as b:
                q0, q1, q2 = b.qubit(), b.qubit(), b.qubit()
                q0.h()
                q0.cnot(q1)
                q2.x()
            ghz = await node.state(q0.id, group=True)
            lone = await node.state(q2.id, group=True)
    assert ghz.shape == (4, 4)
    assert np.allclose(ghz, np.outer(PHI, PHI), atol=1e-12)
    assert np.allclose(lone, np.diag([0, 1]), atol=1e-12)


@pytest.mark.parametrize("qubits", [6])
async def test_groups_too_large_to_read_are_refused(qubits: int, autojump_clock: object) -> None:
    net = NET.replace("qubits = 3", f"qubits = {qubits}")
    async with local_network(network(net)) as eps:
        async with sdk.connect("alice", app="c", qubits=qubits, endpoint=eps["alice"]) as node:
            async with node.block() as b:
                qs = [b.qubit() for _ in range(qubits)]
                qs[0].h()
                for q in qs[1:]:
                    qs[0].cnot(q)
            with pytest.raises(sdk.BlockError, match="at most 5 qubits"):
                await node.state(qs[0].id, group=True)
            one = await node.state(qs[0].id)
    assert np.allclose(one, np.eye(2) / 2, atol=1e-12)
