"""Text form of subroutines: ``parse(text)`` and ``dumps(sub)``; ``dumps(parse(t)) == t``
for text in canonical form (what ``dumps`` prints).

One line per item: ``array NAME LEN`` declarations first, then instructions
``op arg arg ...`` and label definitions ``name:``. Operands: ``R3`` register, ``Q0``
qubit, ``7`` integer, ``1.5707963267948966`` float (always with ``.``, ``e``),
``out[R1]`` / ``out[2]`` array element, ``out`` whole array (for ``ret``), ``@loop``
label. ``#`` starts a comment. EPR requests the block's ``epr S`` instructions start are
declared with the arrays, numbered from 0 in order: ``request NODE APP ROLE KIND N``
then ``key=value`` options (``qubits=1,2``, ``sequential=1``, ``bases=XZ``,
``chosen=ZZX``, ``rotations=0.1,0,0;...``, ``min_fidelity=0.9``, ``timeout_s=5.0``,
``out=m``, ``ids=ids``; see ``EprSpec``).

>>> print(dumps(parse("qalloc Q0\\nh Q0\\nmeas Q0 R0\\nret R0")), end="")
qalloc Q0
h Q0
meas Q0 R0
ret R0
"""

from __future__ import annotations

import re
from collections.abc import Callable

import msgspec

from ..errors import ParseError, ProgramError
from .program import (
    OPCODES,
    ArrName,
    Elem,
    EprSpec,
    Flt,
    Imm,
    Instr,
    Lbl,
    Operand,
    Q,
    Reg,
    Subroutine,
    validate,
)

_ELEM = re.compile(r"^([A-Za-z_][A-Za-z0-9_]*)\[(R\d+|-?\d+)\]$")
_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def _index(tok: str) -> Reg | Imm:
    return Reg(i=int(tok[1:])) if tok.startswith("R") else Imm(v=int(tok))


def _operand(tok: str, where: str) -> Operand:
    if re.fullmatch(r"R\d+", tok):
        return Reg(i=int(tok[1:]))
    if re.fullmatch(r"Q\d+", tok):
        return Q(i=int(tok[1:]))
    if re.fullmatch(r"-?\d+", tok):
        return Imm(v=int(tok))
    if tok.startswith("@") and _IDENT.match(tok[1:]):
        return Lbl(name=tok[1:])
    m = _ELEM.match(tok)
    if m:
        return Elem(array=m.group(1), index=_index(m.group(2)))
    if _IDENT.match(tok):
        return ArrName(name=tok)
    try:
        return Flt(v=float(tok))
    except ValueError:
        raise ParseError(f"{where}: cannot read operand {tok!r}") from None


def parse(text: str, *, check: bool = True) -> Subroutine:
    """Parse the text form; with ``check`` also validate it (raises ParseError)."""
    arrays: dict[str, int] = {}
    instrs: list[Instr] = []
    labels: dict[str, int] = {}
    eprs: list[EprSpec] = []
    for lineno, raw in enumerate(text.splitlines(), start=1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        where = f"line {lineno}"
        if line.endswith(":"):
            name = line[:-1]
            if not _IDENT.match(name) or name in labels:
                raise ParseError(f"{where}: bad or duplicate label {name!r}")
            labels[name] = len(instrs)
            continue
        op, *toks = line.split()
        if op == "array":
            if len(toks) != 2 or not _IDENT.match(toks[0]) or not toks[1].isdigit():
                raise ParseError(f"{where}: expected 'array NAME LENGTH', got {line!r}")
            if instrs or toks[0] in arrays:
                raise ParseError(f"{where}: array {toks[0]!r} declared twice or after code")
            arrays[toks[0]] = int(toks[1])
            continue
        if op == "request":
            if instrs:
                raise ParseError(f"{where}: EPR requests are declared before the code")
            eprs.append(_request(toks, where))
            continue
        if op not in OPCODES:
            raise ParseError(f"{where}: unknown instruction {op!r}")
        instrs.append(Instr(op=op, args=tuple(_operand(t, where) for t in toks)))
    sub = Subroutine(arrays=arrays, instrs=instrs, labels=labels, eprs=eprs)
    if check:
        try:
            validate(sub)
        except ProgramError as exc:
            raise ParseError(str(exc)) from None
    return sub


_LISTS: dict[str, Callable[[str], object]] = {
    "qubits": lambda v: [int(x) for x in v.split(",")],
    "sequential": lambda v: bool(int(v)),
    "rotations": lambda v: [tuple(float(a) for a in r.split(",")) for r in v.split(";")],
    "min_fidelity": float,
    "timeout_s": float,
}


def _request(toks: list[str], where: str) -> EprSpec:
    """``request NODE APP ROLE KIND N key=value...``"""
    if len(toks) < 5 or not toks[4].isdigit():
        raise ParseError(f"{where}: expected 'request NODE APP ROLE KIND N [key=value ...]'")
    node, app, role, kind, n = toks[:5]
    opts: dict[str, object] = {}
    for tok in toks[5:]:
        key, eq, value = tok.partition("=")
        if not eq or key not in EprSpec.__struct_fields__[5:]:
            raise ParseError(f"{where}: bad request option {tok!r}")
        try:
            opts[key] = _LISTS.get(key, str)(value)
        except ValueError:
            raise ParseError(f"{where}: cannot read {key} from {value!r}") from None
    try:
        spec = msgspec.convert(
            {"node": node, "app": app, "role": role, "kind": kind, "number": int(n), **opts},
            EprSpec,
        )
        return spec
    except (TypeError, ValueError, msgspec.ValidationError) as exc:
        raise ParseError(f"{where}: {exc}") from None


def _format_request(e: EprSpec) -> str:
    words = ["request", e.node, e.app, e.role, e.kind, str(e.number)]
    default = EprSpec(node="", app="", role="", kind="", number=1)
    for key in EprSpec.__struct_fields__[5:]:
        v = getattr(e, key)
        if v == getattr(default, key):
            continue
        if key == "qubits":
            v = ",".join(map(str, v))
        elif key == "sequential":
            v = int(v)
        elif key == "rotations":
            v = ";".join(",".join(repr(float(a)) for a in r) for r in v)
        words.append(f"{key}={v}")
    return " ".join(words)


def format_operand(arg: Operand) -> str:
    """Text of one operand."""
    match arg:
        case Reg(i=i):
            return f"R{i}"
        case Q(i=i):
            return f"Q{i}"
        case Imm(v=v):
            return str(v)
        case Flt(v=v):
            return repr(float(v))
        case Elem(array=a, index=ix):
            return f"{a}[{format_operand(ix)}]"
        case ArrName(name=n):
            return n
        case Lbl(name=n):
            return f"@{n}"
    raise TypeError(f"not an operand: {arg!r}")


def dumps(sub: Subroutine) -> str:
    """Canonical text of a subroutine (labels sorted by name at each position)."""
    at: dict[int, list[str]] = {}
    for name, pos in sub.labels.items():
        at.setdefault(pos, []).append(name)
    lines = [f"array {n} {ln}" for n, ln in sub.arrays.items()]
    lines += [_format_request(e) for e in sub.eprs]
    for pos in range(len(sub.instrs) + 1):
        lines.extend(f"{n}:" for n in sorted(at.get(pos, ())))
        if pos < len(sub.instrs):
            ins = sub.instrs[pos]
            lines.append(" ".join([ins.op, *map(format_operand, ins.args)]))
    return "".join(line + "\n" for line in lines)
