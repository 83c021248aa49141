"""NetQASM EPR instructions through two nodes (deterministic mode), as the netqasm
builder emits them: the 22-entry argument array, 10 result entries per pair, wait_all
on the results, the creator choosing the receiver's bases (``basis_remote``)."""

from __future__ import annotations

import pytest
import trio

from qnodeos import sdk
from qnodeos.lang import messages as m
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
model = "perfect"
cycle_ns = 1000
seed = 3
"""
N = 40


def create(kind: int, local: int, remote: int, n: int = N) -> str:
    """Create n pairs with bob (node id 1, socket 0); rotations in pi/16 about X."""
    return f"""# NETQASM 1.0
# APPID 0
set R0 {10 * n}
array R0 @0
set R0 22
array R0 @1
set R0 {kind}
set R1 0
store R0 @1[R1]
set R0 {n}
set R1 1
store R0 @1[R1]
set R0 {local}
set R1 14
store R0 @1[R1]
set R0 {remote}
set R1 17
store R0 @1[R1]
set R0 1
set R1 0
set R3 1
set R4 0
create_epr R0 R1 R2 R3 R4
set R5 0
set R6 {10 * n}
wait_all @0[R5:R6]
ret_arr @0
"""


RECV = f"""# NETQASM 1.0
# APPID 0
set R0 {10 * N}
array R0 @0
set R0 0
set R1 0
set R3 0
recv_epr R0 R1 C0 R3
set R5 0
set R6 {10 * N}
wait_all @0[R5:R6]
ret_arr @0
"""


Values = dict[str, object]


async def exchange(alice_code: str, bob_code: str) -> tuple[Values, Values]:
    """Run alice's and bob's subroutines at once on a fresh network (app "c" on alice,
    app "r" on bob, each with EPR socket 0 to the other); what each returned."""
    got: dict[str, Values] = {}

    async def go(s: sdk.Node, code: str, sock: m.NqSocket, who: str) -> None:
        got[who] = dict(await s.run_netqasm(code, sockets=[sock]))

    async with local_network(network(NET)) as eps:
        async with (
            sdk.connect("alice", app="c", qubits=1, endpoint=eps["alice"]) as a,
            sdk.connect("bob", app="r", qubits=1, endpoint=eps["bob"]) as b,
            trio.open_nursery() as n,
        ):
            n.start_soon(go, a, alice_code, m.NqSocket(id=0, node_id=1, node="bob", app="r"), "a")
            n.start_soon(go, b, bob_code, m.NqSocket(id=0, node_id=0, node="alice", app="c"), "b")
    return got["a"], got["b"]


def ints(v: object) -> list[int]:
    assert isinstance(v, list)
    return v


async def pairs(local: int, remote: int) -> tuple[list[int], list[int], list[int]]:
    """Outcomes at alice and bob, and bob's sequence numbers minus alice's."""
    va, vb = await exchange(create(1, local, remote), RECV)
    ra, rb = ints(va["@0"]), ints(vb["@0"])
    for r, way in ((ra, 0), (rb, 1)):  # type M, direction, socket, remote node, Bell Phi+
        for i in range(N):
            f = r[10 * i : 10 * i + 10]
            assert (f[0], f[4], f[6], f[9]) == (1, way, 0, 0), f
    seq = [rb[10 * i + 5] - ra[10 * i + 5] for i in range(N)]
    return [ra[10 * i + 2] for i in range(N)], [rb[10 * i + 2] for i in range(N)], seq


async def test_measured_pairs_in_z_agree() -> None:
    a, b, seq = await pairs(0, 0)
    assert a == b and seq == [0] * N and 0 < sum(a) < N


async def test_creator_chooses_receiver_basis() -> None:
    """Both in Y (Rx(pi/2), 8 pi/16): Phi+ anticorrelates; the receiver in Z while the
    creator is in Y: no correlation at all."""
    a, b, _ = await pairs(8, 8)
    assert all(x != y for x, y in zip(a, b, strict=True))
    a, b, _ = await pairs(8, 0)
    assert 5 < sum(x == y for x, y in zip(a, b, strict=True)) < N - 5


RECV_KEEP_MEASURE = """# NETQASM 1.0
# APPID 0
set R0 10
array R0 @0
set R0 1
array R0 @1
set R0 1
array R0 @2
set R0 0
set R1 0
store R0 @1[R1]
set R0 0
set R1 0
set R2 1
set R3 0
recv_epr R0 R1 R2 R3
set R5 0
set R6 10
wait_all @0[R5:R6]
set R7 0
load Q0 @1[R7]
meas Q0 M0
qfree Q0
store M0 @2[R7]
ret_arr @0
ret_arr @2
"""


async def test_remote_state_preparation_with_a_keeping_receiver() -> None:
    """create_rsp / recv_rsp: the creator measures (R), the receiver keeps (it cannot
    tell R from K, so it asks K): outcomes in Z agree, 20 times."""
    for _ in range(20):
        va, vb = await exchange(create(2, 0, 0, n=1), RECV_KEEP_MEASURE)
        ra, rb = ints(va["@0"]), ints(vb["@0"])
        assert rb[0] == 0 and rb[2] == 0  # K layout at the receiver: its qubit id 0
        assert vb["@2"] == [ra[2]]  # its Z outcome equals the creator's


def loop(role: str, turns: int) -> str:
    """What netqasm's builder emits for ``with conn.loop(turns): q = create_keep()[0];
    q.H(); q.measure(future=outs[i])`` (recv_keep at the receiver): one EPR
    instruction run once per turn, one results array for all turns."""
    node = 1 if role == "create" else 0
    epr = "create_epr R1 R2 R3 R4 R5" if role == "create" else "recv_epr R1 R2 R3 R5"
    return f"""# NETQASM 1.0
# APPID 0
set R1 {turns}
array R1 @0
set R1 10
array R1 @1
set R1 1
array R1 @2
set R1 0
set R2 0
store R1 @2[R2]
set R1 22
array R1 @3
set R1 0
set R2 0
store R1 @3[R2]
set R1 1
set R2 1
store R1 @3[R2]
set R0 0
set R1 {turns}
beq R0 R1 38
set R1 {node}
set R2 0
set R3 2
set R4 3
set R5 1
{epr}
set R1 0
set R2 10
wait_all @1[R1:R2]
set Q0 0
h Q0
set Q0 0
meas Q0 M0
qfree Q0
store M0 @0[R0]
set R1 1
add R0 R0 R1
jmp 18
ret_arr @0
"""


async def test_epr_instruction_in_a_loop_waits_each_turn() -> None:
    turns = 12
    va, vb = await exchange(loop("create", turns), loop("recv", turns))
    xa, xb = ints(va["@0"]), ints(vb["@0"])
    assert xa == xb  # X on Phi+: equal, turn by turn
    assert 0 < sum(xa) < turns


@pytest.mark.parametrize("wait", ["wait_any @0[R5:R6]", "wait_single @0[R7]"])
async def test_wait_any_and_wait_single(wait: str) -> None:
    """wait_any returns once some pair is in, wait_single once that entry is; then
    wait_all for the rest: every result arrives either way."""
    recv = RECV.replace("wait_all @0[R5:R6]", f"set R7 {10 * N - 1}\n{wait}\nwait_all @0[R5:R6]")
    va, vb = await exchange(create(1, 0, 0), recv)
    ra, rb = ints(va["@0"]), ints(vb["@0"])
    assert [ra[10 * i + 2] for i in range(N)] == [rb[10 * i + 2] for i in range(N)]
