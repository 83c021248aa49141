"""The kernel's timer is set to the next thing due (no periodic tick): every deadline
that used to ride on the tick must be in ``next_deadline``, and a deadline already
past must not make the timer spin (both found by the review of that change)."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import trio

from qnodeos.kernel.netstack import NetStack
from qnodeos.testbed.local import local_network, service
from tests.conftest import network
from tests.netlink.test_bins import TWO as BINNED  # two nodes, a link with time bins


def _stack(**kw: Any) -> Any:
    base: dict[str, Any] = dict(
        wants={}, listening={}, refuse_at={}, work=[], egps={}, circuits={}, setups={},
        qubit_waits={}, e2e_listening={},
    )
    base.update(kw)
    return SimpleNamespace(**base)


def test_a_repeater_waiting_for_qubits_has_a_deadline() -> None:
    """A repeater's NetSetup waiting for qubits (refused by circuits_timer at its
    ``until``) makes the stack busy, and its ``until`` is a deadline."""
    s = _stack(qubit_waits={("a", 1): (object(), 5.0)})
    assert NetStack.busy(s)
    assert NetStack.next_deadline(s) == 5.0, NetStack.next_deadline(s)




async def test_a_round_held_past_its_bin_does_not_spin_the_timer(autojump_clock: object) -> None:
    """A round held for its bin, then the device taken (a block): _pump recomputes
    wake_at from a stale held_until_ns, which passes while the device is busy; the
    timer then runs handle_timer with no time passing (wake_at is exempt from TICK_S)."""
    async with local_network(network(BINNED.format(period=4, bins=[0]), name="spin")) as eps:
        svc = service(eps["alice"])
        k = svc.kernel
        await trio.sleep(1.0)  # (simulated: the device connects and says its epoch)
        assert k.device_ready and k.device_epoch_ns is not None
        await trio.sleep(0.1)
        k.now = svc.clock()
        k.net.held_until_ns = k._device_now() - 1e6  # 1 ms ago: stale (a block took it)
        k.net.work.append(SimpleNamespace(round=None, stale=None, peer="bob"))
        k.current = SimpleNamespace()  # the device is busy with a block
        k._pump()
        assert k.wake_at is not None and k.wake_at < k.now
        calls = [0]
        at200: list[float] = []
        real = k.handle_timer
        t0 = trio.current_time()

        def counting(now: float, judge: bool = True) -> list[Any]:
            calls[0] += 1
            if calls[0] >= 200:  # end the spin (the block "ends")
                at200.append(trio.current_time() - t0)
                k.current = None
                k.net.work.clear()
                k._pump()
            return real(now, judge)

        k.handle_timer = counting  # type: ignore[method-assign]
        svc._rearm_timer()
        await trio.sleep(0.2)
        assert calls[0] < 10, (calls[0], at200[:1], trio.current_time() - t0)
