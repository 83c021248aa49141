"""Subroutines: the unit an app submits and the node runs on the device without interleaving.

A subroutine has classical registers ``R0..R15`` (64-bit ints), named integer arrays,
virtual qubits ``Q0..Qn`` (the app's own ids; the node maps them to physical qubits),
and a list of instructions. Labels name instruction positions for branches.

The opcode table ``OPCODES`` says which operand kinds each instruction takes; static
validation (`validate`) checks a subroutine against it before anything runs, so the
interpreter never meets an ill-typed instruction.

>>> sub = Subroutine(arrays={"out": 1}, instrs=[
...     Instr(op="qalloc", args=(Q(i=0),)), Instr(op="init", args=(Q(i=0),)),
...     Instr(op="h", args=(Q(i=0),)), Instr(op="meas", args=(Q(i=0), Reg(i=0))),
...     Instr(op="store", args=(Reg(i=0), Elem(array="out", index=Imm(v=0)))),
...     Instr(op="ret", args=(ArrName(name="out"),))], labels={})
>>> validate(sub)
"""

from __future__ import annotations

import math
import re
from typing import Annotated, Any, Union

import msgspec

from ..errors import ProgramError
from .bounds import Angle, Name, Probability, Seconds
from .gates import GATES

NUM_REGS = 16
MAX_INSTRS = 4096
MAX_ARRAY_TOTAL = 65536
MAX_QUBIT_ID = 1023
MAX_EPRS = 16  # EPR requests one block declares
MAX_BLOCK_PAIRS = 4096  # pairs one of them asks for
EPR_KINDS = ("K", "M", "R")
INT_MIN, INT_MAX = -(2**63), 2**63 - 1
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,31}$")


class Reg(msgspec.Struct, frozen=True, array_like=True, tag="R"):
    """Classical register ``R<i>``."""

    i: int


class Imm(msgspec.Struct, frozen=True, array_like=True, tag="I"):
    """Integer immediate."""

    v: int


class Flt(msgspec.Struct, frozen=True, array_like=True, tag="F"):
    """Float immediate (angles, in radians)."""

    v: float


class Q(msgspec.Struct, frozen=True, array_like=True, tag="Q"):
    """Virtual qubit ``Q<i>`` of the submitting app."""

    i: int


class Elem(msgspec.Struct, frozen=True, array_like=True, tag="E"):
    """Array element ``name[index]``."""

    array: Annotated[str, msgspec.Meta(max_length=64)]
    index: Union[Reg, Imm]  # noqa: UP007 (msgspec needs the Union form here)


class ArrName(msgspec.Struct, frozen=True, array_like=True, tag="A"):
    """A whole array (for ``ret``)."""

    name: Annotated[str, msgspec.Meta(max_length=64)]


class Lbl(msgspec.Struct, frozen=True, array_like=True, tag="L"):
    """A branch target, written ``@name``."""

    name: Annotated[str, msgspec.Meta(max_length=64)]


Operand = Union[Reg, Imm, Flt, Q, Elem, ArrName, Lbl]  # noqa: UP007


class Instr(msgspec.Struct, frozen=True, array_like=True):
    """One instruction: opcode and operands."""

    op: Annotated[str, msgspec.Meta(max_length=32)]
    args: Annotated[tuple[Operand, ...], msgspec.Meta(max_length=8)]


# Hard caps for decoding; ``validate`` applies the node's (smaller) limits with clearer
# messages.
_Names = Annotated[str, msgspec.Meta(max_length=64)]


Angles = tuple[Angle, Angle, Angle]


class EprSpec(msgspec.Struct, frozen=True, kw_only=True):
    """An EPR request made from inside a block (``epr S`` starts it, ``epr_wait S, N``
    waits until N of its pairs are in), with app ``app`` on node ``node``.

    ``kind``: "K" keeps pair i in qubit ``qubits[i]`` (one qubit id for every pair when
    ``sequential``: each pair waits until the block freed the previous one); "M"
    measures each pair at once, in ``chosen[i]`` (X, Y or Z) if given, else after the
    rotations ``rotations[i]`` (or ``rotations[0]`` for all: Rx, then Ry, then Rx, in
    radians, then Z, as NetQASM's rotations), else in a basis drawn from ``bases``;
    "R" (remote state preparation): the creator measures as in M, the receiver keeps
    as in K. Outcomes go to array ``out`` (M, and R at the creator), the pairs' station
    sequence numbers (the same at both ends) to array ``ids`` when named.
    ``remote_chosen``/``remote_rotations`` (creator of M pairs): the bases the receiver
    measures in, when the receiver's request says ``peer_bases``."""

    node: Name
    app: Name
    role: Annotated[str, msgspec.Meta(max_length=8)]
    kind: Annotated[str, msgspec.Meta(max_length=1)]
    number: Annotated[int, msgspec.Meta(ge=1, le=MAX_BLOCK_PAIRS)]
    qubits: Annotated[list[int], msgspec.Meta(max_length=MAX_BLOCK_PAIRS)] = []
    sequential: bool = False
    bases: Annotated[str, msgspec.Meta(max_length=3)] = "Z"
    chosen: Annotated[str, msgspec.Meta(max_length=MAX_BLOCK_PAIRS)] = ""
    rotations: Annotated[list[Angles], msgspec.Meta(max_length=MAX_BLOCK_PAIRS)] = []
    min_fidelity: Probability = 0.0
    timeout_s: Seconds = 30.0
    out: Annotated[str, msgspec.Meta(max_length=64)] = ""
    ids: Annotated[str, msgspec.Meta(max_length=64)] = ""
    remote_chosen: Annotated[str, msgspec.Meta(max_length=MAX_BLOCK_PAIRS)] = ""
    remote_rotations: Annotated[list[Angles], msgspec.Meta(max_length=MAX_BLOCK_PAIRS)] = []
    peer_bases: bool = False

    def measures(self) -> bool:
        """Whether this end measures its halves (else it keeps them)."""
        return self.kind == "M" or (self.kind == "R" and self.role == "create")


class Subroutine(msgspec.Struct, frozen=True, kw_only=True):
    """A whole block: array declarations, instructions, labels (name -> instr index),
    and the EPR requests its ``epr`` instructions start."""

    arrays: Annotated[dict[_Names, int], msgspec.Meta(max_length=4096)]
    # Bounded on the wire: a longer block is refused before its instructions are read.
    instrs: Annotated[list[Instr], msgspec.Meta(max_length=MAX_INSTRS)]
    labels: Annotated[dict[_Names, int], msgspec.Meta(max_length=MAX_INSTRS + 1)]
    eprs: Annotated[list[EprSpec], msgspec.Meta(max_length=MAX_EPRS)] = []


# Operand kinds: R dest register, V int value (register or immediate), F angle
# (float or int immediate), Q qubit, E array element, L label, T ret target, S an EPR
# request of the block (immediate index into ``eprs``).
_KINDS: dict[str, tuple[type, ...]] = {
    "R": (Reg,),
    "V": (Reg, Imm),
    "F": (Flt, Imm),
    "Q": (Q,),
    "E": (Elem,),
    "L": (Lbl,),
    "T": (Reg, ArrName),
    "S": (Imm,),
}

CLASSICAL_OPS: dict[str, str] = {
    "set": "RV",
    "add": "RVV",
    "sub": "RVV",
    "mul": "RVV",
    "div": "RVV",
    "mod": "RVV",
    "load": "RE",
    "store": "VE",
    "jmp": "L",
    "beq": "VVL",
    "bne": "VVL",
    "blt": "VVL",
    "bge": "VVL",
    "ret": "T",
}
QUANTUM_OPS: dict[str, str] = {
    "qalloc": "Q",
    "qfree": "Q",
    "init": "Q",
    "meas": "QR",
    "wait": "V",
    "peek": "Q",
    "peek_group": "Q",  # the joint state of the qubit's entangled group
    "epr": "S",
    "epr_wait": "SV",
}
for _g in GATES.values():
    QUANTUM_OPS[_g.name] = "Q" * _g.arity + ("F" if _g.angle else "")

OPCODES: dict[str, str] = {**CLASSICAL_OPS, **QUANTUM_OPS}


def _reg(arg: Reg, sub: Subroutine) -> str | None:
    if 0 <= arg.i < NUM_REGS:
        return None
    return f"register R{arg.i} out of range R0..R{NUM_REGS - 1}"


def _imm(arg: Imm, sub: Subroutine) -> str | None:
    return None if INT_MIN <= arg.v <= INT_MAX else f"immediate {arg.v} does not fit in 64 bits"


def _flt(arg: Flt, sub: Subroutine) -> str | None:
    return None if math.isfinite(arg.v) else f"angle {arg.v} is not finite"


def _qubit(arg: Q, sub: Subroutine) -> str | None:
    if 0 <= arg.i <= MAX_QUBIT_ID:
        return None
    return f"qubit Q{arg.i} out of range Q0..Q{MAX_QUBIT_ID}"


def _elem(arg: Elem, sub: Subroutine) -> str | None:
    length = sub.arrays.get(arg.array)
    if length is None:
        return f"array {arg.array!r} is not declared"
    ix = arg.index
    if isinstance(ix, Reg):
        return _reg(ix, sub)
    if not 0 <= ix.v < length:
        return f"index {ix.v} out of bounds for {arg.array}[{length}]"
    return None


def _arr(arg: ArrName, sub: Subroutine) -> str | None:
    return None if arg.name in sub.arrays else f"array {arg.name!r} is not declared"


def _lbl(arg: Lbl, sub: Subroutine) -> str | None:
    return None if arg.name in sub.labels else f"label {arg.name!r} is not defined"


# One check per operand type (a table, not an isinstance chain).
_CHECKS: dict[type, Any] = {
    Reg: _reg,
    Imm: _imm,
    Flt: _flt,
    Q: _qubit,
    Elem: _elem,
    ArrName: _arr,
    Lbl: _lbl,
}
_KIND_TYPES = {k: frozenset(v) for k, v in _KINDS.items()}
_DISTINCT_QUBITS = frozenset(QUANTUM_OPS) - {"wait", "epr", "epr_wait"}


def _fail(n: int, op: str, msg: str) -> ProgramError:
    return ProgramError(f"instruction {n} ({op}): {msg}")


def validate(sub: Subroutine, max_instrs: int = MAX_INSTRS) -> None:
    """Check a subroutine against the opcode table and its own declarations.

    Raises ProgramError naming the first offending instruction and operand.
    """
    if len(sub.instrs) > max_instrs:
        raise ProgramError(f"subroutine has {len(sub.instrs)} instructions; limit is {max_instrs}")
    total = 0
    for name, length in sub.arrays.items():
        if not _NAME.match(name):
            raise ProgramError(f"array name {name!r} is not an identifier")
        if not 1 <= length <= MAX_ARRAY_TOTAL:
            raise ProgramError(f"array {name!r} length {length} not in 1..{MAX_ARRAY_TOTAL}")
        total += length
    if total > MAX_ARRAY_TOTAL:
        raise ProgramError(f"arrays hold {total} elements in all; limit is {MAX_ARRAY_TOTAL}")
    for name, pos in sub.labels.items():
        if not _NAME.match(name):
            raise ProgramError(f"label name {name!r} is not an identifier")
        if not 0 <= pos <= len(sub.instrs):
            raise ProgramError(f"label {name!r} points at {pos}, outside 0..{len(sub.instrs)}")
    for i, spec in enumerate(sub.eprs):
        problem = _epr_problem(spec, sub)
        if problem is not None:
            raise ProgramError(f"EPR request {i} (with {spec.app!r} on {spec.node!r}): {problem}")
    for n, ins in enumerate(sub.instrs):
        sig = OPCODES.get(ins.op)
        if sig is None:
            raise ProgramError(f"instruction {n}: unknown instruction {ins.op!r}")
        args = ins.args
        if len(args) != len(sig):
            raise _fail(n, ins.op, f"takes {len(sig)} operands, got {len(args)}")
        for kind, arg in zip(sig, args, strict=True):
            if type(arg) not in _KIND_TYPES[kind]:
                names = "/".join(t.__name__ for t in _KINDS[kind])
                raise _fail(n, ins.op, f"expected {names}, got {type(arg).__name__}")
            err = _CHECKS[type(arg)](arg, sub)
            if kind == "S" and isinstance(arg, Imm) and not 0 <= arg.v < len(sub.eprs):
                err = f"EPR request {arg.v} is not declared ({len(sub.eprs)} declared)"
            if err is not None:
                raise _fail(n, ins.op, err)
        if len(args) > 1 and ins.op in _DISTINCT_QUBITS:
            qs = [a.i for a in args if type(a) is Q]
            if len(set(qs)) != len(qs):
                raise _fail(n, ins.op, f"the same qubit appears twice: Q{qs[0]}")


def _epr_problem(e: EprSpec, sub: Subroutine) -> str | None:
    """What is wrong with an in-block EPR request (None: nothing)."""
    if e.role not in ("create", "recv"):
        return f"role {e.role!r}; use 'create' or 'recv'"
    if e.kind not in EPR_KINDS:
        return f"kind {e.kind!r}; use K (keep), M (measure) or R (remote state preparation)"
    if not e.bases or set(e.bases) - set("XYZ"):
        return f"bases {e.bases!r}: use letters from X, Y, Z"
    if e.measures():
        if e.qubits:
            return "a measuring end names no qubits"
        if e.chosen and (len(e.chosen) != e.number or set(e.chosen) - set("XYZ")):
            return f"chosen bases must be {e.number} letters from X, Y, Z"
        if e.rotations and len(e.rotations) not in (1, e.number):
            return f"{len(e.rotations)} rotations for {e.number} pairs (give 1 or {e.number})"
        if e.chosen and e.rotations:
            return "give chosen bases or rotations, not both"
        if any(not math.isfinite(a) for r in e.rotations for a in r):
            return "a rotation angle is not finite"
        if e.out and sub.arrays.get(e.out, 0) < e.number:
            return f"array {e.out!r} must be declared with at least {e.number} elements"
    else:
        if e.chosen or e.rotations:
            return "a keeping end measures nothing: no chosen bases or rotations"
        want = 1 if e.sequential else e.number
        if len(e.qubits) != want or len(set(e.qubits)) != want:
            return f"give {want} distinct qubit id(s) to keep the pairs in, got {e.qubits[:8]}"
        if any(not 0 <= q <= MAX_QUBIT_ID for q in e.qubits):
            return f"qubit ids must be in 0..{MAX_QUBIT_ID}"
        if e.out:
            return "a keeping end has no outcomes: no out array"
    if e.ids and sub.arrays.get(e.ids, 0) < e.number:
        return f"array {e.ids!r} must be declared with at least {e.number} elements"
    return None
