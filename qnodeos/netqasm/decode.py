"""NetQASM subroutines as the node reads them: bytes or text in, a checked list of
instructions out (node side; needs the ``netqasm`` package, ``pip install
'qnodeos[netqasm]'``).

The netqasm package does the reading: ``netqasm.lang.parsing.deserialize`` for the
binary encoding (fixed 7-byte commands whose ids depend on the flavour) and
``parse_text_subroutine`` for the text form. Here its instruction objects become plain
``NqInstr`` records (mnemonic and operands as numbers), every number is bounded, and
every instruction qnodeos cannot run is refused, named with its flavour, before anything
runs. The interpreter (``qnodeos.kernel.nqrun``) never sees netqasm's classes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..errors import ProgramError
from ..lang.program import MAX_INSTRS

FLAVOURS = ("vanilla", "nv", "trapped_ion")
REG_GROUPS = "RCQM"  # NetQASM register groups, 16 registers each
NUM_NQ_REGS = 64
MAX_ADDRESS = 1 << 16  # array addresses an app may use
I32_MIN, I32_MAX = -(2**31), 2**31 - 1

# What qnodeos runs, by mnemonic (classical and EPR instructions are in every flavour).
CORE = frozenset(
    "qalloc init array set store load undef lea jmp bez bnz beq bne blt bge add sub addm "
    "subm mul div rem meas meas_basis meas_basis_yzy meas_basis_zxz create_epr recv_epr "
    "wait_all wait_any wait_single qfree ret_reg ret_arr breakpoint".split()
)
SUPPORTED: dict[str, frozenset[str]] = {
    "vanilla": CORE | set("x y z h s k t rot_x rot_y rot_z cnot cphase mov swp".split()),
    "nv": CORE | set("rot_x rot_y rot_z crot_x crot_y mov swp".split()),
    "trapped_ion": CORE | set("rot_z rot_x_all rot_y_all bichromatic".split()),
}
# Defined by the netqasm package but not run here, and why.
UNSUPPORTED: dict[str, str] = {
    "init_all": "initialise the qubits one by one (init)",
    "meas_all": "measure the qubits one by one (meas)",
    "rot_z_all": "the ion device has no collective Z rotation; rotate each ion (rot_z)",
}


@dataclass(frozen=True, slots=True)
class Reg:
    """Register: index = 16 * group (R, C, Q, M) + number."""

    i: int

    def __str__(self) -> str:
        return f"{REG_GROUPS[self.i // 16]}{self.i % 16}"


@dataclass(frozen=True, slots=True)
class Addr:
    a: int


@dataclass(frozen=True, slots=True)
class Entry:
    a: int
    index: Reg


@dataclass(frozen=True, slots=True)
class Slice:
    a: int
    start: Reg
    stop: Reg


Operand = Reg | Addr | Entry | Slice | int


@dataclass(frozen=True, slots=True)
class NqInstr:
    op: str
    args: tuple[Operand, ...]


def _netqasm() -> Any:
    try:
        import netqasm.lang.instr as instr
        import netqasm.lang.operand as operand
        import netqasm.lang.parsing as parsing
    except ImportError as exc:  # the extra is not installed on this node
        raise ProgramError(
            f"this node cannot read NetQASM: the netqasm package is missing ({exc}); "
            f"install it with pip install 'qnodeos[netqasm]'"
        ) from None
    return instr, operand, parsing


def _flavour(name: str) -> Any:
    instr, _, _ = _netqasm()
    classes = {
        "vanilla": instr.VanillaFlavour,
        "nv": instr.NVFlavour,
        "trapped_ion": instr.TrappedIonFlavour,
    }
    if name not in classes:
        raise ProgramError(f"NetQASM flavour {name!r} unknown; use one of {', '.join(FLAVOURS)}")
    return classes[name]()


def too_big(code: bytes, form: str, max_instrs: int = MAX_INSTRS) -> str | None:
    """Why a NetQASM subroutine is refused before it is parsed (None: it may be
    parsed). netqasm's parser takes ~0.5 ms a text line and ~60 us a binary command, so
    size is checked first, by counting bytes or newlines (~30 us for 16,000 lines): a
    binary holds 7 bytes per instruction; a text line is an instruction, a label, or a
    comment, and two lines per instruction (plus 64 for headers) is allowed."""
    if form == "binary":
        if len(code) < 4 or (len(code) - 4) % 7:
            return f"{len(code)} bytes is not 4 bytes of metadata plus 7-byte commands"
        if (len(code) - 4) // 7 > max_instrs:
            return f"{(len(code) - 4) // 7} instructions; limit {max_instrs}"
    elif form == "text":
        lines = code.count(b"\n") + 1
        if lines > 2 * max_instrs + 64:
            return f"{lines} lines; limit {2 * max_instrs + 64} for {max_instrs} instructions"
    return None


def decode(code: bytes, form: str, flavour: str, max_instrs: int = MAX_INSTRS) -> list[NqInstr]:
    """Read a NetQASM subroutine (``form`` "binary" or "text") of ``flavour``.

    Raises ProgramError naming what is wrong: unreadable bytes or text, an instruction
    this node does not run, a register, address or immediate out of range.
    """
    fl = _flavour(flavour)
    _, _, parsing = _netqasm()
    try:
        big = too_big(code, form, max_instrs)
        if big is not None:
            raise ProgramError(f"NetQASM {form} refused before parsing: {big}")
        if form == "binary":
            sub = parsing.deserialize(code, flavour=fl)
        elif form == "text":
            sub = parsing.parse_text_subroutine(code.decode("utf-8"), flavour=fl)
        else:
            raise ProgramError(f"NetQASM form {form!r} unknown; use binary or text")
    except ProgramError:
        raise
    except Exception as exc:  # netqasm raises many kinds; all mean unreadable input
        what = "binary" if form == "binary" else "text"
        raise ProgramError(
            f"bad NetQASM {what} ({flavour} flavour): {type(exc).__name__}: {exc}"
        ) from None
    instrs = list(sub.instructions)
    if len(instrs) > max_instrs:
        raise ProgramError(f"NetQASM subroutine has {len(instrs)} instructions; limit {max_instrs}")
    return [_convert(n, ins, flavour, len(instrs)) for n, ins in enumerate(instrs)]


def _convert(n: int, ins: Any, flavour: str, count: int) -> NqInstr:
    op = str(ins.mnemonic)
    if op not in SUPPORTED[flavour]:
        why = UNSUPPORTED.get(op, "qnodeos does not run it")
        raise ProgramError(
            f"NetQASM instruction {n} ({op}, {flavour} flavour) is not supported: {why}"
        )
    _, operand, _ = _netqasm()
    args = tuple(_operand(n, op, o, operand) for o in ins.operands)
    if op in ("jmp", "bez", "bnz", "beq", "bne", "blt", "bge"):
        target = args[-1]
        if not isinstance(target, int) or not 0 <= target <= count:
            raise ProgramError(
                f"NetQASM instruction {n} ({op}): branch target {target} outside 0..{count}"
            )
    return NqInstr(op, args)


def _operand(n: int, op: str, o: Any, operand: Any) -> Operand:
    def bad(text: str) -> ProgramError:
        return ProgramError(f"NetQASM instruction {n} ({op}): {text}")

    if isinstance(o, operand.Register):
        group = REG_GROUPS.find(str(o.name.name))
        if group < 0 or not 0 <= int(o.index) < 16:
            raise bad(f"register {o} out of range (R, C, Q, M 0..15)")
        return Reg(16 * group + int(o.index))
    if isinstance(o, operand.Immediate):
        v = int(o.value)
        if not I32_MIN <= v <= I32_MAX:
            raise bad(f"immediate {v} does not fit in 32 bits")
        return v
    if isinstance(o, operand.Address):
        return Addr(_address(o, bad))
    if isinstance(o, operand.ArrayEntry):
        if not isinstance(o.index, operand.Register):
            raise bad(f"array index {o.index!r} is not a register")
        index = _operand(n, op, o.index, operand)
        assert isinstance(index, Reg)
        return Entry(_address(o.address, bad), index)
    if isinstance(o, operand.ArraySlice):
        start = _operand(n, op, o.start, operand)
        stop = _operand(n, op, o.stop, operand)
        if not isinstance(start, Reg) or not isinstance(stop, Reg):
            raise bad("array slice bounds must be registers")
        return Slice(_address(o.address, bad), start, stop)
    raise bad(f"operand {o!r} of a kind qnodeos does not know")


def _address(o: Any, bad: Any) -> int:
    a = o.address
    if not isinstance(a, int) or not 0 <= a < MAX_ADDRESS:
        raise bad(f"array address {a!r} outside 0..{MAX_ADDRESS - 1}")
    return a
