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
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from ..hardware.specs import DeviceSpec, OpSpec
from ..lang.gates import GATES
from ..lang.messages import PhysOp
from .physics import (
    Matrix,
    Register,
    decay_superop,
    depolarise_superop,
    unitary_superop,
)

NO_OUTCOME = -1


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
        self._unitaries: dict[tuple[str, float], Matrix] = {}
        self._depol: dict[tuple[float, int], Matrix] = {}
        self._noisy_gates: dict[tuple[str, float, float], Matrix] = {}
        self._checked: dict[PhysOp, OpSpec] = {}  # ops already validated, with their spec
        self._decay_buf = np.zeros((4, 4), dtype=complex)

    # -- helpers -----------------------------------------------------------------------
    def _gate_superop(self, name: str, theta: float) -> Matrix:
        key = (name, theta)
        s = self._unitaries.get(key)
        if s is None:
            s = unitary_superop(GATES[name].make(theta))
            if len(self._unitaries) < 4096:
                self._unitaries[key] = s
        return s

    def _noisy_gate(self, name: str, theta: float, error: float, m: int) -> Matrix:
        """depolarise(error) after the gate, as one cached superoperator."""
        key = (name, theta, error)
        s = self._noisy_gates.get(key)
        if s is None:
            s = self._gate_superop(name, theta)
            dep = self._depolarise(error, m)
            if dep is not None:
                s = dep @ s
            if len(self._noisy_gates) < 4096:
                self._noisy_gates[key] = s
        return s

    def _depolarise(self, p: float, m: int) -> Matrix | None:
        if p <= 0.0:
            return None
        s = self._depol.get((p, m))
        if s is None:
            s = self._depol[(p, m)] = depolarise_superop(p, m)
        return s

    def _decay(self, q: int, t: float) -> Matrix | None:
        dt = t - self.touched[q]
        self.touched[q] = max(t, self.touched[q])
        kind = self.spec.kind(q)
        extra = self.coherence[q]
        if extra != 1.0:
            self.coherence[q] = 1.0
        elif dt <= 0.0 or (kind.t1_ns == np.inf and kind.t2_ns == np.inf):
            return None
        s = decay_superop(max(dt, 0.0), kind.t1_ns, kind.t2_ns, self._decay_buf)
        if extra != 1.0:
            s[1, 1] *= extra
            s[2, 2] *= extra
        return s

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
            s = self._decay(q, t)
            if s is not None:
                self.reg.apply(s, [q])

    # -- execution ---------------------------------------------------------------------
    def execute(self, op: PhysOp, now_ns: float) -> tuple[int, float]:
        """Run one op; return (outcome or NO_OUTCOME, device time it ends).

        Raises DeviceError (state untouched) if the device cannot do it.
        """
        spec = self._checked.get(op)
        if spec is None:
            self.spec.validate(op)
            spec = self.spec.op_spec(op)
            if len(self._checked) < 8192:
                self._checked[op] = spec
        start = max(now_ns, self.busy_until)
        end = start + spec.duration_ns
        outcome = NO_OUTCOME
        qs = list(op.qubits)
        name = op.op
        if name == "init":
            self.reg.reset(qs[0])
            self.touched[qs[0]] = start
            self.coherence[qs[0]] = 1.0
            dep = self._depolarise(spec.error, 1)
            if dep is not None:
                self.reg.apply(dep, qs)
        elif name == "discard":
            self.reg.reset(qs[0], mixed=True)
            self.touched[qs[0]] = start
            self.coherence[qs[0]] = 1.0
        elif name == "meas":
            self.decohere(qs, start)
            true = self.reg.measure(qs[0], float(self.rng.random()))
            m = self.spec.kind(qs[0]).meas
            assert m is not None
            flip = m.p01 if true == 0 else m.p10
            outcome = true ^ 1 if flip > 0 and self.rng.random() < flip else true
        elif name == "wait":
            pass
        elif len(qs) == 1:
            self._one(qs[0], self._noisy_gate(name, op.param, spec.error, 1), start)
        elif len(qs) == 2:
            self.decohere(qs, start)
            self.reg.apply(self._noisy_gate(name, op.param, spec.error, 2), qs)
        else:
            self._collective(name, op.param, spec.error, start)
        for q in qs:
            self.touched[q] = max(self.touched[q], end)
        self.busy_until = end
        self.executed += 1
        return outcome, end

    def _one(self, q: int, noisy_gate: Matrix, start: float) -> None:
        decay = self._decay(q, start)
        self.reg.apply(noisy_gate if decay is None else noisy_gate @ decay, [q])

    def _collective(self, name: str, theta: float, error: float, start: float) -> None:
        n = self.spec.num_qubits
        base = GATES[name].collective_of
        if base == "ms":
            # exp(-i theta/2 sum_{i<j} X_i X_j): the pair terms commute, apply each.
            pair = self._noisy_gate("ms", theta, error, 2)
            self.decohere(range(n), start)
            for i in range(n):
                for j in range(i + 1, n):
                    self.reg.apply(pair, [i, j])
        else:
            assert base is not None
            gate = self._noisy_gate(base, theta, error, 1)
            for q in range(n):
                self._one(q, gate, start)
