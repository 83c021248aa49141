"""Entanglement distillation, sans-IO: the closed forms of BBPSSW and DEJMPS, and the
number of rounds a target fidelity needs (bounded, so a request always ends).

Conventions. A Bell-diagonal state is given by its coefficients ``(A, B, C, D)`` on
(Phi+, Psi-, Psi+, Phi-), as in Deutsch et al. (PRL 77, 2818, 1996). One round takes two
pairs: each end applies the scheme's local rotation to both its halves (DEJMPS: Rx(pi/2)
at the first end, Rx(-pi/2) at the other; BBPSSW: the twirl, a random bilateral U x U*
on each pair, one of ``TWIRLS`` drawn by the creating end, which tells the other), a
CNOT from its half of the kept pair to its half of the sacrificed one, and measures the
latter in Z; the round succeeds when the two outcomes agree. The circuits are
``kernel.distill``'s, checked against these formulas on the device simulator
(tests/netlink/test_distill.py).

- BBPSSW (Bennett et al., PRL 76, 722, 1996) on Werner pairs of fidelity F: success
  p = F^2 + 2F(1-F)/3 + 5((1-F)/3)^2, output fidelity (F^2 + ((1-F)/3)^2) / p; the
  output is twirled back to a Werner state of that fidelity before the next round (the
  twirl of the next round's inputs), so the formula holds round after round.
- DEJMPS: p = (A + B)^2 + (C + D)^2 and (A, B, C, D) -> ((A^2 + B^2), 2CD, (C^2 + D^2),
  2AB) / p, no twirl.

>>> p, f = bbpssw(0.8)
>>> round(p, 4), round(f, 4)
(0.7689, 0.8382)
>>> rounds_for(0.8, 0.9, "dejmps")
2
"""

from __future__ import annotations

from .protocols import DistilView, Waiting

SCHEMES = ("bbpssw", "dejmps")
MAX_ROUNDS = 8  # 256 raw pairs per distilled one: beyond that a request is refused
# BBPSSW's twirl: U = C^j P at the first end, U* at the other, for twirl t = 4j + k:
# P the Pauli k (I, X, Y, Z) and C = S H, which cycles the Paulis X -> Z -> Y -> X
# under conjugation. U x U* keeps Phi+ and conjugates the Pauli error of a pair by U:
# the random P removes the coherences of any state (Bell-diagonal), the random C^j
# spreads its X, Y, Z weights evenly (Werner), and the fidelity stays.
TWIRLS = 12

Coeffs = tuple[float, float, float, float]


def bbpssw(f: float) -> tuple[float, float]:
    """(success probability, output fidelity) of one BBPSSW round on two Werner pairs
    of fidelity ``f``."""
    e = (1 - f) / 3
    p = f * f + 2 * f * (1 - f) / 3 + 5 * e * e
    return p, (f * f + e * e) / p


def dejmps(c: Coeffs) -> tuple[float, Coeffs]:
    """(success probability, output coefficients) of one DEJMPS round on two copies of
    the Bell-diagonal state ``c`` = (A, B, C, D) on (Phi+, Psi-, Psi+, Phi-)."""
    a, b, cc, d = c
    p = (a + b) ** 2 + (cc + d) ** 2
    return p, ((a * a + b * b) / p, 2 * cc * d / p, (cc * cc + d * d) / p, 2 * a * b / p)


def werner(f: float) -> Coeffs:
    e = (1 - f) / 3
    return (f, e, e, e)


def levels(f: float, scheme: str, rounds: int) -> list[tuple[float, Coeffs]]:
    """Round by round on Werner pairs of fidelity ``f``: (success probability of the
    round, Bell-diagonal coefficients after it)."""
    if scheme not in SCHEMES:
        raise ValueError(f"distillation scheme {scheme!r}; known: {', '.join(SCHEMES)}")
    out = []
    c = werner(f)
    for _ in range(rounds):
        if scheme == "bbpssw":
            p, fo = bbpssw(c[0])
            c = werner(fo)
        else:
            p, c = dejmps(c)
        out.append((p, c))
    return out


def after_rounds(f: float, scheme: str, rounds: int) -> tuple[float, float]:
    """(output fidelity, expected raw pairs per output pair) after ``rounds`` rounds
    of ``scheme`` on Werner pairs of fidelity ``f`` (each round uses two pairs that
    themselves came through the rounds before)."""
    cost = 1.0
    fo = f
    for p, c in levels(f, scheme, rounds):
        cost = 2 * cost / p
        fo = c[0]
    return fo, cost


def rounds_for(f: float, target: float, scheme: str, max_rounds: int = MAX_ROUNDS) -> int | None:
    """The fewest rounds of ``scheme`` that take Werner pairs of fidelity ``f`` to at
    least ``target`` (None: not within ``max_rounds``, or never: f <= 1/2)."""
    for r in range(max_rounds + 1):
        if after_rounds(f, scheme, r)[0] >= target:
            return r
    return None


def werner_product(fidelities: list[float]) -> float:
    """The fidelity of a pair swapped (noiselessly) from Werner pairs of these
    fidelities: Werner parameters w = (4F - 1)/3 multiply."""
    w = 1.0
    for f in fidelities:
        w *= (4 * f - 1) / 3
    return (3 * w + 1) / 4


def plan_rounds(scheme: str, rounds: int, target: float, fidelity: float) -> int | str:
    """The rounds an end-to-end request distils its pairs for: ``rounds`` if given, else
    the fewest (at least 1) that take pairs of ``fidelity`` to ``target``; a string
    says why it cannot be done."""
    if scheme not in SCHEMES:
        return f"distillation scheme {scheme!r}; known: {', '.join(SCHEMES)}"
    top = MAX_ROUNDS
    if rounds:
        return rounds if 1 <= rounds <= top else f"rounds {rounds} of {scheme}: 1 to {top}"
    need = rounds_for(fidelity, target, scheme, top)
    if need is None:
        return (
            f"target fidelity {target:g} is beyond {top} rounds of {scheme} on pairs of "
            f"fidelity {fidelity:.4g}"
        )
    return max(1, need)


class Pool:
    """The creating end's pairs that wait for a distillation round, by the rounds they
    went through (sans-IO). Which two make a round is its protocol's choice
    (``NetworkProtocol.distil``, shown ``view()``); ``take`` checks that choice and
    takes the two out (the receiving end follows the creator). A pair that went
    through ``rounds`` rounds is done, and not in the pool.

    >>> pool = Pool(rounds=1)
    >>> pool.add(4, 0, now=0.0); pool.add(9, 0, now=0.5)
    >>> [w.pair for w in pool.view(("a", "b"), "dejmps", top=1).waiting]
    [4, 9]
    >>> pool.take(9, 4), len(pool.waiting)
    (0, 0)
    """

    def __init__(self, rounds: int) -> None:
        self.rounds = rounds
        self.waiting: dict[int, Waiting] = {}  # pair id -> it, in the order they came

    def add(self, pair: int, level: int, now: float) -> None:
        """Pair ``pair`` went through ``level`` rounds (below ``rounds``)."""
        if not 0 <= level < self.rounds:
            raise ValueError(f"level {level}: a waiting pair has 0 to {self.rounds - 1} rounds")
        self.waiting[pair] = Waiting(pair=pair, level=level, since_s=now)

    def view(self, path: tuple[str, ...], scheme: str, top: int) -> DistilView:
        """The pool as its protocol sees it: by level, the oldest first at each."""
        ordered = sorted(self.waiting.values(), key=lambda w: (w.level, w.since_s))
        return DistilView(path=path, scheme=scheme, rounds=self.rounds,
                          waiting=tuple(ordered), top=top)  # fmt: skip

    def take(self, keep: int, target: int) -> int:
        """Take pairs ``keep`` and ``target`` out for a round; returns their level.
        ValueError, changing nothing, if they are not two waiting pairs of one level."""
        a, b = self.waiting.get(keep), self.waiting.get(target)
        if a is None or b is None or keep == target or a.level != b.level:
            have = {w.pair: w.level for w in self.waiting.values()}
            raise ValueError(
                f"Distill({keep}, {target}): not two waiting pairs at one level "
                f"(waiting, pair: level: {have})"
            )
        del self.waiting[keep], self.waiting[target]
        return a.level
