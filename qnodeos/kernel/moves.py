"""Making room on devices where only some qubits can do some things (NV: only the
electron can be entangled or read out): move the state of a busy qubit of the needed
kind into a free qubit that can hold it (a carbon), remapping its owner's qubit id.

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
                ops = [
                    PhysOp("init", (dst,)),
                    *lowering.lower("cnot", (src, dst)),
                    *lowering.lower("cnot", (dst, src)),
                ]
            except DeviceError:
                continue
            memory.move(src, dst)
            return ops
    return None
