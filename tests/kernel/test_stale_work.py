"""Device work queued for a circuit that has ended by the time the device is free is
dropped (its ``done`` hears None): the qubits its ops name may be another's by then."""

from __future__ import annotations

from qnodeos.config.network import LinkConfig
from qnodeos.hardware.params import generic
from qnodeos.kernel.circuit import Circuit, circuit_work
from qnodeos.kernel.core import Kernel
from qnodeos.lang import messages as m
from qnodeos.netlink.models import Perfect


def test_work_of_an_ended_circuit_never_reaches_the_device() -> None:
    k = Kernel(
        node="a",
        spec=generic(2),
        peers={"b": ""},
        links=[LinkConfig(nodes=("a", "b"), model=Perfect(cycle_ns=100), seed=1)],
    )
    circuits: dict[tuple[str, int], Circuit] = {("a", 1): object()}  # type: ignore[dict-item]
    heard: list[object] = []
    ops = [m.PhysOp("meas", (0,))]
    k.net.work.append(circuit_work(circuits, ("a", 1), ops, lambda r, now: heard.append(r) or []))
    k.net.work.append(circuit_work(circuits, ("a", 2), ops, lambda r, now: heard.append(r) or []))
    live = k.net.next_work(1, 0.0)
    assert live is not None and live.request is not None  # its circuit is on
    gone = k.net.next_work(2, 0.0)
    assert gone is not None and gone.request is None  # ("a", 2) is not: dropped
    assert gone.done(None, 0.0) == [] and heard == [None]
