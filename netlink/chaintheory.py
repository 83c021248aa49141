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
until a herald, then on its right one; the ends are always ready. A link attempts
only while both its nodes are on it, and its next pair comes once both have let go
of the last one's halves (one half per side). With one cycle for every link, attempts
fall on one grid of cycles, and the chain is a Markov chain from cycle to cycle over
which halves each node holds: link j attempts iff neither node holds a half of it,
its left node is an end or holds only its left half, and its right node is an end or
holds no left half. A herald gives both nodes a half (an end measures its own at
once). With swap-as-soon-as-possible a repeater that holds both halves swaps at once
(2^(hops - 1) states: which repeaters hold their left half); in nested swapping it
swaps once the repeaters below it (``protocols.nesting``) have swapped, so each
repeater also remembers whether it swapped since the one above it did. Each
end-to-end pair is one herald on the first link, so the mean attempts per end-to-end
pair in the long run is 1 / (p_0 P(the first link attempts)), from the stationary
distribution (one linear solve over the states reachable from an empty chain). Two
hops: sum 1/p_i (the links take turns); three, swap ASAP: E[max(G_0, G_2)] + 1/p_1;
three, nested: sum 1/p_i again (the top repeater waits for the other). Heralds,
recipes, swaps and messages are taken as instant (here they hold the device some 0.1
to 0.3 us per round, under 1 % of a 10 us cycle's wait).

>>> p = 0.3
>>> round(mean_attempts([p, p]), 9) == round((3 - 2 * p) / (p * (2 - p)), 9)
True
>>> round(mean_attempts([0.5]), 9), round(mean_time_ns([0.5, 0.5], [10.0, 10.0]) / 10, 9)
(2.0, 2.666666667)
>>> round(werner_fidelity([0.97] * 4), 6)
0.88701
>>> round(turns_attempts([0.2, 0.2]), 9), round(turns_attempts([0.2] * 3), 6)
(10.0, 12.222222)
>>> round(turns_attempts([0.2] * 3, "nested"), 9), round(turns_attempts([0.2] * 4, "nested"), 6)
(15.0, 15.987654)
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence

import numpy as np

from .protocols import nesting

MAX_LINKS = 16  # inclusion-exclusion sums 2^n - 1 terms
MAX_TURN_LINKS = 12  # the one-round-at-a-time chain has up to 2^(links - 1) states
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


POLICIES = ("asap", "nested")

# a state of the chain of links taking turns: per link, whether its left node and its
# right node hold its current pair's half; per node, whether it swapped since the node
# above it in nested swapping did (its half then reaches that node's segment end)
State = tuple[tuple[int, ...], tuple[int, ...], tuple[int, ...]]


def turns_attempts(ps: Sequence[float], policy: str = "asap") -> float:
    """Mean attempts (cycles of one length) per end-to-end pair in the long run, for a
    chain whose repeaters attempt one link at a time, left then right, and swap as soon
    as they hold both halves (``policy="asap"``) or, in nested swapping (``"nested"``),
    once the repeaters of their segment below them have swapped: the Markov chain of
    the module's docstring, over the states reachable from an empty chain."""
    n = len(ps)
    if not 1 <= n <= MAX_TURN_LINKS or not all(0 < p <= 1 for p in ps):
        raise ValueError(f"need 1..{MAX_TURN_LINKS} probabilities in (0, 1], got {list(ps)}")
    if policy not in POLICIES:
        raise ValueError(f"policy {policy!r}; known: {', '.join(POLICIES)}")
    chain = _Turns(ps, policy)
    empty: State = ((0,) * n, (0,) * n, (0,) * (n + 1))
    index, order, rows = {empty: 0}, [empty], []
    for s in order:  # grows as new states are reached
        row: dict[int, float] = {}
        for t, prob in chain.steps(s):
            if t not in index:
                index[t] = len(order)
                order.append(t)
            row[index[t]] = row.get(index[t], 0.0) + prob
        rows.append(row)
    size = len(order)
    step = np.zeros((size, size))
    for i, row in enumerate(rows):
        for j, prob in row.items():
            step[i, j] = prob
    # the stationary distribution: pi (step - I) = 0, sum pi = 1
    a = step.T - np.eye(size)
    a[-1, :] = 1.0
    b = np.zeros(size)
    b[-1] = 1.0
    pi = np.linalg.solve(a, b)
    first = float(sum(pi[i] for i, s in enumerate(order) if 0 in chain.attempting(s)))
    return 1.0 / (ps[0] * first)


class _Turns:
    """One cycle of the chain of links taking turns (``turns_attempts``)."""

    def __init__(self, ps: Sequence[float], policy: str) -> None:
        self.ps, self.n = ps, len(ps)
        self.repeaters = range(1, self.n)
        up = {i: nesting(self.n, i)[2] for i in self.repeaters} if policy == "nested" else {}
        self.parent = up
        self.below = {i: [k for k in self.repeaters if up.get(k) == i] for i in self.repeaters}

    def attempting(self, s: State) -> list[int]:
        """The links attempting in ``s``: neither node holds a half of theirs, the left
        node is an end or holds only its left half, the right node is an end or holds
        no left half (then none: it takes its left half first)."""
        left, right, _ = s
        n = self.n
        return [
            j for j in range(n)
            if not (left[j] or right[j])
            and (j == 0 or (right[j - 1] and not left[j]))
            and (j == n - 1 or not right[j])
        ]  # fmt: skip

    def steps(self, s: State) -> list[tuple[State, float]]:
        """The states after one cycle from ``s``, with their probabilities."""
        on = self.attempting(s)
        out = []
        for heralds in itertools.product((False, True), repeat=len(on)):
            prob = 1.0
            left, right = list(s[0]), list(s[1])
            for j, h in zip(on, heralds, strict=True):
                prob *= self.ps[j] if h else 1 - self.ps[j]
                if h:  # both nodes hold a half (an end measures its own at once)
                    left[j], right[j] = int(j > 0), int(j < self.n - 1)
            out.append((self._swap(left, right, list(s[2])), prob))
        return out

    def _swap(self, left: list[int], right: list[int], swapped: list[int]) -> State:
        """Every swap the halves held allow, until none does."""
        again = True
        while again:
            again = False
            for i in self.repeaters:
                below = self.below.get(i, [])
                if right[i - 1] and left[i] and all(swapped[k] for k in below):
                    right[i - 1] = left[i] = 0
                    for k in below:
                        swapped[k] = 0
                    swapped[i] = int(self.parent.get(i) is not None)
                    again = True
        return tuple(left), tuple(right), tuple(swapped)


def turns_time_ns(ps: Sequence[float], cycles_ns: Sequence[float], policy: str = "asap") -> float:
    """Mean time per end-to-end pair of ``turns_attempts``: every link must have the
    same cycle (their attempts then fall on one grid); ValueError otherwise."""
    if len(ps) != len(cycles_ns) or len(set(cycles_ns)) != 1 or not cycles_ns[0] > 0:
        raise ValueError(f"need one cycle > 0, the same for every link, got {list(cycles_ns)}")
    return cycles_ns[0] * turns_attempts(ps, policy)
