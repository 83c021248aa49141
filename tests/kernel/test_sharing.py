"""Device time is a protected resource: one app cannot lock the device for the others.

Whole nodes in-process on trio's MockClock (speed 1: device time runs with the clock).
"""

from __future__ import annotations

import pytest
import trio

from qnodeos import sdk
from qnodeos.lang import codec
from qnodeos.lang import messages as m
from qnodeos.lang.text import parse
from qnodeos.runtime.transport import MemDealer
from qnodeos.testbed.local import local_network, service

from ..conftest import network

NET = """
[nodes.n]
device = "generic"
qubits = 4
speed = 1.0
seed = 1
policy = "priority"
max_wait_s = 10.0
max_block_s = 20.0
starvation_s = 0.5
"""


async def flip(ep: str, app: str = "victim", priority: int = 0) -> tuple[int, float]:
    """One short block; its outcome and how long it took (s)."""
    async with sdk.connect("n", app=app, qubits=1, endpoint=ep, priority=priority) as node:
        t0 = trio.current_time()
        async with node.block() as b:
            q = b.qubit()
            q.x()
            out = q.measure()
        return out.value, trio.current_time() - t0


async def test_an_app_that_leaves_mid_wait_frees_the_device_at_once(autojump_clock: object) -> None:
    async with local_network(network(NET)) as net:
        ep = net["n"]

        async def hog() -> None:
            async with sdk.connect("n", app="hog", qubits=1, endpoint=ep) as node:
                async with node.block() as b:
                    b.qubit()
                    b.wait(9.0)

        async with trio.open_nursery() as nursery:
            nursery.start_soon(hog)
            await trio.sleep(0.1)
            nursery.cancel_scope.cancel()  # the hog leaves mid-block: its SDK says Stop
        value, took = await flip(ep)
        assert value == 1
        assert took < 0.01  # not the 8.9 s the hog's wait had left


async def test_a_killed_app_frees_the_device_when_its_lease_ends(autojump_clock: object) -> None:
    async with local_network(network(NET)) as net:
        ep = net["n"]
        # A raw client submits a 9 s wait and goes silent (as if SIGKILLed).
        raw = MemDealer(ep)
        enc = codec.app_to_node()
        await raw.send([enc.encode(m.Register(app="hog", qubits=1))])
        await raw.recv()
        sub = parse("qalloc Q0\ninit Q0\nwait 9000000000\nmeas Q0 R0\nret R0")
        await raw.send([enc.encode(m.Submit(block=1, sub=sub))])
        await trio.sleep(0.05)
        t0 = trio.current_time()
        value, _ = await flip(ep)
        assert value == 1
        assert trio.current_time() - t0 < 1.2  # the lease (1 s), not the wait
        raw.close()


async def test_wait_and_block_device_time_are_bounded(autojump_clock: object) -> None:
    async with local_network(network(NET)) as net:
        async with sdk.connect("n", app="a", qubits=1, endpoint=net["n"]) as node:
            with pytest.raises(sdk.BlockError, match=r"wait of 11 s .*max_wait_s = 10"):
                async with node.block() as b:
                    b.qubit()
                    b.wait(11.0)
            with pytest.raises(sdk.BlockError, match="more than 20 s of device time") as err:
                async with node.block() as b:
                    b.qubit()
                    with b.loop(3):
                        b.wait(9.0)
            assert err.value.code == "limit"
            t0 = trio.current_time()
            async with node.block() as b:  # the refused block never reached the device
                q = b.qubit()
                out = q.measure()
            assert out.value == 0 and trio.current_time() - t0 < 0.01


async def test_priority_cannot_starve_a_low_priority_block(autojump_clock: object) -> None:
    async with local_network(network(NET)) as net:
        ep = net["n"]
        stop = trio.Event()

        async def busy(app: str) -> None:
            async with sdk.connect("n", app=app, qubits=1, endpoint=ep, priority=10) as node:
                while not stop.is_set():
                    async with node.block() as b:
                        b.wait(0.005)

        async with trio.open_nursery() as nursery:
            nursery.start_soon(busy, "hi-1")
            nursery.start_soon(busy, "hi-2")
            await trio.sleep(0.2)
            value, took = await flip(ep, "low", priority=0)
            stop.set()
        assert value == 1
        # starvation_s plus at most the block running and the other busy one's
        assert took <= 0.5 + 2 * 0.005 + 0.01
        assert service(ep).kernel.scheduler.starved >= 1


ION = """
[nodes.ion]
device = "trapped_ion"
qubits = 3
speed = inf
seed = 4
exclusive_apps = ["solo", "b"]
[nodes.ion.params.kinds.ion]
gates = { rz = { error = 0.0 } }
meas = { duration_ns = 100 }
"""


async def test_collective_gates_need_every_ion_they_touch(autojump_clock: object) -> None:
    async with local_network(network(ION)) as net:
        ep = net["ion"]
        async with (
            sdk.connect("ion", app="victim", qubits=1, endpoint=ep) as victim,
            sdk.connect("ion", app="attacker", qubits=1, endpoint=ep) as attacker,
        ):
            for _ in range(10):
                async with victim.block() as b:
                    q = b.qubit()
                    q.x()
                with pytest.raises(sdk.BlockError, match="other apps hold qubit") as err:
                    async with attacker.block() as b:
                        b.qubit()
                        b.collective("all_rx", 3.141592653589793)
                assert err.value.code == "device"
                async with victim.block():
                    out = q.measure()
                assert out.value == 1


async def test_crosstalk_from_other_apps_pulses_is_modelled_and_reported(
    autojump_clock: object,
) -> None:
    # An attacker's ordinary rx is lowered to collective pulses (2 % depolarising
    # error each, on every ion). They leave the victim's state alone in the ideal but
    # their errors hit it; the node reports that per app, and the physics shows it.
    async with local_network(network(ION)) as net:
        ep = net["ion"]
        shots, ones = 200, 0
        async with (
            sdk.connect("ion", app="victim", qubits=1, endpoint=ep) as victim,
            sdk.connect("ion", app="attacker", qubits=1, endpoint=ep) as attacker,
        ):
            async with attacker.block() as b:
                a = b.qubit()
            for shot in range(shots):
                async with victim.block() as b:
                    q = b.qubit()
                    q.x()  # two of the victim's own pulses
                async with attacker.block():
                    for _ in range(25):
                        a.rx(0.3)  # fifty pulses
                async with victim.block():
                    out = q.measure()
                ones += out.value
                if shot == 0:
                    assert victim.crosstalk_hits == 50
                    assert victim.crosstalk_fidelity == pytest.approx((1 + 0.98**50) / 2)
        # depolarising composes: P(1) = (1 + 0.98^(2 + 50)) / 2
        p1 = (1 + 0.98**52) / 2
        assert abs(ones / shots - p1) <= 4 * (p1 * (1 - p1) / shots) ** 0.5
        assert victim.crosstalk_hits == 50 * shots


async def test_crosstalk_fidelity_is_per_qubit_not_per_session(autojump_clock: object) -> None:
    # Each shot the victim takes a fresh qubit, which 50 of the attacker's pulses hit:
    # every shot reports the same (1 + 0.98^50)/2, not a product over the session
    # (before: 0.682 falling to 0.500 across fresh qubits). Hits still add up.
    async with local_network(network(ION)) as net:
        ep = net["ion"]
        async with (
            sdk.connect("ion", app="victim", qubits=2, endpoint=ep) as victim,
            sdk.connect("ion", app="attacker", qubits=1, endpoint=ep) as attacker,
        ):
            async with attacker.block() as b:
                a = b.qubit()
            seen = []
            for _ in range(5):
                async with victim.block() as b:
                    q = b.qubit()
                async with attacker.block():
                    for _ in range(25):
                        a.rx(0.3)  # fifty pulses
                async with victim.block():
                    q.measure()
                seen.append(victim.crosstalk_fidelity)
            assert seen == pytest.approx([(1 + 0.98**50) / 2] * 5)
            assert victim.crosstalk_hits == 250
            # a qubit held through two rounds of pulses keeps both
            async with victim.block() as b:
                q = b.qubit()
            for _ in range(2):
                async with attacker.block():
                    for _ in range(25):
                        a.rx(0.3)
            async with victim.block() as b:
                fresh = b.qubit()  # allocated after the pulses: untouched
                q.measure()
                fresh.measure()
            assert victim.crosstalk_fidelity == pytest.approx((1 + 0.98**100) / 2)
            async with victim.block() as b:
                b.qubit().measure()  # only a fresh qubit: untouched
            assert victim.crosstalk_fidelity == 1.0


async def test_exclusive_use_of_the_trap(autojump_clock: object) -> None:
    async with local_network(network(ION)) as net:
        ep = net["ion"]
        async with sdk.connect("ion", app="solo", qubits=1, endpoint=ep, exclusive=True) as solo:
            with pytest.raises(sdk.RemoteError, match="has the device of node 'ion' to itself"):
                async with sdk.connect("ion", app="other", qubits=1, endpoint=ep):
                    pass
            async with sdk.connect("ion", app="classical", qubits=0, endpoint=ep):
                pass  # an app without qubits may share the node
            async with solo.block() as b:
                q = b.qubit()
                b.collective("all_rx", 3.141592653589793)
                out = q.measure()
            assert out.value == 1
        async with (
            sdk.connect("ion", app="other", qubits=1, endpoint=ep),
            sdk.connect("ion", app="late", qubits=1, endpoint=ep),
        ):
            pass  # once it left, anyone may connect
        async with sdk.connect("ion", app="a", qubits=1, endpoint=ep):
            with pytest.raises(sdk.RemoteError, match="app\\(s\\) a hold qubits"):
                async with sdk.connect("ion", app="b", qubits=1, endpoint=ep, exclusive=True):
                    pass
        # an app the network file does not list cannot take the device from the others
        with pytest.raises(sdk.RemoteError, match="list it in the node's exclusive_apps"):
            async with sdk.connect("ion", app="hog", qubits=1, endpoint=ep, exclusive=True):
                pass


NV_MEMORY_FIRST = """
[nodes.nv]
device = "nv"
qubits = 3
speed = 1.0
seed = 2
placement = "memory_first"
[nodes.nv.params.kinds.electron]
init = { duration_ns = 2000, error = 0.0 }
meas = { p01 = 0.0, p10 = 0.0 }
"""


async def test_memory_first_puts_local_qubits_on_carbons_and_reads_them_via_the_electron(
    autojump_clock: object,
) -> None:
    """``placement = "memory_first"``: a local qubit goes to a carbon, leaving the
    electron (the only communication qubit) to the network, and is still measured
    (through the electron); with two apps the electron is left for last."""
    async with local_network(network(NV_MEMORY_FIRST)) as net:
        ep = net["nv"]
        kernel = service(ep).kernel
        async with (
            sdk.connect("nv", app="a", qubits=1, endpoint=ep) as a,
            sdk.connect("nv", app="b", qubits=1, endpoint=ep) as b,
        ):
            async with a.block() as blk:
                qa = blk.qubit()
            async with b.block() as blk:
                qb = blk.qubit()
            assert kernel.memory.held(a.app_id) == {qa.id: 1}
            assert kernel.memory.held(b.app_id) == {qb.id: 2}
            ones = 0
            for _ in range(20):
                async with a.block() as blk:
                    qa.x()
                    out = qa.measure()
                    qa = blk.qubit()  # the carbon again, for the next round
                ones += out.value
            assert kernel.memory.held(a.app_id) == {qa.id: 1}
            assert ones >= 17  # |1> read through the electron (carbon gate errors allowed)
