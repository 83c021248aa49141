"""BBPSSW and DEJMPS: the circuits each end runs (kernel.distill, lowered to the
device's native ops and run on the device simulator, the two pairs' halves in one
register) against the closed forms (netlink.distill). The success probability is
sampled (within 4 standard errors of the binomial); the output state on success is
read from the simulator, so its fidelity and Bell coefficients are compared exactly."""

from __future__ import annotations

import math

import numpy as np
import pytest

from qnodeos.hardware.params import build
from qnodeos.kernel.distill import kept, round_ops, twirl_gates
from qnodeos.kernel.lower import Lowering
from qnodeos.netlink.distill import TWIRLS, after_rounds, bbpssw, dejmps, rounds_for, werner
from qnodeos.netlink.models import BELL_VECTORS, PHI_MINUS, PHI_PLUS, PSI_MINUS, PSI_PLUS
from qnodeos.qdevice.device import QuantumDevice

ORDER = (PHI_PLUS, PSI_MINUS, PSI_PLUS, PHI_MINUS)  # (A, B, C, D) as in DEJMPS


def bell_diagonal(c: tuple[float, float, float, float]) -> np.ndarray:
    return sum(
        x * np.outer(BELL_VECTORS[b], BELL_VECTORS[b].conj()) for x, b in zip(c, ORDER, strict=True)
    )


def coefficients(rho: np.ndarray) -> tuple[float, ...]:
    return tuple(float(np.real(BELL_VECTORS[b].conj() @ rho @ BELL_VECTORS[b])) for b in ORDER)


def one_round(
    scheme: str, c: tuple[float, float, float, float], shots: int, seed: int
) -> tuple[float, tuple[float, ...]]:
    """Success rate over ``shots`` rounds, and the kept pair's coefficients on success."""
    spec = build("generic", 4)
    low = Lowering(spec)
    # end 1 holds qubits 0 (kept pair) and 1 (sacrificed); end 2 holds 2 and 3
    ops = round_ops(low, scheme, keep=0, target=1, first=True)
    ops += round_ops(low, scheme, keep=2, target=3, first=False)
    rng = np.random.default_rng(seed)
    rho = bell_diagonal(c)
    wins, out = 0, None
    dev = QuantumDevice(spec, rng)
    for _ in range(shots):
        for q in range(4):
            dev.reg.take(q)  # every slot alone in |0> again
        dev.reg.put([0, 2], rho)
        dev.reg.put([1, 3], rho)
        t, outcomes = 0.0, []
        for op in ops:
            o, t = dev.execute(op, t)
            if op.op == "meas":
                outcomes.append(o)
        if kept(*outcomes):
            wins += 1
            got = coefficients(dev.reg.density_matrix([0, 2]))
            assert out is None or np.allclose(got, out, atol=1e-9)  # the same every time
            out = got
    assert out is not None
    return wins / shots, out


@pytest.mark.parametrize("f", [0.7, 0.85])
def test_bbpssw_on_werner_pairs(f: float) -> None:
    shots = 2000
    rate, c = one_round("bbpssw", werner(f), shots, seed=1)
    p, fo = bbpssw(f)
    assert abs(rate - p) <= 4 * math.sqrt(p * (1 - p) / shots), (rate, p)
    assert c[0] == pytest.approx(fo, abs=1e-9)


@pytest.mark.parametrize("c", [werner(0.75), (0.8, 0.1, 0.05, 0.05), (0.7, 0.0, 0.0, 0.3)])
def test_dejmps_on_bell_diagonal_pairs(c: tuple[float, float, float, float]) -> None:
    shots = 2000
    rate, out = one_round("dejmps", c, shots, seed=2)
    p, want = dejmps(c)
    assert abs(rate - p) <= 4 * math.sqrt(p * (1 - p) / shots), (rate, p)
    assert out == pytest.approx(want, abs=1e-9)


def test_rounds_are_bounded_and_dejmps_needs_fewer() -> None:
    assert rounds_for(0.8, 0.8, "bbpssw") == 0
    assert rounds_for(0.5, 0.6, "dejmps") is None  # F <= 1/2 never improves
    assert rounds_for(0.8, 0.999999, "bbpssw", max_rounds=3) is None
    r_b, r_d = rounds_for(0.75, 0.95, "bbpssw"), rounds_for(0.75, 0.95, "dejmps")
    assert r_b is not None and r_d is not None and r_d < r_b
    f1, cost1 = after_rounds(0.75, "dejmps", 1)
    assert f1 > 0.75 and cost1 > 2


def twirled(rho: np.ndarray, t: int) -> np.ndarray:
    """``rho`` on (end 1, end 2) after twirl ``t``: its gates at both ends, on the
    device simulator."""
    spec = build("generic", 2)
    low = Lowering(spec)
    dev = QuantumDevice(spec, np.random.default_rng(0))
    for q in range(2):
        dev.reg.take(q)
    dev.reg.put([0, 1], rho)
    clock = 0.0
    for q, first in ((0, True), (1, False)):
        for g, theta in twirl_gates(t, first):
            for op in low.lower(g, (q,), theta):
                _, clock = dev.execute(op, clock)
    return dev.reg.density_matrix([0, 1])


@pytest.mark.parametrize("kind", ["bell-diagonal", "coherent"])
def test_the_twirl_makes_any_pair_werner_of_the_same_fidelity(kind: str) -> None:
    """The mean over the 12 twirls (each a U x U* done with real gates at both ends)
    is exactly the Werner state of the pair's fidelity to Phi+."""
    if kind == "bell-diagonal":
        rho = bell_diagonal((0.7, 0.2, 0.1, 0.0))
    else:  # cos a |00> + sin a |11>, partly dephased at one end: coherences off Bell
        a = 0.5
        v = np.zeros(4, complex)
        v[0], v[3] = math.cos(a), math.sin(a)
        pure = np.outer(v, v.conj())
        flip = np.kron(np.diag([1, -1]), np.eye(2))
        rho = 0.8 * pure + 0.2 * flip @ pure @ flip
    f = float(np.real(BELL_VECTORS[PHI_PLUS].conj() @ rho @ BELL_VECTORS[PHI_PLUS]))
    mean = sum(twirled(rho, t) for t in range(TWIRLS)) / TWIRLS
    assert np.allclose(mean, bell_diagonal(werner(f)), atol=1e-9)
