"""The simulated quantum device: executes physical instructions on a device clock.

Sans-IO: ``execute(op, now_ns)`` takes the current device time from the caller (the
quantum process derives it from the wall clock times the speed factor; tests pass
numbers). An op starts at ``max(now, busy_until)`` and lasts its spec'd duration.

Noise, per op: the qubits it touches first decohere (T1/T2) for the device time since
they were last touched; then the ideal operation; then its depolarising error. All three
are composed into one superoperator. Readout flips the reported outcome with p(0->1) /
p(1->0); the state collapses to the true outcome. Qubits nobody touches are decohered
lazily the next time they are used, which is exact because the idle channels act on each
qubit alone.

How this works (speed): each (gate, angle, error) is turned once into its noisy
superoperator in the register's paired index order (see physics), and into the same
composed after each term of a basis of idle-decay channels. Per op, the decay of the
touched qubits (it depends on elapsed time) then costs one small product (weights @
rows) instead of building and multiplying decay matrices; the result is applied to the
state once. A measurement needs only the decay's damping, which the register folds into
its outcome probability and post-measurement state; init writes a cached state.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from ..errors import DeviceError
from ..hardware.specs import DeviceSpec, OpSpec
from ..lang.gates import GATES
from ..lang.messages import MAX_PEEK_GROUP, PhysOp
from .physics import (
    Matrix,
    Register,
    Vector,
    after_decay,
    decay_matrix,
    decay_params,
    decay_weights,
    depolarise_superop,
    exchanged,
    paired,
    unitary_superop,
)

NO_OUTCOME = -1
_ZERO: Vector = np.array([1, 0, 0, 0], dtype=complex)  # |0><0|, flattened
_ONE: Vector = np.array([0, 0, 0, 1], dtype=complex)
_NOT_GATES = frozenset({"init", "discard", "meas", "wait", "peek", "peek_group"})
_CACHE = 4096  # entries per cache; angles are floats, so bound what we keep


@dataclass(frozen=True)
class _Noisy:
    """A gate on m qubits with its depolarising error (paired order), and ``after``:
    the same composed after each m-tuple of decay basis channels (see after_decay), as
    real numbers (complex entries viewed as pairs): the weights are real, and a real
    matrix-vector product costs a quarter of a complex one. A two-qubit gate also keeps
    itself with its qubits exchanged, for groups that hold them in the other order."""

    s: Matrix
    after: NDArray[np.float64]
    swapped: _Noisy | None = None

    @classmethod
    def of(cls, s: Matrix, m: int, swap: bool = True) -> _Noisy:
        swapped = cls.of(exchanged(s), m, False) if m == 2 and swap else None
        return cls(s, after_decay(s, m).view(np.float64), swapped)

    def with_decay(self, weights: Sequence[float]) -> Matrix:
        d = self.s.shape[0]
        w = np.array(weights, dtype=np.float64)
        out: Matrix = w.dot(self.after).view(complex).reshape(d, d)
        return out


@dataclass(frozen=True, kw_only=True)
class MeasureRecipe:
    """A pair's recipe that is one-qubit gates on qubit ``q`` then a Z measurement of
    it: the gates (noisy, paired), every op's duration, the readout errors and the
    qubit's T1/T2 (``QuantumDevice.measure_recipe``)."""

    q: int
    gates: tuple[_Noisy, ...]
    durations: tuple[float, ...]
    p01: float
    p10: float
    t1_ns: float
    t2_ns: float


class QuantumDevice:
    """A device of ``spec`` with a seeded ``numpy.random.Generator``."""

    def __init__(self, spec: DeviceSpec, rng: np.random.Generator) -> None:
        self.spec = spec
        self.rng = rng
        self.reg = Register(spec.num_qubits)
        self.touched = [0.0] * spec.num_qubits  # device time each qubit is decohered to
        self.coherence = [1.0] * spec.num_qubits  # dephasing from attempts, not yet applied
        self.busy_until = 0.0
        self.executed = 0
        self.peeked: Matrix | None = None  # the state the last peek read (simulation only)
        # the order a peek_group lists a group's register slots in (the quantum process
        # sets it to the slots' global ids, so both ends of a pair read the same order)
        self.slot_order: Callable[[int], tuple[str, int]] = lambda q: ("", q)
        self._unitaries: dict[tuple[str, float], Matrix] = {}
        self._depol: dict[tuple[float, int], Matrix] = {}
        self._noisy_gates: dict[tuple[str, float, float], _Noisy] = {}
        self._init_states: dict[float, Vector] = {}
        self._checked: dict[PhysOp, OpSpec] = {}  # ops already validated, with their spec

    # -- helpers -----------------------------------------------------------------------
    def _gate_superop(self, name: str, theta: float) -> Matrix:
        key = (name, theta)
        s = self._unitaries.get(key)
        if s is None:
            s = unitary_superop(GATES[name].make(theta))
            if len(self._unitaries) < _CACHE:
                self._unitaries[key] = s
        return s

    def _noisy_gate(self, name: str, theta: float, error: float, m: int) -> _Noisy:
        """depolarise(error) after the gate, as one cached superoperator."""
        key = (name, theta, error)
        g = self._noisy_gates.get(key)
        if g is None:
            s = self._gate_superop(name, theta)
            dep = self._depolarise(error, m)
            if dep is not None:
                s = dep @ s
            s = paired(s, m)
            g = _Noisy.of(s, m)
            if len(self._noisy_gates) < _CACHE:
                self._noisy_gates[key] = g
        return g

    def _depolarise(self, p: float, m: int) -> Matrix | None:
        if p <= 0.0:
            return None
        s = self._depol.get((p, m))
        if s is None:
            s = self._depol[(p, m)] = depolarise_superop(p, m)
        return s

    def _init_state(self, error: float) -> Vector:
        """|0><0| after init's depolarising error, flattened (cached per error)."""
        s = self._init_states.get(error)
        if s is None:
            dep = self._depolarise(error, 1)
            s = _ZERO if dep is None else dep @ _ZERO
            self._init_states[error] = s
        return s

    def _decay(self, q: int, t: float) -> tuple[float, float] | None:
        """(gamma, coherence) of q's idle decay up to device time t, or None if nothing
        decays; q counts as decohered up to t from now on."""
        dt = t - self.touched[q]
        self.touched[q] = max(t, self.touched[q])
        kind = self.spec.kind(q)
        extra = self.coherence[q]
        if extra != 1.0:
            self.coherence[q] = 1.0
        elif dt <= 0.0 or (kind.t1_ns == np.inf and kind.t2_ns == np.inf):
            return None
        gamma, coh = decay_params(max(dt, 0.0), kind.t1_ns, kind.t2_ns)
        return gamma, coh * extra

    def fresh(self, q: int, t: float) -> None:
        """Qubit q starts over at device time t (its old state traced out): the
        heralded state is about to be placed on it."""
        self.reg.reset(q)
        self.touched[q] = t
        self.coherence[q] = 1.0

    def attempted(self, attempts: int, comm: int) -> None:
        """``attempts`` entanglement attempts were made with qubit ``comm``: the other
        qubits of kinds that dephase per attempt (NV carbons) lose coherence. Applied
        lazily, like idle decay (the channel acts on each qubit alone)."""
        if attempts <= 0:
            return
        for q in range(self.spec.num_qubits):
            c = self.spec.kind(q).attempt_coherence
            if q != comm and c != 1.0:
                self.coherence[q] *= c**attempts

    def decohere(self, qubits: Iterable[int], t: float) -> None:
        """Bring the given qubits' idle decay up to device time t."""
        for q in qubits:
            d = self._decay(q, t)
            if d is not None:
                self.reg.apply_paired(decay_matrix(*d), [q])

    def _spec_of(self, op: PhysOp) -> OpSpec:
        """The spec of ``op``; raises DeviceError if the device cannot do it."""
        spec = self._checked.get(op)
        if spec is None:
            self.spec.validate(op)
            spec = self.spec.op_spec(op)
            if len(self._checked) < 8192:
                self._checked[op] = spec
        return spec

    # -- a measured pair's recipe, for many pairs at once (see measured.py) -------------
    def measure_recipe(self, ops: Sequence[PhysOp]) -> MeasureRecipe | None:
        """``ops`` as a ``MeasureRecipe`` if they are one-qubit gates on one qubit then
        one measurement of it, all of which this device can do; else None (the caller
        runs them op by op, which reports any refusal)."""
        if not ops or ops[-1].op != "meas" or len(ops[-1].qubits) != 1:
            return None
        q = ops[-1].qubits[0]
        gates: list[_Noisy] = []
        durations: list[float] = []
        try:
            for op in ops:
                if op.qubits != (q,) or (op.op in _NOT_GATES and op is not ops[-1]):
                    return None
                spec = self._spec_of(op)
                durations.append(spec.duration_ns)
                if op is not ops[-1]:
                    gates.append(self._noisy_gate(op.op, op.param, spec.error, 1))
        except DeviceError:
            return None
        kind = self.spec.kind(q)
        assert kind.meas is not None  # validated: q is measurable
        return MeasureRecipe(
            q=q, gates=tuple(gates), durations=tuple(durations), p01=kind.meas.p01,
            p10=kind.meas.p10, t1_ns=kind.t1_ns, t2_ns=kind.t2_ns,
        )  # fmt: skip

    def measure_superops(self, r: MeasureRecipe, wait_ns: float) -> tuple[list[Matrix], float]:
        """What ``execute`` applies for recipe ``r`` on its qubit, made ``fresh`` ``wait_ns``
        before the recipe's first op starts: the gates' superoperators (paired) and the
        damping the measurement folds in. Only the first op sees idle decay: the rest
        follow back to back (``_decay`` of a fresh qubit, whose attempt coherence is 1)."""
        d = None
        if wait_ns > 0.0 and not (r.t1_ns == np.inf and r.t2_ns == np.inf):
            gamma, coh = decay_params(wait_ns, r.t1_ns, r.t2_ns)
            d = (gamma, coh * 1.0)
        if not r.gates:
            return [], 0.0 if d is None else d[0]
        first = r.gates[0]
        s = first.s if d is None else first.with_decay(decay_weights(*d))
        return [s, *(g.s for g in r.gates[1:])], 0.0

    def measured(self, q: int, outcome: int, end_ns: float, ops: int) -> None:
        """Pairs were measured on qubit ``q`` by ``ops`` ops in all, the last ending at
        ``end_ns`` with (true) outcome ``outcome``: leave the device as running them op
        by op would."""
        self.reg.prepare(q, _ONE if outcome else _ZERO)
        self.touched[q] = end_ns
        self.coherence[q] = 1.0
        self.busy_until = end_ns
        self.executed += ops

    # -- execution ---------------------------------------------------------------------
    def execute(self, op: PhysOp, now_ns: float) -> tuple[int, float]:
        """Run one op; return (outcome or NO_OUTCOME, device time it ends).

        Raises DeviceError (state untouched) if the device cannot do it.
        """
        spec = self._spec_of(op)
        start = max(now_ns, self.busy_until)
        end = start + spec.duration_ns
        outcome = NO_OUTCOME
        qs = list(op.qubits)
        name = op.op
        if name == "init":
            self.reg.prepare(qs[0], self._init_state(spec.error))
            self.touched[qs[0]] = start
            self.coherence[qs[0]] = 1.0
        elif name == "discard":
            self.reg.reset(qs[0], mixed=True)
            self.touched[qs[0]] = start
            self.coherence[qs[0]] = 1.0
        elif name == "meas":
            d = self._decay(qs[0], start)  # its dephasing cannot change a Z measurement
            true = self.reg.measure(qs[0], self.rng.random(), 0.0 if d is None else d[0])
            m = self.spec.kind(qs[0]).meas
            assert m is not None
            flip = m.p01 if true == 0 else m.p10
            outcome = true ^ 1 if flip > 0 and self.rng.random() < flip else true
        elif name == "wait":
            pass
        elif name == "peek":  # simulation only: read the state, change nothing
            self.decohere(qs, start)
            self.peeked = self.reg.density_matrix(qs)
        elif name == "peek_group":  # simulation only: the joint state of q's whole group
            members = sorted(self.reg.group_of[qs[0]].qubits, key=self.slot_order)
            if len(members) > MAX_PEEK_GROUP:
                raise DeviceError(
                    f"peek_group: qubit {qs[0]} shares its state with {len(members) - 1} "
                    f"other qubits; at most {MAX_PEEK_GROUP} qubits can be read at once"
                )
            self.decohere([q for q in members if q < self.spec.num_qubits], start)
            self.peeked = self.reg.density_matrix(members)
        elif len(qs) == 1:
            self._one(qs[0], self._noisy_gate(name, op.param, spec.error, 1), start)
        elif len(qs) == 2:
            self._two(qs, self._noisy_gate(name, op.param, spec.error, 2), start)
        else:
            self._collective(name, op.param, spec.error, start)
        for q in qs:
            self.touched[q] = max(self.touched[q], end)
        self.busy_until = end
        self.executed += 1
        return outcome, end

    def _one(self, q: int, gate: _Noisy, start: float) -> None:
        d = self._decay(q, start)
        self.reg.apply_paired(gate.s if d is None else gate.with_decay(decay_weights(*d)), [q])

    def _two(self, qs: list[int], gate: _Noisy, start: float) -> None:
        a, b = qs
        if gate.swapped is not None and not self.reg.precedes(a, b):
            gate, a, b = gate.swapped, b, a  # the same channel, in the group's order
        da = self._decay(a, start)
        db = self._decay(b, start)
        if da is None and db is None:
            self.reg.apply_paired(gate.s, (a, b))
            return
        wa = decay_weights(*(da or (0.0, 1.0)))
        wb = decay_weights(*(db or (0.0, 1.0)))
        self.reg.apply_paired(gate.with_decay([x * y for x in wa for y in wb]), (a, b))

    def _collective(self, name: str, theta: float, error: float, start: float) -> None:
        n = self.spec.num_qubits
        base = GATES[name].collective_of
        if base == "ms":
            # exp(-i theta/2 sum_{i<j} X_i X_j): the pair terms commute, apply each.
            pair = self._noisy_gate("ms", theta, error, 2).s
            self.decohere(range(n), start)
            for i in range(n):
                for j in range(i + 1, n):
                    self.reg.apply_paired(pair, [i, j])
        else:
            assert base is not None
            gate = self._noisy_gate(base, theta, error, 1)
            for q in range(n):
                self._one(q, gate, start)
