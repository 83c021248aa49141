"""Device physics against closed forms.

Each check is done twice: exactly, on the density matrix, and statistically, by sampling
measurements with a fixed seed. Statistical tolerance: 4 binomial standard deviations
(a false alarm about once in 16,000 checks if the seed were random)."""

from __future__ import annotations

import math
import re

import numpy as np
import pytest

from qnodeos.errors import DeviceError
from qnodeos.lang.messages import PhysOp
from qnodeos.qdevice.device import QuantumDevice

from ..conftest import device, within

T1 = 1e6  # ns
T2 = 4e5  # ns


def run(dev: QuantumDevice, ops: list[PhysOp]) -> int:
    out = -1
    for op in ops:
        out, _ = dev.execute(op, 0.0)
    return out


def sample(dev: QuantumDevice, ops: list[PhysOp], shots: int) -> float:
    return sum(run(dev, ops) for _ in range(shots)) / shots


def noisy(**kind: object) -> QuantumDevice:
    return device("generic", 2, seed=7, kinds={"qubit": kind})


@pytest.mark.parametrize("t", [0.0, 0.5 * T1, T1, 2 * T1])
def test_t1_decay(t: float) -> None:
    dev = noisy(t1_ns=T1, t2_ns=math.inf)
    prep = [PhysOp("init", (0,)), PhysOp("x", (0,)), PhysOp("wait", (), t)]
    run(dev, prep)
    dev.decohere([0], dev.busy_until)
    assert dev.reg.prob_one(0) == pytest.approx(math.exp(-t / T1), abs=1e-12)
    shots = 3000
    p1 = sample(dev, [*prep, PhysOp("meas", (0,))], shots)
    assert within(p1, math.exp(-t / T1), shots)


@pytest.mark.parametrize("t", [0.0, 0.5 * T2, T2, 3 * T2])
def test_ramsey_contrast_is_t2(t: float) -> None:
    dev = noisy(t1_ns=T1, t2_ns=T2)
    ops = [PhysOp("init", (0,)), PhysOp("h", (0,)), PhysOp("wait", (), t), PhysOp("h", (0,))]
    run(dev, ops)
    dev.decohere([0], dev.busy_until)
    expected_p0 = (1 + math.exp(-t / T2)) / 2  # independent of T1 (see physics docs)
    assert 1 - dev.reg.prob_one(0) == pytest.approx(expected_p0, abs=1e-12)
    shots = 3000
    p0 = 1 - sample(dev, [*ops, PhysOp("meas", (0,))], shots)
    assert within(p0, expected_p0, shots)


def test_readout_confusion_matrix() -> None:
    p01, p10 = 0.05, 0.12
    dev = noisy(meas={"p01": p01, "p10": p10})
    shots = 20000
    read1_given0 = sample(dev, [PhysOp("init", (0,)), PhysOp("meas", (0,))], shots)
    read0_given1 = 1 - sample(
        dev, [PhysOp("init", (0,)), PhysOp("x", (0,)), PhysOp("meas", (0,))], shots
    )
    assert within(read1_given0, p01, shots)
    assert within(read0_given1, p10, shots)


def test_readout_error_does_not_change_the_state() -> None:
    dev = noisy(meas={"p01": 0.5, "p10": 0.5})
    run(dev, [PhysOp("init", (0,)), PhysOp("meas", (0,))])
    assert dev.reg.prob_one(0) == 0.0  # collapsed to the true outcome, |0>


@pytest.mark.parametrize("p", [0.0, 0.1, 0.4])
def test_depolarising_single_qubit_gate_fidelity(p: float) -> None:
    dev = noisy(gates={"h": {"error": p}, "x": {"error": p}})
    run(dev, [PhysOp("init", (0,)), PhysOp("h", (0,))])
    plus = np.array([1, 1]) / math.sqrt(2)
    rho = dev.reg.density_matrix([0])
    assert float(np.real(plus @ rho @ plus)) == pytest.approx(1 - p / 2, abs=1e-12)
    shots = 5000
    p1 = sample(dev, [PhysOp("init", (0,)), PhysOp("x", (0,)), PhysOp("meas", (0,))], shots)
    assert within(p1, 1 - p / 2, shots)


@pytest.mark.parametrize("p", [0.0, 0.2])
def test_depolarising_two_qubit_gate_fidelity(p: float) -> None:
    dev = device("generic", 2, two_qubit={"cnot": {"spec": {"error": p}}})
    run(
        dev, [PhysOp("init", (0,)), PhysOp("init", (1,)), PhysOp("h", (0,)), PhysOp("cnot", (0, 1))]
    )
    bell = np.array([1, 0, 0, 1]) / math.sqrt(2)
    rho = dev.reg.density_matrix([0, 1])
    assert float(np.real(bell @ rho @ bell)) == pytest.approx(1 - 3 * p / 4, abs=1e-12)


def test_init_error_depolarises() -> None:
    dev = noisy(init={"error": 0.3})
    run(dev, [PhysOp("init", (0,))])
    assert dev.reg.prob_one(0) == pytest.approx(0.15, abs=1e-12)


def test_idle_qubits_decohere_for_elapsed_device_time() -> None:
    """A qubit left alone decays for the device time that passed, whatever happens to
    other qubits meanwhile (lazy decoherence is exact)."""
    dev = noisy(t1_ns=T1, t2_ns=math.inf)
    dev.execute(PhysOp("init", (0,)), 0.0)
    dev.execute(PhysOp("x", (0,)), 0.0)
    for k in range(10):  # busy with qubit 1, at device times given by a "wall clock"
        dev.execute(PhysOp("x", (1,)), k * T1 / 10)
    x_done = dev.touched[0]  # 20 ns: the end of the x gate
    dev.decohere([0], T1)
    assert dev.reg.prob_one(0) == pytest.approx(math.exp(-(T1 - x_done) / T1), abs=1e-12)


def test_entangled_halves_keep_correlations_when_measured_apart() -> None:
    dev = device("generic", 3, seed=3)
    same = 0
    for _ in range(200):
        run(
            dev,
            [PhysOp("init", (0,)), PhysOp("init", (1,)), PhysOp("h", (0,)), PhysOp("cnot", (0, 1))],
        )
        a = run(dev, [PhysOp("meas", (0,))])
        dev.execute(PhysOp("x", (2,)), 0.0)
        b = run(dev, [PhysOp("meas", (1,))])
        same += a == b
    assert same == 200


def test_nv_topology_violations_are_refused_without_side_effects() -> None:
    dev = device("nv", 3)
    before = dev.reg.density_matrix([0, 1, 2]).copy()
    cases = [
        (PhysOp("meas", (1,)), "cannot measure physical qubit 1 (carbon)"),
        (PhysOp("crx", (1, 2), 0.5), "needs electron -> carbon"),
        (PhysOp("crx", (1, 0), 0.5), "needs electron -> carbon"),
        (PhysOp("h", (0,)), "gate h is not native on electron"),
        (PhysOp("cnot", (0, 1)), "two-qubit gate cnot is not native"),
        (PhysOp("rx", (5,), 0.1), "physical qubit 5 does not exist"),
        (PhysOp("ms", (), 0.1), "collective gate ms is not native"),
        (PhysOp("teleport", (0,)), "unknown physical instruction 'teleport'"),
    ]
    for op, words in cases:
        with pytest.raises(DeviceError, match=re.escape(words)):
            dev.execute(op, 0.0)
    assert np.array_equal(dev.reg.density_matrix([0, 1, 2]), before)
    assert dev.busy_until == 0.0


def test_gate_durations_advance_the_device_clock() -> None:
    dev = device("nv", 2)
    _, end = dev.execute(PhysOp("init", (0,)), 0.0)
    assert end == 2_000
    _, end = dev.execute(PhysOp("crx", (0, 1), 0.1), 0.0)
    assert end == 2_000 + 500_000
    _, end = dev.execute(PhysOp("rx", (0,), 0.1), 1e7)  # idle until 10 ms, then 5 ns
    assert end == 1e7 + 5


def test_trapped_ion_collective_rotation_turns_every_ion() -> None:
    dev = device(
        "trapped_ion", 3, kinds={"ion": {"t2_ns": math.inf}}, collective={"all_rx": {"error": 0.0}}
    )
    dev.execute(PhysOp("all_rx", (), math.pi), 0.0)
    assert [dev.reg.prob_one(q) for q in range(3)] == pytest.approx([1, 1, 1])


def test_measuring_one_half_of_a_larger_group_leaves_the_rest_consistent(
    rng: np.random.Generator,
) -> None:
    dev = device("generic", 3, seed=11)
    run(dev, [PhysOp("h", (0,)), PhysOp("cnot", (0, 1)), PhysOp("cnot", (1, 2))])  # GHZ
    out = run(dev, [PhysOp("meas", (1,))])
    rho = dev.reg.density_matrix([0, 2])
    expected = np.zeros((4, 4))
    expected[3 * out, 3 * out] = 1
    assert np.allclose(rho, expected)
    assert np.trace(dev.reg.density_matrix([0, 1, 2])).real == pytest.approx(1.0)
