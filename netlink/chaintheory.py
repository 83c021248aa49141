"""Closed forms and a Markov chain for a repeater chain with swap-as-soon-as-possible:
the end-to-end fidelity and the time per end-to-end pair, to set measured chains against.

Fidelity: Werner links of parameters w_i = (4 F_i - 1)/3 joined by perfect Bell
measurements give a Werner pair of w = prod w_i, F = (3 w + 1)/4.

Time: with every link attempting at once and noiseless, instant swaps, no cutoff, an
end-to-end pair is there once every link has made its pair: the time is the largest of
the links' times to a herald, ``max_i c_i G_i`` with G_i geometric of parameter p_i
(attempts of cycle c_i). For equal cycles its mean, in attempts, is by
inclusion-exclusion over the links that have not yet succeeded,

    E[max G_i] = sum over non-empty sets S of links of (-1)^(|S|+1) / (1 - prod_S (1 - p_i))

which for two links of one p is (3 - 2p) / (p (2 - p)) (the known swap-ASAP result;
e.g. Shchukin, Schmidt and van Loock, PRA 100, 032322, 2019, for deterministic
swapping). ``mean_time_ns`` integrates P(max > t) over time, which also covers
unequal cycles.

Time, one round at a time (``turns_attempts``): the chain as implemented here. A
repeater's quantum process runs one entanglement round at a time, on its left link
until a herald, then on its right one, then swaps (at once: it holds both halves) and
starts over on the left; the ends are always ready. A link attempts only while both
of its nodes are on it. With one cycle for every link, attempts fall on one grid of
cycles and the chain is a Markov chain over which repeaters hold their left half
(2^(hops - 1) states): link j attempts iff its left node is an end or holds its left
half, and its right node is an end or does not; a herald on it moves its left node
to "holds none" (it swaps) and its right node to "holds its left half". Each e2e
pair is one herald on the first link, so the mean attempts per end-to-end pair in
the long run is 1 / (p_0 P(the first repeater holds none)), from the stationary
distribution (one linear solve). Two hops: sum 1/p_i (the links take turns); three:
E[max(G_0, G_2)] + 1/p_1. Heralds, recipes and swaps are taken as instant (here they
hold the device some 0.1 to 0.3 us per round, under 1 % of a 10 us cycle's wait).

>>> p = 0.3
>>> round(mean_attempts([p, p]), 9) == round((3 - 2 * p) / (p * (2 - p)), 9)
True
>>> round(mean_attempts([0.5]), 9), round(mean_time_ns([0.5, 0.5], [10.0, 10.0]) / 10, 9)
(2.0, 2.666666667)
>>> round(werner_fidelity([0.97] * 4), 6)
0.88701
>>> round(turns_attempts([0.2, 0.2]), 9), round(turns_attempts([0.2] * 3), 6)
(10.0, 12.222222)
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence

import numpy as np

MAX_LINKS = 16  # inclusion-exclusion sums 2^n - 1 terms
MAX_TURN_LINKS = 12  # the one-round-at-a-time chain has 2^(links - 1) states
TAIL = 1e-13  # mean_time_ns stops when P(some link has not succeeded) is below this


def werner_fidelity(fidelities: Sequence[float]) -> float:
    """End-to-end fidelity of Werner links of ``fidelities`` after perfect swaps."""
    w = math.prod((4 * f - 1) / 3 for f in fidelities)
    return (3 * w + 1) / 4


def mean_attempts(ps: Sequence[float]) -> float:
    """Mean attempts (cycles of one length) until every link of success probabilities
    ``ps`` has succeeded once (inclusion-exclusion; see the module's docstring)."""
    if not 1 <= len(ps) <= MAX_LINKS or not all(0 < p <= 1 for p in ps):
        raise ValueError(f"need 1..{MAX_LINKS} probabilities in (0, 1], got {list(ps)}")
    total = 0.0
    for k in range(1, len(ps) + 1):
        for subset in itertools.combinations(ps, k):
            total += (-1) ** (k + 1) / (1 - math.prod(1 - p for p in subset))
    return total


def mean_time_ns(ps: Sequence[float], cycles_ns: Sequence[float]) -> float:
    """Mean time until every link (success probability ``ps[i]`` per attempt of
    ``cycles_ns[i]``) has succeeded once: the integral of P(max_i c_i G_i > t) dt,
    a step function summed over the attempts' ends up to a negligible tail."""
    if len(ps) != len(cycles_ns) or not all(c > 0 for c in cycles_ns):
        raise ValueError(f"need one cycle > 0 per link, got {list(cycles_ns)}")
    mean_attempts(ps)  # checks ps
    if len(set(cycles_ns)) == 1:
        return cycles_ns[0] * mean_attempts(ps)
    # breakpoints: every attempt's end on every link, in time order
    counts = [0] * len(ps)
    t, total = 0.0, 0.0
    while True:
        nxt = min((counts[i] + 1) * cycles_ns[i] for i in range(len(ps)))
        done = math.prod(1 - (1 - p) ** n for p, n in zip(ps, counts, strict=True))
        total += (1 - done) * (nxt - t)
        if 1 - done < TAIL:
            return total
        t = nxt
        for i, c in enumerate(cycles_ns):
            if math.isclose((counts[i] + 1) * c, t):
                counts[i] += 1


def turns_attempts(ps: Sequence[float]) -> float:
    """Mean attempts (cycles of one length) per end-to-end pair in the long run, for a
    chain whose repeaters attempt one link at a time, left then right, and swap as soon
    as they hold both halves (the Markov chain of the module's docstring)."""
    n = len(ps)
    if not 1 <= n <= MAX_TURN_LINKS or not all(0 < p <= 1 for p in ps):
        raise ValueError(f"need 1..{MAX_TURN_LINKS} probabilities in (0, 1], got {list(ps)}")
    # state: bit i set when repeater i + 1 (node n_{i+1}) holds its left half
    size = 1 << (n - 1)
    step = np.zeros((size, size))
    for s in range(size):
        active = [j for j in range(n) if _attempts(s, j, n)]
        for heralds in itertools.product((False, True), repeat=len(active)):
            prob, t = 1.0, s
            for j, h in zip(active, heralds, strict=True):
                prob *= ps[j] if h else 1 - ps[j]
                if h:  # link j's pair: its left repeater swaps, its right one holds it
                    t = (t & ~(1 << (j - 1)) if j > 0 else t) | (1 << j if j < n - 1 else 0)
            step[s, t] += prob
    # the stationary distribution: pi (step - I) = 0, sum pi = 1
    a = step.T - np.eye(size)
    a[-1, :] = 1.0
    b = np.zeros(size)
    b[-1] = 1.0
    pi = np.linalg.solve(a, b)
    first_free = float(sum(pi[s] for s in range(size) if n == 1 or not s & 1))
    return 1.0 / (ps[0] * first_free)


def _attempts(state: int, j: int, n: int) -> bool:
    """Whether link j (of ``n``) attempts in ``state``: its left node is an end or holds
    its left half, and its right node is an end or does not hold its left half."""
    left_on = j == 0 or bool(state >> (j - 1) & 1)
    right_on = j == n - 1 or not state >> j & 1
    return left_on and right_on


def turns_time_ns(ps: Sequence[float], cycles_ns: Sequence[float]) -> float:
    """Mean time per end-to-end pair of ``turns_attempts``: every link must have the
    same cycle (their attempts then fall on one grid); ValueError otherwise."""
    if len(ps) != len(cycles_ns) or len(set(cycles_ns)) != 1 or not cycles_ns[0] > 0:
        raise ValueError(f"need one cycle > 0, the same for every link, got {list(cycles_ns)}")
    return cycles_ns[0] * turns_attempts(ps)
