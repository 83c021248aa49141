"""A NetQASM app gets end-to-end pairs from a non-neighbour unchanged: the subroutines
netqasm's builder emits (tests/netqasm/test_epr.py), run on a chain alice - rep - bob
in deterministic mode, with no app at the repeater."""

from __future__ import annotations

import trio

from qnodeos import sdk
from qnodeos.lang import messages as m
from qnodeos.testbed.local import local_network
from tests.conftest import network
from tests.netqasm.test_epr import RECV, RECV_KEEP_MEASURE, N, create, ints

CHAIN = """
[nodes.alice]
device = "generic"
qubits = 3
speed = inf
seed = 1
[nodes.rep]
device = "generic"
qubits = 3
speed = inf
seed = 5
[nodes.bob]
device = "generic"
qubits = 3
speed = inf
seed = 2
[[links]]
nodes = ["alice", "rep"]
model = "perfect"
cycle_ns = 1000
seed = 3
[[links]]
nodes = ["rep", "bob"]
model = "perfect"
cycle_ns = 1000
seed = 4
"""

Values = dict[str, object]


async def exchange(alice_code: str, bob_code: str) -> tuple[Values, Values]:
    got: dict[str, Values] = {}

    async def go(s: sdk.Node, code: str, sock: m.NqSocket, who: str) -> None:
        got[who] = dict(await s.run_netqasm(code, sockets=[sock]))

    async with local_network(network(CHAIN)) as eps:
        async with (
            sdk.connect("alice", app="c", qubits=1, endpoint=eps["alice"]) as a,
            sdk.connect("bob", app="r", qubits=1, endpoint=eps["bob"]) as b,
            trio.open_nursery() as n,
        ):
            n.start_soon(go, a, alice_code, m.NqSocket(id=0, node_id=1, node="bob", app="r"), "a")
            n.start_soon(go, b, bob_code, m.NqSocket(id=0, node_id=0, node="alice", app="c"), "b")
    return got["a"], got["b"]


async def test_netqasm_measured_pairs_over_a_repeater_agree_in_z(autojump_clock: object) -> None:
    va, vb = await exchange(create(1, 0, 0), RECV)
    ra, rb = ints(va["@0"]), ints(vb["@0"])
    a = [ra[10 * i + 2] for i in range(N)]
    b = [rb[10 * i + 2] for i in range(N)]
    assert a == b and 0 < sum(a) < N
    # one pair id (the sequence number entry) at both ends
    assert [ra[10 * i + 5] for i in range(N)] == [rb[10 * i + 5] for i in range(N)]


async def test_netqasm_kept_pairs_over_a_repeater_agree_in_z(autojump_clock: object) -> None:
    """A creator that measures (R) and a receiver that keeps, 10 times: Z outcomes agree
    (the receiver's kept half was corrected to Phi+)."""
    for _ in range(10):
        va, vb = await exchange(create(2, 0, 0, n=1), RECV_KEEP_MEASURE)
        ra = ints(va["@0"])
        assert vb["@2"] == [ra[2]]
