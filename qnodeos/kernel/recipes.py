"""What a quantum process does right after each herald of a round, per Bell index
(sans-IO): the recipes the network stack sends with an ``Entangle``.

Kept pairs: at the link's first node, the Pauli that turns the heralded Bell state
into Phi+. Measured pairs: rotate into the pair's basis and measure; the first node
flips its outcome where its correction would have anticommuted with the basis
(``FLIPS``), so outcomes correlate as for Phi+. Measured after given rotations (Rx,
Ry, Rx; NetQASM's convention): the first node corrects to Phi+ first.
"""

from __future__ import annotations

import math

from qnodeos.netlink import egp as e
from qnodeos.netlink.models import CORRECTION  # the Pauli that maps a Bell index to Phi+

from ..lang import messages as m
from .lower import Lowering

# Bell index whose correction anticommutes with measuring in each basis (flip outcome)
FLIPS = {"Z": {2, 3}, "X": {1, 3}, "Y": {1, 2}}
BASIS_ROTATION = {"Z": (), "X": (("h", 0.0),), "Y": (("rx", math.pi / 2),)}


def make_recipes(
    lowering: Lowering,
    msg: m.EprRequest,
    r: e.Round,
    qubits: list[int],
    pairs: int,
    owner: bool,
) -> tuple[list[list[list[m.PhysOp]]], list[int]]:
    """What the quantum process does right after each herald, per Bell index: M,
    rotate into the pair's basis and measure (given rotations: at the link's first
    node, correct to Phi+ first); K, at the link's first node, turn the pair into
    Phi+. (recipes, the recipe of each pair)."""
    if msg.measures():
        (q,) = qubits
        if msg.rotations:
            rots = msg.rotations
            if len(rots) > 1:
                rots = rots[r.pair : r.pair + pairs]
            kinds = sorted(set(rots))
            recipes = []
            for a, b, c in kinds:
                turn = [
                    op
                    for g, theta in (("rx", a), ("ry", b), ("rx", c))
                    if theta
                    for op in lowering.lower(g, (q,), theta)
                ]
                fix = [
                    [op for g in CORRECTION[bell] for op in lowering.lower(g, (q,))]
                    if owner
                    else []
                    for bell in range(4)
                ]
                recipes.append([[*f, *turn, m.PhysOp("meas", (q,))] for f in fix])
            plan = [kinds.index(x) for x in rots] if len(rots) > 1 else [0] * pairs
            return recipes, plan
        chosen = _bases(msg, r.pair, pairs, r.bases)
        bases = sorted(set(chosen))
        recipes = []
        for basis in bases:
            ops = [
                op
                for g, theta in BASIS_ROTATION[basis]
                for op in lowering.lower(g, (q,), theta)
            ]
            recipes.append([[*ops, m.PhysOp("meas", (q,))]] * 4)
        return recipes, [bases.index(b) for b in chosen]
    if not owner:
        return [], []
    recipes = [
        [[op for g in CORRECTION[b] for op in lowering.lower(g, (q,))] for b in range(4)]
        for q in qubits
    ]
    return recipes, list(range(len(qubits)))


def _bases(msg: m.EprRequest, first: int, pairs: int, drawn: tuple[str, ...]) -> str:
    """This end's basis for pairs ``first``.. of the request: chosen, or drawn."""
    if msg.chosen:
        return msg.chosen[first : first + pairs]
    return "".join(drawn[:pairs])
