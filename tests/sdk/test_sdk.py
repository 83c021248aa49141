"""The SDK against whole nodes running in-process (mem:// sockets) on trio's MockClock."""

from __future__ import annotations

import math

import pytest
import trio

from qnodeos import sdk
from qnodeos.errors import ConnectionClosed, LocalError, RemoteError
from qnodeos.lang import codec
from qnodeos.lang import messages as m
from qnodeos.lang.program import validate
from qnodeos.lang.text import parse
from qnodeos.runtime.transport import _HUBS, MemDealer
from qnodeos.sdk.builder import Block, QubitIds
from qnodeos.testbed.local import local_network, service

from ..conftest import network, within

NODES = """
[nodes.gen]
device = "generic"
qubits = 4
seed = 1
[nodes.nv]
device = "nv"
qubits = 3
seed = 2
[nodes.nv.params.kinds.electron]
init = { error = 0.0 }
gates = { rx = { error = 0.0 }, ry = { error = 0.0 }, rz = { error = 0.0 } }
meas = { p01 = 0.0, p10 = 0.0 }
[nodes.nv.params.kinds.carbon]
init = { error = 0.0 }
gates = { rx = { error = 0.0 }, ry = { error = 0.0 }, rz = { error = 0.0 } }
[nodes.nv.params.two_qubit]
crx = { spec = { error = 0.0 } }
[nodes.ion]
device = "trapped_ion"
qubits = 2
seed = 3
[nodes.ion.params.kinds.ion]
gates = { rz = { error = 0.0 } }
[nodes.ion.params.collective]
all_rx = { error = 0.0 }
all_ry = { error = 0.0 }
ms = { error = 0.0 }
"""


def test_builder_output_validates_and_shapes_nested_loop_results() -> None:
    b = Block(qubit_ids=QubitIds(2))
    with b.loop(3), b.loop(2):
        q = b.qubit()
        q.x()
        fut = q.measure()
    validate(b.build())
    b.fill({"m0": [1, 1, 1, 1, 1, 1]})
    assert fut.value == [[1, 1], [1, 1], [1, 1]]


def test_builder_errors_are_local_and_clear() -> None:
    b = Block(qubit_ids=QubitIds(1))
    q = b.qubit()
    with pytest.raises(LocalError, match="quota are in use"):
        b.qubit()
    q.measure()
    with pytest.raises(LocalError, match="Q0 was measured or freed"):
        q.x()
    with pytest.raises(LocalError, match="only after its block has run"):
        b.futures[0].value  # noqa: B018


async def bell_and_teleport(endpoint: str) -> tuple[int, int]:
    """A hardware-independent app: Bell pair, then a local teleportation of |1>."""
    async with sdk.connect("x", app="t", qubits=3, endpoint=endpoint) as node:
        async with node.block() as b:
            a, c = b.qubit(), b.qubit()
            a.h()
            a.cnot(c)
            ma, mc = a.measure(), c.measure()
        assert ma.value == mc.value
        async with node.block() as b:
            src, a, c = b.qubit(), b.qubit(), b.qubit()
            src.x()
            a.h()
            a.cnot(c)
            src.cnot(a)
            src.h()
            m1, m2 = src.measure(), a.measure()
            with b.if_eq(m2, 1):
                c.x()
            with b.if_eq(m1, 1):
                c.z()
            out = c.measure()
        return ma.value, out.value


async def test_teleportation_inside_one_node(autojump_clock: object) -> None:
    async with local_network(network(NODES)) as eps:
        for _ in range(5):
            _, teleported = await bell_and_teleport(eps["gen"])
            assert teleported == 1


async def hardware_independent_app(endpoint: str) -> list[int]:
    """One app, no device checks: H-Z-H flips |0> to |1>; rz/ry/rx round trip to |0>."""
    async with sdk.connect("x", app="hw", qubits=1, endpoint=endpoint) as node:
        async with node.block() as b:
            q = b.qubit()
            q.h()
            q.z()
            q.h()
            m1 = q.measure()
            q = b.qubit()
            q.rx(0.3)
            q.ry(1.1)
            q.s()
            q.t()
            q.rz(-math.pi / 4 - math.pi / 2)
            q.ry(-1.1)
            q.rx(-0.3)
            m2 = q.measure()
        return [m1.value, m2.value]


@pytest.mark.parametrize("node", ["gen", "nv", "ion"])
async def test_same_app_runs_on_every_device(node: str, autojump_clock: object) -> None:
    async with local_network(network(NODES)) as eps:
        assert await hardware_independent_app(eps[node]) == [1, 0]


async def test_nv_reads_carbons_through_the_electron_moving_its_state_if_needed(
    autojump_clock: object,
) -> None:
    async with local_network(network(NODES)) as eps:
        async with sdk.connect("nv", app="t", qubits=3, endpoint=eps["nv"]) as node:
            assert node.device == "nv" and "crx" in node.native_gates
            async with node.block() as b:
                e, c = b.qubit(), b.qubit()  # electron, then a carbon
                e.x()
                e.cnot(c)  # lowered to crx + rotations
                me = e.measure()
            assert me.value == 1
            async with node.block() as b:  # the electron is free: read the carbon
                mc = c.measure(inplace=True)
            assert mc.value == 1
            async with node.block() as b:
                q = b.qubit()  # takes the electron (Q0)
                q.x()
                m1 = c.measure()  # Q0's state moves to the free carbon; read through it
                m0 = q.measure()  # now a carbon: read through the electron again
            assert (m1.value, m0.value) == (1, 1)
            with pytest.raises(
                sdk.BlockError, match=r"\(carbon\) is read out .* nor can one be freed"
            ) as ei:
                async with node.block() as b:
                    qs = [b.qubit() for _ in range(2)]  # electron and carbon 2
                    c2 = b.qubit()  # carbon 1
                    c2.measure()  # no measurable qubit free, nowhere to move one
            assert ei.value.code == "device" and ei.value.held == []
            assert qs


async def test_idle_qubit_decoheres_for_the_wall_time_the_app_takes(autojump_clock: object) -> None:
    """Classical time between blocks is device time (speed 1): Ramsey with the wait done
    by the app, not by the device, still shows e^(-t/T2)."""
    net = network("""
[nodes.a]
device = "generic"
qubits = 1
seed = 4
speed = 1.0
lease_s = 5.0
[nodes.a.params.kinds.qubit]
t2_ns = 1e8
""")
    shots, ones = 300, 0
    async with local_network(net) as eps:
        async with sdk.connect("a", app="r", qubits=1, endpoint=eps["a"]) as node:
            for _ in range(shots):
                async with node.block() as b:
                    q = b.qubit()
                    q.h()
                await trio.sleep(0.1)  # 0.1 s = T2
                async with node.block() as b:
                    q.h()
                    fut = q.measure()
                ones += fut.value
    assert within(1 - ones / shots, (1 + math.exp(-1)) / 2, shots)


async def test_silent_app_loses_its_lease_and_its_qubits(autojump_clock: object) -> None:
    net = network("[nodes.a]\ndevice='generic'\nqubits=2\nlease_s=1.0\n")
    async with local_network(net) as eps:
        kernel = service(eps["a"]).kernel
        raw = MemDealer(eps["a"])
        enc, dec = codec.app_to_node(), codec.node_to_app()
        await raw.send([enc.encode(m.Register(app="mute", qubits=2))])
        assert isinstance(dec.decode((await raw.recv())[0]), m.Registered)
        await raw.send([enc.encode(m.Submit(block=1, sub=parse("qalloc Q0\ninit Q0")))])
        await raw.recv()
        assert kernel.memory.free == {1}
        await trio.sleep(0.9)
        assert kernel.memory.reserved == 2  # lease of 1 s not yet over
        await trio.sleep(0.2)
        assert kernel.memory.reserved == 0 and kernel.memory.free == {0, 1}
        # Meanwhile another app works normally.
        async with sdk.connect("a", app="b", qubits=2, endpoint=eps["a"]) as node:
            async with node.block() as b:
                fut = b.qubit().measure()
            assert fut.value == 0


async def test_requests_of_one_session_from_several_tasks_each_get_their_own_reply(
    autojump_clock: object,
) -> None:
    """Tasks sharing a session queue on its request lock (taken without a checkpoint
    when free): every block's values go to the task that ran it."""
    async with local_network(network("[nodes.a]\nqubits=1\n")) as eps:
        async with sdk.connect("a", app="x", qubits=1, endpoint=eps["a"]) as node:
            got: dict[int, list[object]] = {1: [], 2: [], 3: []}

            async def runs(k: int) -> None:
                for i in range(40):
                    got[k].append((await node.run(f"set R0 {k * 1000 + i}\nret R0"))["R0"])

            async with trio.open_nursery() as nursery:
                for k in got:
                    nursery.start_soon(runs, k)
            assert got == {k: [k * 1000 + i for i in range(40)] for k in got}
            async with node.block() as b:  # the lock is free again
                b.qubit()


async def test_bad_messages_get_error_replies(autojump_clock: object) -> None:
    async with local_network(network("[nodes.a]\nqubits=1\n")) as eps:
        raw = MemDealer(eps["a"])
        dec = codec.node_to_app()
        for junk in [b"\xc1", b"", b"\x92\x02\xa3abc"]:
            await raw.send([junk])
            reply = dec.decode((await raw.recv())[0])
            assert isinstance(reply, m.ErrorReply) and reply.code == "bad_message"
        await raw.send([b"a", b"b"])
        reply = dec.decode((await raw.recv())[0])
        assert isinstance(reply, m.ErrorReply) and "expected 1 data frame" in reply.message
        assert service(eps["a"]).kernel.counters.bad_messages == 4


async def test_connect_to_a_missing_node_times_out_clearly(autojump_clock: object) -> None:
    with pytest.raises(ConnectionClosed, match="did not answer within 2"):
        async with sdk.connect("ghost", app="a", qubits=1, endpoint="mem://nobody", timeout=2):
            pass


async def test_register_refusal_is_a_remote_error(autojump_clock: object) -> None:
    async with local_network(network("[nodes.a]\nqubits=1\n")) as eps:
        with pytest.raises(RemoteError, match="asked for 5 qubit"):
            async with sdk.connect("a", app="a", qubits=5, endpoint=eps["a"]):
                pass


async def test_app_notices_a_dead_node(autojump_clock: object) -> None:
    async with local_network(network("[nodes.a]\nqubits=1\nlease_s=0.5\n", name="dead")) as eps:
        async with sdk.connect("a", app="a", qubits=1, endpoint=eps["a"]) as node:
            service(eps["a"]).kernel.procs.lease_s = 1e9  # keep the session...
            _HUBS[eps["a"]].dealers.clear()  # ...but the node's replies no longer reach us
            await trio.sleep(3)
            with pytest.raises(ConnectionClosed, match="stopped answering"):
                async with node.block() as b:
                    b.qubit()


async def test_a_cancelled_block_wait_does_not_shift_later_replies(autojump_clock: object) -> None:
    net = network("[nodes.a]\nqubits=1\nspeed=1.0\n", name="cancel")
    async with local_network(net) as eps:
        async with sdk.connect("a", app="a", qubits=1, endpoint=eps["a"]) as node:
            with trio.move_on_after(0.5):
                async with node.block() as b:
                    b.wait(1.0)  # 1 s of device time: the app gives up before
            async with node.block() as b:
                q = b.qubit()
                q.x()
                fut = q.measure()
            assert fut.value == 1


async def test_a_request_refused_while_decoding_answers_the_call_that_made_it(
    autojump_clock: object,
) -> None:
    """A message the node cannot decode still names its request, block or send: the
    refusal goes to the call waiting for it (before, an EPR request with qubit id -1 or
    timeout 1e308 hung and its error surfaced on Stop)."""
    async with local_network(network("[nodes.a]\nqubits=1\n")) as eps:
        raw = MemDealer(eps["a"])
        enc, dec = codec.app_to_node(), codec.node_to_app()
        await raw.send([enc.encode(m.Register(app="raw", qubits=1))])
        assert isinstance(dec.decode((await raw.recv())[0]), m.Registered)
        bad = [
            m.EprRequest(req=5, remote_node="b", remote_app="x", role="create", qubits=[-1]),
            m.EprRequest(req=6, remote_node="b", remote_app="x", role="create", timeout_s=1e308),
            m.Submit(block=9, sub=parse("set R0 1"), deadline_s=-1.0),
            m.SendMsg(to_node="a" * 1000, to_app="raw", seq=3, data=b"x"),
        ]
        replies = []
        for msg in bad:
            await raw.send([enc.encode(msg)])
            replies.append(dec.decode((await raw.recv())[0]))
        assert isinstance(replies[0], m.EprFailed) and replies[0].req == 5
        assert "qubits" in replies[0].message
        assert isinstance(replies[1], m.EprFailed) and replies[1].req == 6
        assert "timeout_s" in replies[1].message
        assert isinstance(replies[2], m.BlockFailed) and replies[2].block == 9
        assert replies[2].code == "invalid" and "deadline_s" in replies[2].message
        assert isinstance(replies[3], m.SendFailed) and replies[3].seq == 3
        # The SDK checks what the node would check, and fails the call at once.
        async with sdk.connect("a", app="sdk", qubits=0, endpoint=eps["a"]) as node:
            epr = node.epr_socket("b", "x")
            for timeout in (1e308, -1.0, math.nan):
                with trio.fail_after(1), pytest.raises(LocalError, match="timeout_s"):
                    await epr.create_measure(timeout=timeout)
