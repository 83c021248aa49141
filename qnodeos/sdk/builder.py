"""Recording a quantum block: Python calls on ``Block``/``Qubit`` become a Subroutine.

The builder is pure (no I/O): it hands out virtual qubit ids and registers, records
loops and branches as labels and jumps, and gives each measurement a ``Future`` whose
value is filled in from the block's results. Loop bodies are recorded once and run
``n`` times on the node; a measurement inside loops yields a (nested) list, one value
per iteration.

>>> b = Block(qubit_ids=QubitIds(4))
>>> q = b.qubit()
>>> q.h()
>>> m = q.measure()
>>> print(b.build().instrs[2])
Instr(op='h', args=(Q(i=0),))
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Protocol

from ..errors import LocalError
from ..lang.gates import GATES
from ..lang.program import (
    MAX_ARRAY_TOTAL,
    NUM_REGS,
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
)


class EprPeer(Protocol):
    """The other end of a block's pairs: its node and app (an ``EprSocket`` names them)."""

    @property
    def node(self) -> str: ...

    @property
    def app(self) -> str: ...


_NOT_YET = object()
# what runs on each pair as it arrives: (the block, the pair's qubit, the pair's index)
PostRoutine = Callable[["Block", "Qubit", "int | LoopVar"], None]


class QubitIds:
    """Hands out the app's virtual qubit ids, reusing freed ones."""

    def __init__(self, quota: int) -> None:
        self.quota = quota
        self.used: set[int] = set()

    def take(self) -> int:
        for i in range(self.quota):
            if i not in self.used:
                self.used.add(i)
                return i
        raise LocalError(f"all {self.quota} qubit(s) of this app's quota are in use")

    def give(self, i: int) -> None:
        self.used.discard(i)


@dataclass
class _Loop:
    reg: int
    count: int


class Future:
    """A measurement result; ``.value`` exists once the block has run."""

    def __init__(self, array: str, loops: tuple[int, ...]) -> None:
        self.array = array
        self.shape = loops
        self._value: Any = _NOT_YET

    @property
    def value(self) -> Any:
        """The measured value(s): an int, or nested lists inside loops (LocalError
        before the block has run)."""
        if self._value is _NOT_YET:
            raise LocalError("this value exists only after its block has run")
        return self._value

    def _fill(self, flat: list[int]) -> None:
        out: Any = flat
        for n in reversed(self.shape[1:]):
            out = [out[i : i + n] for i in range(0, len(out), n)]
        self._value = out if self.shape else flat[0]

    def __repr__(self) -> str:
        return f"Future({'?' if self._value is _NOT_YET else self._value!r})"


@dataclass
class LoopVar:
    """The iteration counter of ``Block.loop`` (usable as an operand)."""

    reg: int


class Qubit:
    """A virtual qubit of the app. Operations record into the currently open block."""

    def __init__(self, owner: QubitOwner, vid: int) -> None:
        self._owner = owner
        self.id = vid
        self.freed = False

    def _emit(self, op: str, *extra: Operand) -> None:
        if self.freed:
            raise LocalError(f"qubit Q{self.id} was measured or freed; allocate a new one")
        self._owner.current_block().emit(op, Q(i=self.id), *extra)

    def x(self) -> None:
        """Pauli X."""
        self._emit("x")

    def y(self) -> None:
        """Pauli Y."""
        self._emit("y")

    def z(self) -> None:
        """Pauli Z."""
        self._emit("z")

    def h(self) -> None:
        """Hadamard."""
        self._emit("h")

    def s(self) -> None:
        """Phase gate S = diag(1, i)."""
        self._emit("s")

    def t(self) -> None:
        """T = diag(1, e^(i pi/4))."""
        self._emit("t")

    def rx(self, theta: float) -> None:
        """Rotation about X by ``theta`` radians."""
        self._emit("rx", _angle(theta))

    def ry(self, theta: float) -> None:
        """Rotation about Y by ``theta`` radians."""
        self._emit("ry", _angle(theta))

    def rz(self, theta: float) -> None:
        """Rotation about Z by ``theta`` radians."""
        self._emit("rz", _angle(theta))

    def cnot(self, target: Qubit) -> None:
        """CNOT with this qubit as control and ``target`` as target."""
        self._two("cnot", target)

    def cz(self, target: Qubit) -> None:
        """Controlled Z between this qubit and ``target``."""
        self._two("cz", target)

    def gate(self, name: str, *others: Qubit, theta: float | None = None) -> None:
        """Any gate by name, e.g. a device-native ``q.gate("crx", carbon, theta=0.5)``."""
        g = GATES.get(name)
        if g is None or g.arity != 1 + len(others):
            raise LocalError(f"{name!r} is not a gate on {1 + len(others)} qubit(s)")
        extra: list[Operand] = [Q(i=o.id) for o in others]
        if g.angle:
            if theta is None:
                raise LocalError(f"gate {name} needs theta")
            extra.append(_angle(theta))
        for o in others:
            if o.freed:
                raise LocalError(f"qubit Q{o.id} was measured or freed")
        self._emit(name, *extra)

    def _two(self, name: str, other: Qubit) -> None:
        if other.freed:
            raise LocalError(f"qubit Q{other.id} was measured or freed")
        self._emit(name, Q(i=other.id))

    def measure(self, *, inplace: bool = False) -> Future:
        """Measure in Z. Without ``inplace`` the qubit is freed afterwards."""
        if self.freed:
            raise LocalError(f"qubit Q{self.id} was measured or freed")
        fut = self._owner.current_block().measure(self)
        if not inplace:
            self.free()
        return fut

    def free(self) -> None:
        """Free the qubit; its id can be reused later in the same block."""
        block = self._owner.current_block()
        self._emit("qfree")
        self.freed = True
        block.freed.append(self)
        block.qubit_ids.give(self.id)


class QubitOwner:
    """What a Qubit records into: the connection's currently open block."""

    def current_block(self) -> Block:
        """The block being recorded (LocalError outside ``async with node.block()``)."""
        raise NotImplementedError


def _angle(theta: float) -> Flt:
    if not math.isfinite(theta):
        raise LocalError(f"angle {theta} is not finite")
    return Flt(v=float(theta))


@dataclass
class Block(QubitOwner):
    """One subroutine being recorded."""

    qubit_ids: QubitIds
    owner: QubitOwner | None = None
    instrs: list[Instr] = field(default_factory=list)
    arrays: dict[str, int] = field(default_factory=dict)
    labels: dict[str, int] = field(default_factory=dict)
    futures: list[Future] = field(default_factory=list)
    allocated: list[Qubit] = field(default_factory=list)
    freed: list[Qubit] = field(default_factory=list)
    _free_regs: list[int] = field(default_factory=lambda: list(range(NUM_REGS - 1, -1, -1)))
    _loops: list[_Loop] = field(default_factory=list)
    _nlabels: int = 0
    eprs: list[EprSpec] = field(default_factory=list)

    def current_block(self) -> Block:
        """This block (a Block records into itself)."""
        return self

    def emit(self, op: str, *args: Operand) -> None:
        """Append one raw instruction (see the text form in README)."""
        self.instrs.append(Instr(op=op, args=tuple(args)))

    def _reg(self) -> int:
        if not self._free_regs:
            raise LocalError(f"block uses more than {NUM_REGS} registers (loops nested too deep)")
        return self._free_regs.pop()

    def _label(self, stem: str) -> str:
        self._nlabels += 1
        return f"{stem}{self._nlabels}"

    def _place(self, name: str) -> None:
        self.labels[name] = len(self.instrs)

    # -- qubits and measurement ----------------------------------------------------------
    def qubit(self) -> Qubit:
        """Allocate a qubit and initialise it to |0>."""
        q = Qubit(self.owner or self, self.qubit_ids.take())
        self.emit("qalloc", Q(i=q.id))
        self.emit("init", Q(i=q.id))
        self.allocated.append(q)
        return q

    def measure(self, q: Qubit) -> Future:
        """Measure ``q`` in Z into a new future (``Qubit.measure`` calls this)."""
        size = math.prod(lp.count for lp in self._loops)
        total = sum(self.arrays.values()) + size
        if total > MAX_ARRAY_TOTAL:
            raise LocalError(
                f"this measurement inside loops of {size} iterations would make the block "
                f"keep {total} values, more than the {MAX_ARRAY_TOTAL} one block may return; "
                f"split the loop over several blocks"
            )
        name = f"m{len(self.futures)}"
        self.arrays[name] = size
        tmp = self._reg()
        self.emit("meas", Q(i=q.id), Reg(i=tmp))
        self.emit("store", Reg(i=tmp), Elem(array=name, index=self._flat_index()))
        self._free_regs.append(tmp)
        fut = Future(name, tuple(lp.count for lp in self._loops))
        self.futures.append(fut)
        return fut

    def _flat_index(self) -> Reg | Imm:
        if not self._loops:
            return Imm(v=0)
        if len(self._loops) == 1:
            return Reg(i=self._loops[0].reg)
        idx = self._reg()
        self.emit("set", Reg(i=idx), Imm(v=0))
        for lp in self._loops:
            self.emit("mul", Reg(i=idx), Reg(i=idx), Imm(v=lp.count))
            self.emit("add", Reg(i=idx), Reg(i=idx), Reg(i=lp.reg))
        self._free_regs.append(idx)
        return Reg(i=idx)

    def wait(self, seconds: float) -> None:
        """Let the device idle for ``seconds`` of device time (qubits decohere)."""
        if not (math.isfinite(seconds) and seconds >= 0):
            raise LocalError(f"wait of {seconds} s must be a non-negative number")
        self.emit("wait", Imm(v=round(seconds * 1e9)))

    def collective(self, name: str, theta: float) -> None:
        """A gate on every qubit of the device (trapped ion: all_rx, all_ry, ms)."""
        g = GATES.get(name)
        if g is None or g.arity != 0:
            raise LocalError(f"{name!r} is not a collective gate")
        self.emit(name, _angle(theta))

    # -- entanglement --------------------------------------------------------------------
    def create_keep(
        self,
        epr: EprPeer,
        number: int = 1,
        *,
        sequential: bool = False,
        post: PostRoutine | None = None,
        min_fidelity: float = 0.0,
        timeout: float = 30.0,
    ) -> EprPairs:
        """``number`` pairs kept in this block's qubits (Phi+). The block waits for them
        on the node, not in the app; the device serves other apps meanwhile. With
        ``post``, ``post(block, qubit, i)`` runs on each pair as it arrives (it must
        measure or free the qubit when ``sequential``: then every pair comes into the
        same qubit, one at a time, so n pairs need one qubit and no app round trip)."""
        return self._keep(epr, "create", "K", number, sequential, post, min_fidelity, timeout)

    def recv_keep(
        self,
        epr: EprPeer,
        number: int = 1,
        *,
        sequential: bool = False,
        post: PostRoutine | None = None,
        timeout: float = 30.0,
    ) -> EprPairs:
        """The other end of ``create_keep``: ``number`` pairs kept in this block."""
        return self._keep(epr, "recv", "K", number, sequential, post, 0.0, timeout)

    def create_measure(
        self,
        epr: EprPeer,
        number: int = 1,
        *,
        bases: str = "Z",
        chosen: str = "",
        rotations: list[tuple[float, float, float]] | None = None,
        min_fidelity: float = 0.0,
        timeout: float = 30.0,
    ) -> EprPairs:
        """``number`` pairs measured at once: in a basis drawn from ``bases`` per pair,
        or ``chosen[i]`` (X/Y/Z) for pair i, or after ``rotations`` (Rx, Ry, Rx angles in
        radians, one triple for all pairs or one per pair; NetQASM's convention)."""
        return self._measure(
            epr, "create", "M", number, bases, chosen, rotations, min_fidelity, timeout
        )

    def recv_measure(
        self,
        epr: EprPeer,
        number: int = 1,
        *,
        bases: str = "Z",
        chosen: str = "",
        rotations: list[tuple[float, float, float]] | None = None,
        timeout: float = 30.0,
    ) -> EprPairs:
        """The other end of ``create_measure``; this end's bases are its own."""
        return self._measure(epr, "recv", "M", number, bases, chosen, rotations, 0.0, timeout)

    def create_rsp(
        self,
        epr: EprPeer,
        number: int = 1,
        *,
        chosen: str = "",
        rotations: list[tuple[float, float, float]] | None = None,
        min_fidelity: float = 0.0,
        timeout: float = 30.0,
    ) -> EprPairs:
        """Remote state preparation: this end measures each pair (as in
        ``create_measure``), the receiver keeps its half, which is then (up to the
        outcome) the state this end's measurement basis defines."""
        return self._measure(
            epr, "create", "R", number, "Z", chosen, rotations, min_fidelity, timeout
        )

    def recv_rsp(
        self,
        epr: EprPeer,
        number: int = 1,
        *,
        sequential: bool = False,
        post: PostRoutine | None = None,
        timeout: float = 30.0,
    ) -> EprPairs:
        """The receiving end of ``create_rsp``: each half kept (optionally with a
        ``post`` routine, as in ``create_keep``)."""
        return self._keep(epr, "recv", "R", number, sequential, post, 0.0, timeout)

    def _keep(
        self,
        epr: EprPeer,
        role: str,
        kind: str,
        number: int,
        sequential: bool,
        post: PostRoutine | None,
        fid: float,
        timeout: float,
    ) -> EprPairs:
        if sequential and post is None:
            raise LocalError("sequential pairs need a post routine that measures or frees them")
        owner = self.owner or self
        qubits = [Qubit(owner, self.qubit_ids.take()) for _ in range(1 if sequential else number)]
        self.allocated.extend(qubits)
        index, ids = self._request(epr, role, kind, number, fid, timeout, [q.id for q in qubits])
        res = EprPairs(qubits=qubits, ids=ids)
        if sequential:
            assert post is not None
            count = self._reg()
            with self.loop(number) as i:
                self.emit("add", Reg(i=count), Reg(i=i.reg), Imm(v=1))
                self.emit("epr_wait", Imm(v=index), Reg(i=count))
                post(self, qubits[0], i)
                qubits[0].freed = False  # the next pair comes into it
                self.qubit_ids.used.add(qubits[0].id)
            self._free_regs.append(count)
            qubits[0].freed = True
            self.qubit_ids.give(qubits[0].id)
        elif post is not None:
            for j, q in enumerate(qubits):
                self.emit("epr_wait", Imm(v=index), Imm(v=j + 1))
                post(self, q, j)
        else:
            self.emit("epr_wait", Imm(v=index), Imm(v=number))
        return res

    def _measure(
        self,
        epr: EprPeer,
        role: str,
        kind: str,
        number: int,
        bases: str,
        chosen: str,
        rotations: list[tuple[float, float, float]] | None,
        fid: float,
        timeout: float,
    ) -> EprPairs:
        out = f"e{len(self.eprs)}"
        self.arrays[out] = number
        extra = {"bases": bases, "chosen": chosen, "rotations": list(rotations or []), "out": out}
        index, ids = self._request(epr, role, kind, number, fid, timeout, [], **extra)
        self.emit("epr_wait", Imm(v=index), Imm(v=number))
        outcomes = Future(out, (number,))
        self.futures.append(outcomes)
        return EprPairs(outcomes=outcomes, ids=ids)

    def _request(
        self,
        epr: EprPeer,
        role: str,
        kind: str,
        number: int,
        fid: float,
        timeout: float,
        qubits: list[int],
        **extra: Any,
    ) -> tuple[int, Future]:
        """Declare and start an EPR request; (its index, the future of its pairs' ids)."""
        if self._loops:
            raise LocalError("entanglement inside a loop is not supported; ask for n pairs")
        if not 1 <= number:
            raise LocalError(f"number of pairs {number} must be >= 1")
        index = len(self.eprs)
        ids = f"e{index}_ids"
        self.arrays[ids] = number
        self.eprs.append(
            EprSpec(
                node=epr.node,
                app=epr.app,
                role=role,
                kind=kind,
                number=number,
                qubits=qubits,
                sequential=len(qubits) == 1 and number > 1 and kind != "M",
                min_fidelity=fid,
                timeout_s=timeout,
                ids=ids,
                **extra,
            )
        )
        self.emit("epr", Imm(v=index))
        fut = Future(ids, (number,))
        self.futures.append(fut)
        return index, fut

    # -- control flow --------------------------------------------------------------------
    @contextmanager
    def loop(self, count: int) -> Iterator[LoopVar]:
        """Repeat the recorded body ``count`` times on the node."""
        if count < 1:
            raise LocalError(f"loop count {count} must be >= 1")
        reg = self._reg()
        start, end = self._label("loop"), self._label("endloop")
        self.emit("set", Reg(i=reg), Imm(v=0))
        self._place(start)
        self.emit("bge", Reg(i=reg), Imm(v=count), Lbl(name=end))
        self._loops.append(_Loop(reg, count))
        try:
            yield LoopVar(reg)
        finally:
            self._loops.pop()
        self.emit("add", Reg(i=reg), Reg(i=reg), Imm(v=1))
        self.emit("jmp", Lbl(name=start))
        self._place(end)
        self._free_regs.append(reg)

    @contextmanager
    def if_eq(self, fut: Future | LoopVar, value: int) -> Iterator[None]:
        """Run the body only if ``fut`` (a measurement in this block) equals ``value``."""
        with self._branch("bne", fut, value):
            yield

    @contextmanager
    def if_ne(self, fut: Future | LoopVar, value: int) -> Iterator[None]:
        """Run the body only if ``fut`` differs from ``value``."""
        with self._branch("beq", fut, value):
            yield

    @contextmanager
    def _branch(self, skip_op: str, fut: Future | LoopVar, value: int) -> Iterator[None]:
        end = self._label("endif")
        if isinstance(fut, LoopVar):
            operand: Reg = Reg(i=fut.reg)
            tmp = None
        else:
            if fut not in self.futures:
                raise LocalError("a branch can only test a measurement of the same block")
            if fut.shape != tuple(lp.count for lp in self._loops[: len(fut.shape)]):
                raise LocalError("a measurement made inside a loop can only be tested in it")
            tmp = self._reg()
            self.emit("load", Reg(i=tmp), Elem(array=fut.array, index=self._flat_index()))
            operand = Reg(i=tmp)
        self.emit(skip_op, operand, Imm(v=value), Lbl(name=end))
        if tmp is not None:
            self._free_regs.append(tmp)
        yield
        self._place(end)

    # -- result --------------------------------------------------------------------------
    def build(self) -> Subroutine:
        """The recorded block as a subroutine (what is sent to the node)."""
        instrs = list(self.instrs)
        instrs.extend(Instr(op="ret", args=(ArrName(name=f.array),)) for f in self.futures)
        return Subroutine(
            arrays=dict(self.arrays), instrs=instrs, labels=dict(self.labels), eprs=list(self.eprs)
        )

    def fill(self, values: dict[str, int | list[int]]) -> None:
        """Give each future of the block its value from the node's reply."""
        for f in self.futures:
            v = values.get(f.array)
            if not isinstance(v, list):
                raise LocalError(f"node returned no values for {f.array}")
            f._fill(v)


@dataclass(frozen=True)
class EprPairs:
    """Pairs asked for inside a block: ``qubits`` (kept; one when sequential), the
    futures of the measured ``outcomes`` (measure, and the RSP creator) and of the
    pairs' ``ids`` (station sequence numbers, the same at both ends)."""

    ids: Future
    qubits: list[Qubit] = field(default_factory=list)
    outcomes: Future | None = None
