"""Making room on devices where only some qubits can do some things (NV: only the
electron can be entangled or read out, and two-qubit gates need it): move a qubit's
state into a free qubit of another kind, remapping its owner's qubit id.

The move, with the target in |0>: CNOT(src -> dst) then CNOT(dst -> src) leaves the
state in dst and src in |0>, with both gates' time and noise (lowered to native gates).
"""

from __future__ import annotations

from collections.abc import Callable

from ..errors import DeviceError
from ..hardware.specs import QubitKind
from ..lang.messages import PhysOp
from .lower import Lowering
from .memory import MemoryManager


def _move_ops(lowering: Lowering, src: int, dst: int) -> list[PhysOp]:
    return [
        PhysOp("init", (dst,)),
        *lowering.lower("cnot", (src, dst)),
        *lowering.lower("cnot", (dst, src)),
    ]


def make_room(
    memory: MemoryManager, lowering: Lowering, needed: Callable[[QubitKind], bool]
) -> list[PhysOp] | None:
    """Free a qubit of a kind ``needed`` accepts by moving its state into a free qubit of
    another kind: the ops (the memory map is updated), or None if impossible."""
    spec = memory.spec
    busy = [q for q in range(spec.num_qubits) if needed(spec.kind(q)) and q not in memory.free]
    spare = [q for q in sorted(memory.free) if not needed(spec.kind(q))]
    for src in busy:
        for dst in spare:
            try:
                ops = _move_ops(lowering, src, dst)
            except DeviceError:
                continue
            memory.move(src, dst)
            return ops
    return None


def route(
    memory: MemoryManager, lowering: Lowering, gate: str, qubits: tuple[int, int], theta: float
) -> list[PhysOp] | None:
    """Make a two-qubit gate the topology forbids (NV: carbon-carbon) possible by moving
    one of its qubits into a free qubit of another kind (the electron): the move and the
    gate, lowered (the memory map is updated), or None if no move helps."""
    spec = memory.spec
    for i, q in enumerate(qubits):
        for free in sorted(memory.free):
            if spec.qubits[free] == spec.qubits[q]:
                continue
            moved = (free, qubits[1]) if i == 0 else (qubits[0], free)
            try:
                ops = _move_ops(lowering, q, free) + lowering.lower(gate, moved, theta)
            except DeviceError:
                continue
            memory.move(q, free)
            return ops
    return None
