"""Runs one block (subroutine) for one app: classical control in the classical process,
physical instructions batched to the quantum process.

``advance()`` executes instructions until it needs the device, then returns the batch
of physical ops collected so far (``NeedDevice``); ``deliver(outcomes)`` hands back one
outcome per op and ``advance()`` continues. A batch is flushed only when an instruction
reads a register that a pending measurement will write, when it holds ``MAX_BATCH`` ops,
or at the end, so a block with no mid-circuit branching costs one device round trip
per ``MAX_BATCH`` ops. ``advance()`` returns
``Finished`` with the values named by ``ret`` instructions, or ``Paused`` when its slice
of instructions is used up, so the node can serve others before it continues.

Entanglement inside a block: ``epr S`` returns ``EprStart`` (the node starts request
``S`` and the block goes on); ``epr_wait S, N`` returns ``WaitPairs`` until N of its
pairs are in (``pairs_in`` records them: kept qubits become the block's, outcomes and
ids go to the arrays the request names). The node lets other blocks use the device
while this one waits.

Every instruction counts against a budget, so an infinite loop ends with a
ProgramError naming the budget and where the loop was.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from ..errors import DeviceError, ProgramError
from ..lang.gates import CORE_GATES, GATES
from ..lang.messages import EprPair, PhysOp
from ..lang.program import (
    INT_MAX,
    INT_MIN,
    NUM_REGS,
    ArrName,
    Elem,
    Flt,
    Imm,
    Lbl,
    Operand,
    Q,
    Reg,
    Subroutine,
)
from .lower import Lowering
from .memory import MemoryManager
from .moves import make_room, route

# Physical ops sent to the quantum process in one request at most: a loop of 100,000
# gates runs as several requests (one message may carry 65,536 ops; a smaller batch also
# keeps the quantum process answering its peers between batches).
MAX_BATCH = 4096


@dataclass(frozen=True)
class NeedDevice:
    ops: list[PhysOp]


@dataclass(frozen=True)
class Paused:
    """The run used up its slice of instructions; call ``advance()`` again later."""


@dataclass(frozen=True)
class EprStart:
    """The block starts its EPR request ``index`` (``sub.eprs[index]``); call
    ``advance()`` again at once: the pairs come while the block goes on."""

    index: int


@dataclass(frozen=True)
class WaitPairs:
    """The block waits until ``count`` pairs of its EPR request ``index`` are in
    (``pairs_in``); it does not need the device meanwhile."""

    index: int
    count: int


@dataclass(frozen=True)
class WaitQubit:
    """The block must read a qubit out through a measurable qubit (NV: a carbon through
    the electron), and every one is held by another app: it waits for one to be freed
    rather than move that app's state (``may_move`` lets it move after all)."""


class QubitBusy(Exception):
    """An instruction cannot run yet: the qubits it must read out through are other
    apps'. It did nothing; the run (native or NetQASM) tries it again later."""


@dataclass(frozen=True)
class Finished:
    values: dict[str, int | list[int]]


_BRANCH = {
    "beq": lambda a, b: a == b,
    "bne": lambda a, b: a != b,
    "blt": lambda a, b: a < b,
    "bge": lambda a, b: a >= b,
}


def _arith(op: str, a: int, b: int) -> int:
    if op in ("div", "mod") and b == 0:
        raise ProgramError(f"{op} by zero")
    r = {"add": a + b, "sub": a - b, "mul": a * b}.get(op)
    if r is None:
        r = a // b if op == "div" else a % b
    if not INT_MIN <= r <= INT_MAX:
        raise ProgramError(f"{op} {a} {b} overflows 64 bits")
    return r


class Run:
    """The execution of one block of app ``app`` on the node's memory and device."""

    def __init__(
        self,
        sub: Subroutine,
        *,
        app: int,
        memory: MemoryManager,
        lowering: Lowering,
        budget: int,
        max_wait_s: float = math.inf,
    ) -> None:
        self.sub = sub
        self.max_wait_ns = max_wait_s * 1e9
        self.app = app
        self.mm = memory
        self.lowering = lowering
        self.budget = budget
        self.regs = [0] * NUM_REGS
        self.arrays = {name: [0] * n for name, n in sub.arrays.items()}
        self.pc = 0
        self.steps = 0
        self.values: dict[str, int | list[int]] = {}
        self.pending: list[PhysOp] = []
        self.pending_src: dict[int, int] = {}  # register -> batch index of meas writing it
        self.deferred: list[tuple[list[int], int, int]] = []  # (array, index, batch index)
        self.deferred_arrays: set[str] = set()
        self.allocated: set[int] = set()  # virtual ids this block allocated and still holds
        self.epr_got: dict[int, int] = {}  # EPR request index -> pairs in so far
        self.may_move = False  # may move another app's state to read a qubit out
        self.peeks: list[str] = []  # qubits the pending batch peeks at, in order
        self.states: dict[str, list[float]] = {}  # what peeks read, by qubit ("Q0")

    # -- operand access ------------------------------------------------------------------
    def _val(self, a: Operand) -> int:
        if isinstance(a, Reg):
            return self.regs[a.i]
        assert isinstance(a, Imm)
        return a.v

    def _elem(self, e: Elem) -> tuple[list[int], int]:
        arr = self.arrays[e.array]
        i = self._val(e.index)
        if not 0 <= i < len(arr):
            raise ProgramError(f"index {i} out of bounds for {e.array}[{len(arr)}]")
        return arr, i

    def _needs_flush(self, op: str, args: tuple[Operand, ...]) -> bool:
        """Whether ``op`` reads or overwrites something a pending measurement writes."""
        src = self.pending_src
        if op == "store":
            value, elem = args
            assert isinstance(elem, Elem)
            if isinstance(elem.index, Reg) and elem.index.i in src:
                return True
            if isinstance(value, Reg) and value.i in src:
                return False  # deferred: filled in when the outcome arrives
            # An ordinary store must not be overwritten later by a deferred one.
            return elem.array in self.deferred_arrays
        for a in args:
            if isinstance(a, Reg) and a.i in src:
                return True
            if isinstance(a, Elem):
                if a.array in self.deferred_arrays:
                    return True
                if isinstance(a.index, Reg) and a.index.i in src:
                    return True
            if isinstance(a, ArrName) and a.name in self.deferred_arrays:
                return True
        return False

    # -- the machine ---------------------------------------------------------------------
    def abandon(self) -> None:
        """The block failed: release the qubits it allocated (earlier blocks' stay)."""
        for v in sorted(self.allocated):
            self.mm.release(self.app, v)
        self.allocated.clear()

    def deliver(self, outcomes: list[int], states: Sequence[list[float]] = ()) -> None:
        """Hand back one outcome per op of the last NeedDevice batch (and the states its
        peeks read, in order)."""
        if len(outcomes) != len(self.pending):
            raise ProgramError(
                f"device answered {len(outcomes)} outcomes for {len(self.pending)} ops"
            )
        if len(states) != len(self.peeks):
            raise ProgramError(f"device answered {len(states)} states for {len(self.peeks)} peeks")
        self.states.update(zip(self.peeks, states, strict=True))
        self.peeks = []
        for reg, idx in self.pending_src.items():
            self.regs[reg] = outcomes[idx]
        for arr, i, idx in self.deferred:
            arr[i] = outcomes[idx]
        self.pending = []
        self.pending_src = {}
        self.deferred = []
        self.deferred_arrays = set()

    def pairs_in(self, index: int, pairs: list[EprPair]) -> None:
        """Pairs of EPR request ``index`` arrived (in order)."""
        spec = self.sub.eprs[index]
        got = self.epr_got.get(index, 0)
        out = self.arrays.get(spec.out) if spec.out else None
        ids = self.arrays.get(spec.ids) if spec.ids else None
        for i, p in enumerate(pairs, start=got):
            if out is not None:
                out[i] = p.outcome
            if ids is not None:
                ids[i] = p.ent_id[2]
            if p.qubit >= 0:
                self.allocated.add(p.qubit)
        self.epr_got[index] = got + len(pairs)

    def waiting_for(self, index: int, count: int) -> bool:
        return self.epr_got.get(index, -1) < count

    def advance(
        self, slice_steps: int = 1 << 62
    ) -> NeedDevice | Paused | Finished | EprStart | WaitPairs | WaitQubit:
        """Run until the device is needed, the block ends, or ``slice_steps`` more
        instructions have run (so one block cannot stall the node)."""
        instrs = self.sub.instrs
        stop_at = self.steps + slice_steps
        while self.pc < len(instrs):
            if self.steps >= stop_at:
                return Paused()
            ins = instrs[self.pc]
            if len(self.pending) >= MAX_BATCH:
                return NeedDevice(self.pending)
            if self.pending_src and ins.op != "meas" and self._needs_flush(ins.op, ins.args):
                return NeedDevice(self.pending)
            self.steps += 1
            if self.steps > self.budget:
                raise ProgramError(
                    f"instruction budget of {self.budget} exceeded at instruction {self.pc} "
                    f"({ins.op}); is there an infinite loop?"
                )
            if ins.op in ("epr", "epr_wait"):
                step = self._epr(ins.op, ins.args)
                if step is not None:
                    return step
                continue
            try:
                self.pc = self._step(ins.op, ins.args)
            except QubitBusy:  # the instruction did nothing: run it again later
                return NeedDevice(self.pending) if self.pending else WaitQubit()
        if self.pending:
            return NeedDevice(self.pending)
        return Finished(self.values)

    def _epr(self, op: str, args: tuple[Operand, ...]) -> NeedDevice | EprStart | WaitPairs | None:
        """``epr``/``epr_wait``: what the node must do (None: go on)."""
        index = self._val(args[0])
        spec = self.sub.eprs[index]
        if op == "epr":
            if index in self.epr_got:
                raise ProgramError(f"EPR request {index} was started already in this block")
            self.epr_got[index] = 0
            self.pc += 1
            return EprStart(index)
        count = self._val(args[1])
        if index not in self.epr_got:
            raise ProgramError(f"epr_wait for EPR request {index}, which was not started")
        if not 0 <= count <= spec.number:
            raise ProgramError(
                f"epr_wait for {count} pairs of EPR request {index}, which asks for {spec.number}"
            )
        if not self.waiting_for(index, count):
            self.pc += 1
            return None
        if self.pending:  # what the block did so far runs before it waits
            return NeedDevice(self.pending)
        return WaitPairs(index, count)

    def _step(self, op: str, args: tuple[Operand, ...]) -> int:
        """Run one instruction; the pc of the next. Classical instructions are found in
        a table (``_CLASSICAL``); the rest are quantum (``_quantum``). A chain of
        comparisons cost a quantum op ~10 string tests before it reached its branch."""
        classical = _CLASSICAL.get(op)
        if classical is None:
            self._quantum(op, args)
            return self.pc + 1
        return classical(self, op, args)

    def _c_branch(self, op: str, args: tuple[Operand, ...]) -> int:
        if _BRANCH[op](self._val(args[0]), self._val(args[1])):
            assert isinstance(args[2], Lbl)
            return self.sub.labels[args[2].name]
        return self.pc + 1

    def _c_jmp(self, op: str, args: tuple[Operand, ...]) -> int:
        assert isinstance(args[0], Lbl)
        return self.sub.labels[args[0].name]

    def _c_set(self, op: str, args: tuple[Operand, ...]) -> int:
        assert isinstance(args[0], Reg)
        self.regs[args[0].i] = self._val(args[1])
        return self.pc + 1

    def _c_arith(self, op: str, args: tuple[Operand, ...]) -> int:
        assert isinstance(args[0], Reg)
        self.regs[args[0].i] = _arith(op, self._val(args[1]), self._val(args[2]))
        return self.pc + 1

    def _c_load(self, op: str, args: tuple[Operand, ...]) -> int:
        assert isinstance(args[0], Reg) and isinstance(args[1], Elem)
        arr, i = self._elem(args[1])
        self.regs[args[0].i] = arr[i]
        return self.pc + 1

    def _c_store(self, op: str, args: tuple[Operand, ...]) -> int:
        assert isinstance(args[1], Elem)
        arr, i = self._elem(args[1])
        v = args[0]
        if isinstance(v, Reg) and v.i in self.pending_src:
            # The value is a measurement still in the batch: fill it in on delivery.
            self.deferred.append((arr, i, self.pending_src[v.i]))
            self.deferred_arrays.add(args[1].array)
        else:
            arr[i] = self._val(v)
        return self.pc + 1

    def _c_ret(self, op: str, args: tuple[Operand, ...]) -> int:
        a = args[0]
        if isinstance(a, Reg):
            self.values[f"R{a.i}"] = self.regs[a.i]
        else:
            assert isinstance(a, ArrName)
            self.values[a.name] = list(self.arrays[a.name])
        return self.pc + 1

    def _readable(self, q: int) -> int:
        """The qubit to read out to measure ``q`` in Z. A qubit that cannot be read out
        (NV carbon) has its Z value copied by a CNOT onto a free qubit that can (the
        electron), which is then measured: a Z measurement of ``q`` that also
        collapses it, with the CNOT's time and noise. If every measurable qubit is
        busy, one's state is first moved into a free qubit (``moves``)."""
        spec = self.lowering.spec
        if spec.kind(q).meas is not None:
            return q
        helpers = [p for p in sorted(self.mm.free) if spec.kind(p).meas is not None]
        if not helpers and not self.may_move:
            mine = self.mm.maps.get(self.app, {}).values()
            if not any(spec.kind(p).meas is not None for p in mine):
                raise QubitBusy  # other apps hold them: wait, do not disturb their states
        if not helpers:
            # Move a measurable qubit's state (whoever holds it) into a free one.
            moved = make_room(self.mm, self.lowering, lambda k: k.meas is not None)
            if moved is None:
                raise DeviceError(
                    f"{spec.name}: qubit {q} ({spec.kind(q).name}) is read out through a "
                    f"measurable qubit, and none is free now, nor can one be freed"
                )
            self.pending.extend(moved)
            helpers = [p for p in sorted(self.mm.free) if spec.kind(p).meas is not None]
        helper = helpers[0]
        self.pending.append(PhysOp("init", (helper,)))
        self.pending.extend(self.lowering.lower("cnot", (q, helper)))
        return helper

    def _check_collective(self, op: str) -> None:
        """A collective gate acts on every qubit of the device (trapped ions: every ion
        in the trap): an app may issue one only if no other app holds any of them."""
        others = sorted(
            p for a, m in self.mm.maps.items() if a != self.app for p in m.values()
        )
        if others:
            n = self.lowering.spec.num_qubits
            raise DeviceError(
                f"{op} acts on all {n} qubits of this {self.lowering.spec.name} device, and "
                f"other apps hold qubit(s) {others}; an app may issue a collective gate only "
                f"when no other app holds a qubit it touches (connect with exclusive=True "
                f"to have the device to yourself)"
            )

    def _quantum(self, op: str, args: tuple[Operand, ...]) -> None:
        if op == "qalloc":
            assert isinstance(args[0], Q)
            phys, dirty = self.mm.alloc(self.app, args[0].i)
            self.allocated.add(args[0].i)
            if dirty:
                self.pending.append(PhysOp("discard", (phys,)))
            return
        if op == "qfree":
            assert isinstance(args[0], Q)
            self.mm.release(self.app, args[0].i)
            self.allocated.discard(args[0].i)
            return
        lookup = self.mm.phys
        if len(args) == 1 and isinstance(args[0], Q):  # (most ops: one qubit)
            qs: tuple[int, ...] = (lookup(self.app, args[0].i),)
        else:
            qs = tuple(lookup(self.app, a.i) for a in args if isinstance(a, Q))
        if op == "init":
            if self.pending and self.pending[-1] == PhysOp("discard", qs):
                self.pending.pop()  # init resets the qubit anyway: the discard is moot
            self.pending.append(PhysOp("init", qs))
        elif op == "meas":
            assert isinstance(args[1], Reg)
            target = self._readable(qs[0])
            self.lowering.spec.validate(PhysOp("meas", (target,)))
            self.pending_src[args[1].i] = len(self.pending)
            self.pending.append(PhysOp("meas", (target,)))
        elif op in ("peek", "peek_group"):
            self.peeks.append(f"Q{args[0].i}")  # type: ignore[union-attr]
            self.pending.append(PhysOp(op, qs))
        elif op == "wait":
            ns = self._val(args[0])
            if ns < 0:
                raise ProgramError(f"wait of {ns} ns is negative")
            if ns > self.max_wait_ns:
                raise ProgramError(
                    f"wait of {ns / 1e9:g} s is longer than this node allows "
                    f"(max_wait_s = {self.max_wait_ns / 1e9:g})"
                )
            self.pending.append(PhysOp("wait", (), float(ns)))
        else:
            if op not in CORE_GATES and op not in self.lowering.native:
                raise DeviceError(
                    f"gate {op} is not available on this {self.lowering.spec.name} device "
                    f"(core gates: {', '.join(sorted(CORE_GATES))}; native: "
                    f"{', '.join(sorted(self.lowering.native))})"
                )
            if GATES[op].arity == 0:
                self._check_collective(op)
            theta = 0.0
            if GATES[op].angle:
                a = args[-1]
                theta = float(a.v) if isinstance(a, Flt | Imm) else 0.0
            try:
                self.pending.extend(self.lowering.lower(op, qs, theta))
            except DeviceError:
                routed = route(self.mm, self.lowering, op, qs, theta) if len(qs) == 2 else None
                if routed is None:
                    raise
                self.pending.extend(routed)


# The classical instructions, by op (everything else is a quantum instruction).
_CLASSICAL: dict[str, Callable[[Run, str, tuple[Operand, ...]], int]] = {
    **{op: Run._c_branch for op in _BRANCH},
    "jmp": Run._c_jmp,
    "set": Run._c_set,
    **{op: Run._c_arith for op in ("add", "sub", "mul", "div", "mod")},
    "load": Run._c_load,
    "store": Run._c_store,
    "ret": Run._c_ret,
}
