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
from .gates import GATES

NUM_REGS = 16
MAX_INSTRS = 4096
MAX_ARRAY_TOTAL = 65536
MAX_QUBIT_ID = 1023
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


class Subroutine(msgspec.Struct, frozen=True, kw_only=True):
    """A whole block: array declarations, instructions, labels (name -> instr index)."""

    arrays: Annotated[dict[_Names, int], msgspec.Meta(max_length=4096)]
    instrs: Annotated[list[Instr], msgspec.Meta(max_length=65_536)]
    labels: Annotated[dict[_Names, int], msgspec.Meta(max_length=65_536)]


# Operand kinds: R dest register, V int value (register or immediate), F angle
# (float or int immediate), Q qubit, E array element, L label, T ret target.
_KINDS: dict[str, tuple[type, ...]] = {
    "R": (Reg,),
    "V": (Reg, Imm),
    "F": (Flt, Imm),
    "Q": (Q,),
    "E": (Elem,),
    "L": (Lbl,),
    "T": (Reg, ArrName),
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
_DISTINCT_QUBITS = frozenset(QUANTUM_OPS) - {"wait"}


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
            if err is not None:
                raise _fail(n, ins.op, err)
        if len(args) > 1 and ins.op in _DISTINCT_QUBITS:
            qs = [a.i for a in args if type(a) is Q]
            if len(set(qs)) != len(qs):
                raise _fail(n, ins.op, f"the same qubit appears twice: Q{qs[0]}")
