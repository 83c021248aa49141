"""Closed forms for a repeater chain with swap-as-soon-as-possible: the end-to-end
fidelity and the time per end-to-end pair, to set measured chains against.

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

>>> p = 0.3
>>> round(mean_attempts([p, p]), 9) == round((3 - 2 * p) / (p * (2 - p)), 9)
True
>>> round(mean_attempts([0.5]), 9), round(mean_time_ns([0.5, 0.5], [10.0, 10.0]) / 10, 9)
(2.0, 2.666666667)
>>> round(werner_fidelity([0.97] * 4), 6)
0.88701
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence

MAX_LINKS = 16  # inclusion-exclusion sums 2^n - 1 terms
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
