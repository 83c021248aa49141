"""Helpers shared by the example apps: single-qubit states and bases, and binomial
statistics."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from qnodeos.sdk import Qubit

# Six cardinal states: (preparation gates on |0>, basis they are an eigenstate of,
# the outcome expected when measuring in that basis).
STATES: list[tuple[tuple[str, ...], str, int]] = [
    ((), "Z", 0),
    (("x",), "Z", 1),
    (("h",), "X", 0),
    (("x", "h"), "X", 1),
    (("h", "s"), "Y", 0),
    (("x", "h", "s"), "Y", 1),
]


def prepare(q: Qubit, k: int) -> None:
    """Turn |0> into cardinal state ``k`` of ``STATES``."""
    for g in STATES[k][0]:
        getattr(q, g)()


def to_z(q: Qubit, basis: str) -> None:
    """Rotate so that a Z measurement measures ``basis`` (X, Y or Z)."""
    if basis == "X":
        q.h()
    elif basis == "Y":
        q.rx(math.pi / 2)


def phi_plus_fidelity(terms: Mapping[str, Sequence[int]]) -> dict[str, Any]:
    """Fidelity to Phi+ from pairs both ends measured in the same basis: ``terms[b]``
    holds +1 (equal outcomes) or -1 per pair measured in basis b (X, Y, Z). Gives
    ``fidelity`` = (1 + <XX> - <YY> + <ZZ>)/4, its ``fidelity_stderr`` from the three
    correlators, and the ``correlators``.

    >>> r = phi_plus_fidelity({"X": [1, 1], "Y": [-1, -1], "Z": [1, -1]})
    >>> r["fidelity"], r["correlators"]["Z"]
    (0.75, 0.0)
    """
    e = {b: sum(terms[b]) / max(len(terms[b]), 1) for b in "XYZ"}
    var = sum((1 - e[b] ** 2) / max(len(terms[b]), 1) for b in "XYZ") / 16
    return {
        "fidelity": (1 + e["X"] - e["Y"] + e["Z"]) / 4,
        "fidelity_stderr": math.sqrt(var),
        "correlators": e,
    }


def rate(successes: int, n: int) -> tuple[float, float]:
    """Binomial estimate and its standard error."""
    if n == 0:
        return math.nan, math.nan
    p = successes / n
    return p, math.sqrt(max(p * (1 - p), 1.0 / n) / n)
