"""Runs one NetQASM subroutine as one block of an app, on the same memory manager,
lowering, device and network stack as a native block (``Run``), speaking the same
protocol to the node (``advance``/``deliver``/``pairs_in``).

What NetQASM has that native blocks do not, and how it is kept here:
- 64 registers (R, C, Q, M × 16) and arrays at numeric addresses, both living from one
  subroutine to the next until the app's NetQASM connection ends (``NqMemory``, held
  by the node per app). Array entries and registers may be undefined (None); loading
  one is an error; ``wait_*`` waits for EPR results to define entries.
- Qubit operands are registers holding the app's virtual qubit ids.
- EPR requests are built when ``create_epr``/``recv_epr`` runs, from the argument array
  (22 entries, netqasm's ``LinkLayerCreate`` order), the qubit-id array and the app's
  EPR sockets. Their results go to the results array, 10 entries per pair in
  netqasm's layout. Pairs arrive corrected to Phi+, so the Bell-state field is 0.

Values the app gets back (``ret_reg``, ``ret_arr``): registers by name ("M0") and
arrays as "@<address>", with undefined entries as ``UNDEFINED``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from ..errors import ProgramError
from ..lang.messages import EprPair, NqSocket, SubmitNetQASM
from ..lang.program import INT_MIN as UNDEFINED
from ..lang.program import (
    MAX_ARRAY_TOTAL,
    MAX_BLOCK_PAIRS,
    MAX_QUBIT_ID,
    EprSpec,
    Flt,
    Q,
    Reg,
    Subroutine,
)
from ..netqasm.decode import I32_MAX, I32_MIN, NUM_NQ_REGS, Addr, Entry, NqInstr, Slice
from ..netqasm.decode import Reg as NReg
from ..netqasm.decode import decode as _decode
from .interpreter import (
    MAX_BATCH,
    EprStart,
    Finished,
    NeedDevice,
    Paused,
    QubitBusy,
    Run,
    WaitPairs,
    WaitQubit,
)
from .lower import Lowering
from .memory import MemoryManager

OK_FIELDS = 10  # results entries per pair
MAX_NQ_EPRS = 4096  # EPR requests one NetQASM subroutine may start (one per loop turn)
ARG_FIELDS = 22  # create_epr argument array
KINDS = {0: "K", 1: "M", 2: "R"}
RANDOM_BASES = {0: "Z", 1: "XZ", 2: "XYZ"}
BASIS_CODE = {"Z": 0, "X": 1, "Y": 2}
TIME_UNIT_S = {0: 1e-6, 1: 1e-3, 2: 1.0}
# argument array indices (netqasm.sdk.build_epr.SerializedCreateRequestIndex)
A_TYPE, A_NUMBER, A_RAND_LOCAL, A_RAND_REMOTE = 0, 1, 2, 3
A_TIME_UNIT, A_MAX_TIME = 5, 6
A_ROT_LOCAL, A_ROT_REMOTE, A_AXES_LOCAL, A_AXES_REMOTE = 14, 17, 20, 21

_BRANCH = {
    "beq": lambda a, b: a == b,
    "bne": lambda a, b: a != b,
    "blt": lambda a, b: a < b,
    "bge": lambda a, b: a >= b,
}
_GATES = {"x": "x", "y": "y", "z": "z", "h": "h", "s": "s", "t": "t", "cnot": "cnot"}
_GATES |= {"cphase": "cz", "rot_x": "rx", "rot_y": "ry", "rot_z": "rz"}
_GATES |= {"crot_x": "crx", "crot_y": "cry", "rot_x_all": "all_rx", "rot_y_all": "all_ry"}
_GATES |= {"bichromatic": "ms"}
_MEAS_AXES = {"meas_basis": "xyx", "meas_basis_yzy": "yzy", "meas_basis_zxz": "zxz"}

Decoded = list[NqInstr] | ProgramError  # a NetQASM submission, read or refused


def nq_decode(msg: SubmitNetQASM, max_instrs: int) -> list[NqInstr]:
    """The instructions of a NetQASM submission (ProgramError if it cannot be read)."""
    return _decode(msg.code, msg.form, msg.flavour, max_instrs) if msg.code else []


@dataclass
class NqMemory:
    """An app's NetQASM registers and arrays (kept by the node between its blocks)."""

    regs: list[int | None] = field(default_factory=lambda: [None] * NUM_NQ_REGS)
    arrays: dict[int, list[int | None]] = field(default_factory=dict)

    def elements(self) -> int:
        return sum(len(a) for a in self.arrays.values())


@dataclass(frozen=True)
class NqBlock:
    """A NetQASM subroutine read and checked, waiting to run, with the app's EPR sockets."""

    instrs: list[NqInstr]
    sockets: dict[tuple[int, int], NqSocket]  # by (remote node id, socket id)


@dataclass
class _Epr:
    """What the block must remember of an EPR request it started."""

    results: int  # address of its results array
    socket: NqSocket
    create: bool


class NqRun(Run):
    """The execution of one NetQASM subroutine of app ``app``."""

    def __init__(
        self,
        instrs: list[NqInstr],
        *,
        nq: NqMemory,
        sockets: dict[tuple[int, int], NqSocket],
        app: int,
        memory: MemoryManager,
        lowering: Lowering,
        budget: int,
        max_wait_s: float = math.inf,
    ) -> None:
        super().__init__(
            Subroutine(arrays={}, instrs=[], labels={}, eprs=[]),
            app=app,
            memory=memory,
            lowering=lowering,
            budget=budget,
            max_wait_s=max_wait_s,
        )
        self.code = instrs
        self.nq = nq
        self.sockets = sockets
        self.regs = nq.regs  # type: ignore[assignment]  # deliver() writes outcomes here
        self.reqs: list[_Epr] = []

    # -- operands ------------------------------------------------------------------------
    def _fail(self, text: str) -> ProgramError:
        ins = self.code[self.pc] if self.pc < len(self.code) else None
        where = f"instruction {self.pc} ({ins.op})" if ins else f"instruction {self.pc}"
        return ProgramError(f"NetQASM {where}: {text}")

    def _get(self, r: NReg) -> int:
        v = self.nq.regs[r.i]
        if v is None:
            raise self._fail(f"register {r} is read before it was set")
        return v

    def _put(self, r: NReg, v: int) -> None:
        if not I32_MIN <= v <= I32_MAX:
            raise self._fail(f"value {v} for {r} does not fit in 32 bits")
        self.nq.regs[r.i] = v

    def _array(self, a: int) -> list[int | None]:
        arr = self.nq.arrays.get(a)
        if arr is None:
            raise self._fail(f"array @{a} was not declared (array instruction)")
        return arr

    def _index(self, e: Entry) -> tuple[list[int | None], int]:
        arr = self._array(e.a)
        i = self._get(e.index)
        if not 0 <= i < len(arr):
            raise self._fail(f"index {i} out of bounds for @{e.a}[{len(arr)}]")
        return arr, i

    def _slice(self, s: Slice) -> tuple[list[int | None], int, int]:
        arr = self._array(s.a)
        lo, hi = self._get(s.start), self._get(s.stop)
        if not 0 <= lo <= hi <= len(arr):
            raise self._fail(f"slice [{lo}:{hi}] out of bounds for @{s.a}[{len(arr)}]")
        return arr, lo, hi

    def _qubit(self, r: NReg) -> Q:
        v = self._get(r)
        if not 0 <= v <= MAX_QUBIT_ID:
            raise self._fail(f"qubit id {v} (in {r}) outside 0..{MAX_QUBIT_ID}")
        return Q(i=v)

    def _angle(self, num: int, den: int) -> float:
        if not 0 <= den <= 32:
            raise self._fail(f"angle denominator 2^{den} out of range (0..32)")
        return float(num * math.pi / 2**den)

    def _must_flush(self, ins: NqInstr) -> bool:
        """Whether ``ins`` touches a register or array a pending measurement writes."""
        src = self.pending_src
        deferred = {int(a) for a in self.deferred_arrays}  # addresses, kept as str by Run
        args = ins.args[:1] if ins.op == "store" else ()  # a store's value is deferred
        for a in ins.args:
            if a in args:
                continue
            if isinstance(a, NReg) and a.i in src:
                return True
            if isinstance(a, Entry | Slice | Addr) and a.a in deferred:
                return True
            if isinstance(a, Entry) and a.index.i in src:
                return True
            if isinstance(a, Slice) and (a.start.i in src or a.stop.i in src):
                return True
        return ins.op in ("create_epr", "recv_epr", "wait_all", "wait_any", "wait_single")

    # -- the machine ---------------------------------------------------------------------
    def advance(
        self, slice_steps: int = 1 << 62
    ) -> NeedDevice | Paused | Finished | EprStart | WaitPairs | WaitQubit:
        code = self.code
        stop_at = self.steps + slice_steps
        while self.pc < len(code):
            if self.steps >= stop_at:
                return Paused()
            ins = code[self.pc]
            if self.pending and ins.op not in _MEAS_AXES and ins.op != "meas":
                if len(self.pending) >= MAX_BATCH or self._must_flush(ins):
                    return NeedDevice(self.pending)
            self.steps += 1
            if self.steps > self.budget:
                raise self._fail(
                    f"instruction budget of {self.budget} exceeded; is there an infinite loop?"
                )
            mark = len(self.pending)
            try:
                step = self._exec(ins)
            except QubitBusy:  # it runs again later: undo what it queued (meas_basis rotations)
                del self.pending[mark:]
                self.steps -= 1
                return NeedDevice(self.pending) if self.pending else WaitQubit()
            except ProgramError as exc:
                if str(exc).startswith("NetQASM instruction"):
                    raise
                raise self._fail(str(exc)) from None
            if step is not None:
                return step
        if self.pending:
            return NeedDevice(self.pending)
        return Finished(self.values)

    def _exec(self, ins: NqInstr) -> EprStart | WaitPairs | None:
        op, a = ins.op, ins.args
        nxt = self.pc + 1
        if op == "set":
            self._put(_r(a[0]), _i(a[1]))
        elif op in ("add", "sub", "mul", "div", "rem"):
            x, y = self._get(_r(a[1])), self._get(_r(a[2]))
            self._put(_r(a[0]), self._arith(op, x, y))
        elif op in ("addm", "subm"):
            x, y, mod = self._get(_r(a[1])), self._get(_r(a[2])), self._get(_r(a[3]))
            if mod < 1:
                raise self._fail(f"modulus {mod} must be at least 1")
            self._put(_r(a[0]), (x + y if op == "addm" else x - y) % mod)
        elif op == "jmp":
            nxt = _i(a[0])
        elif op in ("bez", "bnz"):
            if (self._get(_r(a[0])) == 0) == (op == "bez"):
                nxt = _i(a[1])
        elif op in _BRANCH:
            if _BRANCH[op](self._get(_r(a[0])), self._get(_r(a[1]))):
                nxt = _i(a[2])
        elif op == "array":
            self._declare(_addr(a[1]), self._get(_r(a[0])))
        elif op == "store":
            arr, i = self._index(_entry(a[1]))
            r = _r(a[0])
            if r.i in self.pending_src:  # an outcome still in the batch: filled on delivery
                self.deferred.append((arr, i, self.pending_src[r.i]))  # type: ignore[arg-type]
                self.deferred_arrays.add(str(_entry(a[1]).a))
            else:
                arr[i] = self._get(r)
        elif op == "load":
            arr, i = self._index(_entry(a[1]))
            v = arr[i]
            if v is None:
                raise self._fail(f"load of @{_entry(a[1]).a}[{i}], which is undefined")
            self._put(_r(a[0]), v)
        elif op == "undef":
            arr, i = self._index(_entry(a[0]))
            arr[i] = None
        elif op == "lea":
            self._put(_r(a[0]), _addr(a[1]))
        elif op == "ret_reg":
            r = _r(a[0])
            self.values[str(r)] = self._get(r)
        elif op == "ret_arr":
            arr = self._array(_addr(a[0]))
            self.values[f"@{_addr(a[0])}"] = [UNDEFINED if v is None else v for v in arr]
        elif op == "breakpoint":
            pass
        elif op == "create_epr":
            return self._create(a)
        elif op == "recv_epr":
            return self._recv(a)
        elif op in ("wait_all", "wait_any", "wait_single"):
            step = self._wait(op, a)
            if step is not None:
                return step
        else:
            self._quantum_nq(op, a)
        self.pc = nxt
        return None

    def _arith(self, op: str, x: int, y: int) -> int:
        if op in ("div", "rem") and y == 0:
            raise self._fail(f"{op} by zero")
        if op == "add":
            return x + y
        if op == "sub":
            return x - y
        if op == "mul":
            return x * y
        return x // y if op == "div" else x % y

    def _declare(self, addr: int, size: int) -> None:
        old = len(self.nq.arrays.get(addr, ()))
        if not 1 <= size <= MAX_ARRAY_TOTAL:
            raise self._fail(f"array @{addr} of {size} entries; allowed 1..{MAX_ARRAY_TOTAL}")
        if self.nq.elements() - old + size > MAX_ARRAY_TOTAL:
            raise self._fail(
                f"the app's NetQASM arrays would hold more than {MAX_ARRAY_TOTAL} entries"
            )
        self.nq.arrays[addr] = [None] * size

    def _quantum_nq(self, op: str, a: tuple[object, ...]) -> None:
        if op in ("qalloc", "init", "qfree"):
            self._quantum(op, (self._qubit(_r(a[0])),))
        elif op == "meas":
            self._meas(_r(a[0]), _r(a[1]))
        elif op in _MEAS_AXES:
            q = self._qubit(_r(a[0]))
            den = _i(a[5])
            axes = _MEAS_AXES[op]
            for axis, num in zip(axes, (_i(a[2]), _i(a[3]), _i(a[4])), strict=True):
                if num:
                    self._quantum(f"r{axis}", (q, _F(self._angle(num, den))))
            self._meas(_r(a[0]), _r(a[1]))
        elif op == "k":  # (Y + Z)/sqrt(2) = Rx(-pi/2) Z up to a global phase
            q = self._qubit(_r(a[0]))
            self._quantum("z", (q,))
            self._quantum("rx", (q, _F(-math.pi / 2)))
        elif op in ("mov", "swp"):  # SWAP (mov: the target starts in |0>)
            p, q = self._qubit(_r(a[0])), self._qubit(_r(a[1]))
            if p == q:
                raise self._fail(f"{op} of qubit {p.i} with itself")
            for c, t in ((p, q), (q, p), (p, q)):
                self._quantum("cnot", (c, t))
        elif op in ("rot_x_all", "rot_y_all", "bichromatic"):
            self._quantum(_GATES[op], (_F(self._angle(_i(a[0]), _i(a[1]))),))
        elif op in ("rot_x", "rot_y", "rot_z"):
            q = self._qubit(_r(a[0]))
            self._quantum(_GATES[op], (q, _F(self._angle(_i(a[1]), _i(a[2])))))
        elif op in ("crot_x", "crot_y"):
            p, q = self._qubit(_r(a[0])), self._qubit(_r(a[1]))
            theta = _F(self._angle(_i(a[2]), _i(a[3])))
            if _GATES[op] in self.lowering.native:
                self._two(op, p, q, (theta,))
            else:  # Z R(t) Z = R(-t) for t about X or Y: CZ . R(t) on the target . CZ
                self._two("cphase", p, q, ())
                self._quantum(_GATES[op][1:], (q, theta))
                self._two("cphase", p, q, ())
        elif op in ("cnot", "cphase"):
            self._two(op, self._qubit(_r(a[0])), self._qubit(_r(a[1])), ())
        elif op in _GATES:
            self._quantum(_GATES[op], (self._qubit(_r(a[0])),))
        else:
            raise self._fail(f"{op} is not run here")

    def _two(self, op: str, p: Q, q: Q, extra: tuple[Flt, ...]) -> None:
        if p == q:
            raise self._fail(f"{op} of qubit {p.i} with itself")
        self._quantum(_GATES[op], (p, q, *extra))

    def _meas(self, q: NReg, out: NReg) -> None:
        self.nq.regs[out.i] = None  # the outcome comes with the batch
        self._quantum("meas", (self._qubit(q), Reg(i=out.i)))

    # -- entanglement --------------------------------------------------------------------
    def _socket(self, node_id: int, sid: int) -> NqSocket:
        sock = self.sockets.get((node_id, sid))
        if sock is None:
            have = ", ".join(
                f"{s.id} with node {s.node_id} ({s.node})" for s in self.sockets.values()
            )
            raise self._fail(
                f"no EPR socket {sid} with node {node_id} is open (open: {have or 'none'})"
            )
        return sock

    def _start(self, spec: EprSpec, results: int, sock: NqSocket) -> EprStart:
        if len(self.sub.eprs) >= MAX_NQ_EPRS:
            raise self._fail(f"more than {MAX_NQ_EPRS} EPR requests in one subroutine")
        # The entries this request fills are undefined until its pairs come (an EPR
        # instruction in a loop reuses its results array: wait_* must wait again).
        arr = self._array(results)
        arr[: OK_FIELDS * spec.number] = [None] * (OK_FIELDS * spec.number)
        self.sub.eprs.append(spec)
        self.reqs.append(_Epr(results=results, socket=sock, create=spec.role == "create"))
        self.epr_got[len(self.sub.eprs) - 1] = 0
        self.pc += 1
        return EprStart(len(self.sub.eprs) - 1)

    def _qubit_ids(self, addr: int, number: int) -> tuple[list[int], bool]:
        arr = self._array(addr)
        if len(arr) < number:
            raise self._fail(f"qubit-id array @{addr} has {len(arr)} entries for {number} pairs")
        ids = []
        for i, v in enumerate(arr[:number]):
            if v is None or not 0 <= v <= MAX_QUBIT_ID:
                raise self._fail(f"qubit id @{addr}[{i}] = {v} is not a qubit id")
            ids.append(v)
        if number > 1 and len(set(ids)) == 1:
            return ids[:1], True  # one qubit for every pair: each waits for the last freed
        if len(set(ids)) != len(ids):
            raise self._fail(f"qubit ids {ids} repeat")
        return ids, False

    def _results(self, addr: int, number: int) -> None:
        arr = self._array(addr)
        if len(arr) < OK_FIELDS * number:
            raise self._fail(f"results array @{addr} has {len(arr)} entries for {number} pairs")

    def _create(self, a: tuple[object, ...]) -> EprStart:
        regs = [self.nq.regs[_r(x).i] for x in a]
        node_id, sid, qaddr, argaddr, resaddr = regs
        if node_id is None or sid is None or argaddr is None or resaddr is None:
            raise self._fail("create_epr with an unset register")
        sock = self._socket(node_id, sid)
        args = self._array(argaddr)
        if len(args) != ARG_FIELDS:
            raise self._fail(f"argument array @{argaddr} has {len(args)} entries, not 22")

        def arg(i: int, default: int = 0) -> int:
            v = args[i]
            return default if v is None else v

        kind = KINDS.get(arg(A_TYPE, -1))
        if kind is None:
            raise self._fail(f"EPR type {args[A_TYPE]} unknown (0 K, 1 M, 2 R)")
        number = arg(A_NUMBER, 1)
        if not 1 <= number <= MAX_BLOCK_PAIRS:
            raise self._fail(f"{number} pairs; allowed 1..{MAX_BLOCK_PAIRS}")
        if arg(A_RAND_REMOTE) or arg(A_AXES_REMOTE):
            raise self._fail(
                "random_basis_remote and rotation axes other than XYX for the receiver are "
                "not supported; give basis_remote or rotations_remote"
            )
        r1, r2, r3 = (arg(A_ROT_REMOTE + i) * math.pi / 16 for i in range(3))
        remote_rot = (r1, r2, r3)
        self._results(resaddr, number)
        timeout = 30.0
        if arg(A_MAX_TIME):
            unit = TIME_UNIT_S.get(arg(A_TIME_UNIT))
            if unit is None:
                raise self._fail(f"time unit {args[A_TIME_UNIT]} unknown (0 us, 1 ms, 2 s)")
            timeout = min(max(arg(A_MAX_TIME) * unit * number, 1e-6), 3600.0)
        qubits: list[int] = []
        sequential = False
        bases, rotations = "Z", []
        if kind == "K":
            if qaddr is None:
                raise self._fail("create_epr of kind K without a qubit-id array")
            qubits, sequential = self._qubit_ids(qaddr, number)
        else:
            rand = arg(A_RAND_LOCAL)
            if rand not in RANDOM_BASES:
                raise self._fail(f"random basis {rand} (CHSH) is not supported; use XZ or XYZ")
            bases = RANDOM_BASES[rand]
            if arg(A_AXES_LOCAL):
                raise self._fail("rotation axes other than XYX are not supported")
            rot = tuple(arg(A_ROT_LOCAL + i) * math.pi / 16 for i in range(3))
            if any(rot):
                if rand:
                    raise self._fail("give rotations or a random basis, not both")
                rotations = [rot]
        spec = EprSpec(
            node=sock.node,
            app=sock.app,
            role="create",
            kind=kind,
            number=number,
            qubits=qubits,
            sequential=sequential,
            bases=bases,
            rotations=rotations,  # type: ignore[arg-type]
            min_fidelity=sock.min_fidelity,
            timeout_s=timeout,
            remote_rotations=[remote_rot] if kind == "M" and any(remote_rot) else [],
        )
        return self._start(spec, resaddr, sock)

    def _recv(self, a: tuple[object, ...]) -> EprStart:
        node_id, sid, qaddr, resaddr = [self.nq.regs[_r(x).i] for x in a]
        if node_id is None or sid is None or resaddr is None:
            raise self._fail("recv_epr with an unset register")
        sock = self._socket(node_id, sid)
        size = len(self._array(resaddr))
        if size % OK_FIELDS:
            raise self._fail(f"results array @{resaddr} of {size} entries; need 10 per pair")
        number = size // OK_FIELDS
        if not 1 <= number <= MAX_BLOCK_PAIRS:
            raise self._fail(f"{number} pairs; allowed 1..{MAX_BLOCK_PAIRS}")
        qubits: list[int] = []
        sequential = False
        kind = "M"
        if qaddr is not None:
            kind = "K"
            qubits, sequential = self._qubit_ids(qaddr, number)
        spec = EprSpec(
            node=sock.node,
            app=sock.app,
            role="recv",
            kind=kind,
            number=number,
            qubits=qubits,
            sequential=sequential,
            peer_bases=kind == "M",  # NetQASM: the creator says where the receiver measures
        )
        return self._start(spec, resaddr, sock)

    def pairs_in(self, index: int, pairs: list[EprPair]) -> None:
        req = self.reqs[index]
        spec = self.sub.eprs[index]
        arr = self.nq.arrays.get(req.results)
        got = self.epr_got.get(index, 0)
        for k, p in enumerate(pairs, start=got):
            if p.qubit >= 0:
                self.allocated.add(p.qubit)
            if arr is None or len(arr) < OK_FIELDS * (k + 1):
                continue  # the app re-declared its results array meanwhile
            seq = p.ent_id[2] % (1 << 31)
            way = 0 if req.create else 1
            if spec.measures():
                fields = [1, 0, p.outcome, BASIS_CODE.get(p.basis or "Z", 0), way, seq,
                          req.socket.id, req.socket.node_id, 0, 0]  # fmt: skip
            else:
                fields = [0, 0, p.qubit, way, seq, req.socket.id, req.socket.node_id, 0, 0, 0]
            arr[OK_FIELDS * k : OK_FIELDS * (k + 1)] = fields
        self.epr_got[index] = got + len(pairs)

    def _wait(self, op: str, a: tuple[object, ...]) -> WaitPairs | None:
        if op == "wait_single":
            arr, i = self._index(_entry(a[0]))
            addr, lo, hi = _entry(a[0]).a, i, i + 1
        else:
            s = a[0]
            assert isinstance(s, Slice)
            arr, lo, hi = self._slice(s)
            addr = s.a
        part = arr[lo:hi]
        done = any(v is not None for v in part) if op == "wait_any" else None not in part
        if done or lo == hi:
            return None
        for index in range(len(self.reqs) - 1, -1, -1):
            if self.reqs[index].results == addr:
                want = lo // OK_FIELDS + 1 if op == "wait_any" else (hi - 1) // OK_FIELDS + 1
                want = min(want, self.sub.eprs[index].number)
                if not self.waiting_for(index, want):
                    break  # every pair is in, yet the entries are undefined
                return WaitPairs(index, want)
        raise self._fail(
            f"{op} on @{addr}[{lo}:{hi}]: entries are undefined and no EPR request of this "
            f"subroutine fills them"
        )


def _F(v: float) -> Flt:
    return Flt(v=v)


def _r(x: object) -> NReg:
    assert isinstance(x, NReg)
    return x


def _i(x: object) -> int:
    assert isinstance(x, int)
    return x


def _addr(x: object) -> int:
    assert isinstance(x, Addr)
    return x.a


def _entry(x: object) -> Entry:
    assert isinstance(x, Entry)
    return x
