"""The device work of one distillation round at one end (sans-IO): the native ops for
BBPSSW or DEJMPS on this end's halves of two pairs (``netlink.distill`` has the closed
forms and the conventions). The round succeeds when both ends' outcomes agree.

>>> from qnodeos.hardware.params import build
>>> ops = round_ops(Lowering(build("generic", 4)), "dejmps", keep=0, target=1, first=True)
>>> [op.op for op in ops]
['rx', 'rx', 'cnot', 'meas']
"""

from __future__ import annotations

import math

from ..lang import messages as m
from ..netlink.distill import SCHEMES
from .lower import Lowering


def round_ops(
    lowering: Lowering, scheme: str, *, keep: int, target: int, first: bool
) -> list[m.PhysOp]:
    """This end's ops on its halves ``keep`` (of the pair kept) and ``target`` (of the
    pair measured), physical qubits; ``first``: this is the first end of the pair (it
    rotates by +pi/2 in DEJMPS, the other end by -pi/2). The last op's outcome is this
    end's parity bit."""
    if scheme not in SCHEMES:
        raise ValueError(f"distillation scheme {scheme!r}; known: {', '.join(SCHEMES)}")
    low = lowering.lower
    ops: list[m.PhysOp] = []
    if scheme == "dejmps":
        theta = math.pi / 2 if first else -math.pi / 2
        ops += [*low("rx", (keep,), theta), *low("rx", (target,), theta)]
    ops += low("cnot", (keep, target))
    ops.append(m.PhysOp("meas", (target,)))
    return ops


def kept(mine: int, theirs: int) -> bool:
    """Whether a round with these two ends' outcomes succeeded."""
    return mine == theirs
