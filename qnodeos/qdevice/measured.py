"""A round's measured pairs, all at once (sans-IO): the fast path of ``rounds``.

How this works. Run pair by pair (the reference, ``Rounds._recipe``), each measured
pair costs a density matrix: place the heralded state, apply the recipe's gates, measure,
keep the other half's conditional state. But a round's pairs differ only in a few
ways: which of the link model's states the station delivered (a handful of arrays the
model hands out again and again), which recipe they run (basis and Bell index), and how
long the qubit waited before its recipe began (almost always not at all). So the pairs
fall into a few *classes*; each class's state is evolved once, with the same functions
the reference uses (so the numbers are the same to the last bit), giving the
probability of outcome 1 and, on demand, the other half's state after each outcome.
The outcomes of all pairs are then drawn at once from the device's generator, with the
same uniforms, in the same order, as the reference draws them one by one (one for the
measurement, one for the readout error where it can flip), so both paths give the same
outcomes for the same seed. Times (each op from the later of the herald and the end of
the previous one) are computed pair by pair as ``QuantumDevice.execute`` does.

Only recipes of one-qubit gates on one qubit ending in its measurement take this path
(``QuantumDevice.measure_recipe``); anything else (a kept pair, a remote state
preparation, a recipe the device refuses) runs pair by pair.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray

from .device import NO_OUTCOME, MeasureRecipe, QuantumDevice
from .physics import Vector, apply_at, measured_rest, prob_one_after, to_standard


@dataclass
class _Class:
    """Pairs that start from the same state, run the same recipe after the same wait."""

    vec: Vector  # the pair's state after the recipe's gates (paired)
    n: int  # qubits in it (ours first)
    gamma: float  # damping the measurement folds in
    p1: float  # probability of (true) outcome 1
    halves: dict[int, bytes] = field(default_factory=dict)

    def half(self, outcome: int) -> bytes:
        """The other qubit's 2x2 state after ``outcome``, as the wire carries it."""
        out = self.halves.get(outcome)
        if out is None:
            rest = measured_rest(self.vec, self.n, 0, outcome, self.gamma, self.p1)
            rho = to_standard(rest, 1)
            out = self.halves[outcome] = np.ascontiguousarray(rho, dtype="<c16").tobytes()
        return out


@dataclass
class Measured:
    """What a round's measured pairs gave: per pair its recipe's outcomes (NO_OUTCOME for
    its gates, then the reported measurement), when its last op ended, its class and
    true outcome (for the other half's state), and the device time the recipes took."""

    outcomes: list[list[int]]
    ends: list[float]
    work_ns: float
    classes: list[_Class]
    of: list[int]
    true: list[int]

    def half(self, i: int) -> bytes:
        return self.classes[self.of[i]].half(self.true[i])

    def halves(self) -> list[bytes]:
        """``half(i)`` of every pair, in order."""
        made: dict[tuple[int, int], bytes] = {}
        out: list[bytes] = []
        for key in zip(self.of, self.true, strict=True):
            h = made.get(key)
            if h is None:
                h = made[key] = self.classes[key[0]].half(key[1])
            out.append(h)
        return out


def measure_pairs(
    dev: QuantumDevice,
    recipes: Sequence[MeasureRecipe],
    ats: Sequence[float],
    keys: Sequence[Hashable],
    state: Callable[[int], Vector],
    n: int,
    work_ns: float,
) -> Measured:
    """Pair i (placed on its recipe's qubit at device time ``ats[i]``, from the n-qubit
    paired state ``state(i)``, our qubit first; pairs with equal ``keys[i]`` start from
    the same state) runs ``recipes[i]``: all of one qubit. ``work_ns``: the round's
    work so far, to add the recipes' time to (in the reference's order)."""
    q = recipes[0].q
    busy = dev.busy_until
    index: dict[tuple[Hashable, int, float], int] = {}
    classes: list[_Class] = []
    of: list[int] = []
    ends: list[float] = []
    blanks: dict[int, list[int]] = {}  # per recipe: NO_OUTCOME for each of its gates
    blank: list[list[int]] = []
    ops = 0
    for i, (at, r) in enumerate(zip(ats, recipes, strict=True)):
        start = max(at, busy)  # as execute: each op from max(now, busy_until)
        end = start
        for d in r.durations:
            end = end + d
        work_ns += max(0.0, end - start)
        key = (keys[i], id(r), start - at)
        c = index.get(key)
        if c is None:
            if r.q != q:
                raise ValueError(f"recipes measure qubits {q} and {r.q}")
            c = index[key] = len(classes)
            classes.append(_evolve(dev, r, start - at, state(i), n))
            blanks.setdefault(id(r), [NO_OUTCOME] * (len(r.durations) - 1))
        of.append(c)
        ends.append(end)
        blank.append(blanks[id(r)])
        busy = end
        ops += len(r.durations)
    true, reported = _draw(dev.rng, [classes[c].p1 for c in of], recipes[0])
    outcomes = [[*b, o] for b, o in zip(blank, reported, strict=True)]
    dev.measured(q, true[-1], ends[-1], ops)
    return Measured(outcomes, ends, work_ns, classes, of, true)


def _evolve(dev: QuantumDevice, r: MeasureRecipe, wait_ns: float, vec: Vector, n: int) -> _Class:
    superops, gamma = dev.measure_superops(r, wait_ns)
    for s in superops:
        vec = apply_at(vec, n, s, (0,))
    return _Class(vec, n, gamma, prob_one_after(vec, n, 0, gamma))


def _draw(
    rng: np.random.Generator, p1: list[float], r: MeasureRecipe
) -> tuple[list[int], list[int]]:
    """(true, reported) outcomes of measurements that give 1 with probabilities ``p1``,
    drawing from ``rng`` exactly as ``QuantumDevice.execute`` does one by one: a uniform
    for the outcome, then one for the readout error if it can flip that outcome."""
    k = len(p1)
    probs: NDArray[np.float64] = np.array(p1)
    if r.p01 > 0.0 and r.p10 > 0.0:  # two uniforms per pair, interleaved
        u = rng.random(2 * k)
        true = u[0::2] < probs
        flip = u[1::2] < np.where(true, r.p10, r.p01)
        return true.astype(int).tolist(), (true ^ flip).astype(int).tolist()
    if r.p01 <= 0.0 and r.p10 <= 0.0:  # one per pair
        one = (rng.random(k) < probs).astype(int).tolist()
        return one, one
    # one outcome can flip, the other not: how many uniforms depends on the outcomes
    t: list[int] = []
    rep: list[int] = []
    for p in p1:
        o = 1 if rng.random() < p else 0
        f = r.p10 if o else r.p01
        t.append(o)
        rep.append(o ^ 1 if f > 0 and rng.random() < f else o)
    return t, rep
