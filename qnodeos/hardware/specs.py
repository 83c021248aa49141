"""Devices as data: qubit kinds with T1/T2, init/gate/readout specs, two-qubit gates with
topology rules, and collective gates. ``DeviceSpec.validate`` decides whether a physical
instruction is possible on the device (the one place topology rules live).

>>> from qnodeos.hardware.params import nv
>>> from qnodeos.lang.messages import PhysOp
>>> nv(carbons=1).validate(PhysOp("meas", (1,)))
Traceback (most recent call last):
...
qnodeos.errors.DeviceError: nv: cannot measure physical qubit 1 (carbon); measurable kinds: electron
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ..errors import ConfigError, DeviceError
from ..lang.gates import GATES
from ..lang.messages import PhysOp

INF = math.inf


@dataclass(frozen=True, kw_only=True)
class OpSpec:
    """Duration (device ns) and depolarising error probability of one operation."""

    duration_ns: float
    error: float = 0.0


@dataclass(frozen=True, kw_only=True)
class MeasSpec:
    """Readout: duration and asymmetric flip probabilities p(0->1) and p(1->0)."""

    duration_ns: float
    p01: float = 0.0
    p10: float = 0.0


@dataclass(frozen=True, kw_only=True)
class QubitKind:
    """A kind of physical qubit (NV electron, NV carbon, ion...). T1/T2 of ``inf`` mean
    that process is not modelled; ``meas=None`` means it cannot be read out."""

    name: str
    t1_ns: float
    t2_ns: float
    init: OpSpec
    gates: Mapping[str, OpSpec]
    meas: MeasSpec | None
    communication: bool = False
    attempt_coherence: float = 1.0  # coherence kept per entanglement attempt of the device


@dataclass(frozen=True, kw_only=True)
class TwoQubitGate:
    """A two-qubit gate and which kinds may be its first (control) and second qubit."""

    spec: OpSpec
    control: str | None = None
    target: str | None = None


@dataclass(frozen=True, kw_only=True)
class DeviceSpec:
    """A whole device: ``qubits[i]`` is the kind name of physical qubit i."""

    name: str
    qubits: tuple[str, ...]
    kinds: Mapping[str, QubitKind]
    two_qubit: Mapping[str, TwoQubitGate] = field(default_factory=dict)
    collective: Mapping[str, OpSpec] = field(default_factory=dict)
    wait_granularity_ns: float = 1.0

    @property
    def num_qubits(self) -> int:
        return len(self.qubits)

    def kind(self, q: int) -> QubitKind:
        return self.kinds[self.qubits[q]]

    def native_gates(self) -> frozenset[str]:
        one = {g for k in self.kinds.values() for g in k.gates}
        return frozenset(one | set(self.two_qubit) | set(self.collective))

    def validate(self, op: PhysOp) -> None:
        """Raise DeviceError if the device cannot execute ``op``; return None otherwise."""
        n = self.num_qubits
        for q in op.qubits:
            if not 0 <= q < n:
                raise DeviceError(f"{self.name}: physical qubit {q} does not exist (0..{n - 1})")
        if len(set(op.qubits)) != len(op.qubits):
            raise DeviceError(f"{self.name}: {op.op} names qubit {op.qubits[0]} twice")
        if not math.isfinite(op.param):
            raise DeviceError(f"{self.name}: {op.op} parameter {op.param} is not finite")
        arity = _ARITY.get(op.op)
        if arity is None:
            gate = GATES.get(op.op)
            if gate is None:
                raise DeviceError(f"{self.name}: unknown physical instruction {op.op!r}")
            arity = gate.arity
        if len(op.qubits) != arity:
            raise DeviceError(f"{self.name}: {op.op} acts on {arity} qubits, got {len(op.qubits)}")
        if op.op == "meas":
            kind = self.kind(op.qubits[0])
            if kind.meas is None:
                ok = ", ".join(k.name for k in self.kinds.values() if k.meas is not None)
                raise DeviceError(
                    f"{self.name}: cannot measure physical qubit {op.qubits[0]} "
                    f"({kind.name}); measurable kinds: {ok}"
                )
        elif op.op == "wait":
            if op.param < 0:
                raise DeviceError(f"{self.name}: wait of {op.param} ns is negative")
        elif op.op in ("init", "discard", "peek", "peek_group"):
            pass
        elif arity == 1:
            kind = self.kind(op.qubits[0])
            if op.op not in kind.gates:
                raise DeviceError(
                    f"{self.name}: gate {op.op} is not native on {kind.name} "
                    f"(qubit {op.qubits[0]}); native: {', '.join(sorted(kind.gates))}"
                )
        elif arity == 2:
            g2 = self.two_qubit.get(op.op)
            if g2 is None:
                raise DeviceError(f"{self.name}: two-qubit gate {op.op} is not native")
            c, t = (self.qubits[q] for q in op.qubits)
            if (g2.control and c != g2.control) or (g2.target and t != g2.target):
                raise DeviceError(
                    f"{self.name}: {op.op} needs {g2.control or 'any'} -> {g2.target or 'any'}, "
                    f"got qubits {op.qubits[0]} ({c}) -> {op.qubits[1]} ({t})"
                )
        elif op.op not in self.collective:
            raise DeviceError(f"{self.name}: collective gate {op.op} is not native")

    def op_spec(self, op: PhysOp) -> OpSpec:
        """Duration and error of a valid op (readout handled separately)."""
        if op.op == "init":
            return self.kind(op.qubits[0]).init
        if op.op == "meas":
            m = self.kind(op.qubits[0]).meas
            assert m is not None
            return OpSpec(duration_ns=m.duration_ns)
        if op.op == "wait":
            return OpSpec(duration_ns=op.param)
        if op.op in ("discard", "peek", "peek_group"):
            return OpSpec(duration_ns=0.0)
        if len(op.qubits) == 1:
            return self.kind(op.qubits[0]).gates[op.op]
        if len(op.qubits) == 2:
            return self.two_qubit[op.op].spec
        return self.collective[op.op]


_ARITY = {"init": 1, "meas": 1, "discard": 1, "peek": 1, "peek_group": 1, "wait": 0}


def _override(obj: Any, values: Mapping[str, Any], path: str) -> Any:
    """Return ``obj`` with fields replaced from a nested mapping, checking names/types."""
    if isinstance(obj, Mapping):
        out = dict(obj)
        for key, val in values.items():
            if key not in out:
                raise ConfigError(f"{path}.{key}: unknown (known: {', '.join(sorted(out))})")
            out[key] = _override(out[key], val, f"{path}.{key}")
        return out
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        if not isinstance(values, Mapping):
            raise ConfigError(f"{path}: expected a table, got {values!r}")
        names = {f.name for f in dataclasses.fields(obj)}
        changes = {}
        for key, val in values.items():
            if key not in names or key in ("name", "qubits"):
                raise ConfigError(f"{path}.{key}: unknown parameter")
            changes[key] = _override(getattr(obj, key), val, f"{path}.{key}")
        return dataclasses.replace(obj, **changes)
    if isinstance(obj, bool) or obj is None or isinstance(obj, str):
        raise ConfigError(f"{path}: cannot be overridden")
    if isinstance(values, bool) or not isinstance(values, int | float):
        raise ConfigError(f"{path}: expected a number, got {values!r}")
    val = float(values)
    if math.isnan(val) or val < 0:
        raise ConfigError(f"{path}: must be a non-negative number, got {values!r}")
    if (path.endswith(".error") or path.endswith(".p01") or path.endswith(".p10")) and val > 1:
        raise ConfigError(f"{path}: a probability must be in [0, 1], got {values!r}")
    if (path.endswith("t1_ns") or path.endswith("t2_ns")) and val == 0:
        raise ConfigError(f"{path}: must be > 0 (use inf for 'not modelled')")
    return val


def with_overrides(spec: DeviceSpec, values: Mapping[str, Any]) -> DeviceSpec:
    """Apply overrides such as ``{"kinds": {"electron": {"t2_ns": 1e9}}}``.

    Raises ConfigError naming the offending key path.
    """
    out: DeviceSpec = _override(spec, values, spec.name)
    for k in out.kinds.values():
        if math.isfinite(k.t2_ns) and k.t2_ns > 2 * k.t1_ns:
            raise ConfigError(
                f"{spec.name}.kinds.{k.name}: T2 {k.t2_ns} ns exceeds 2*T1 ({2 * k.t1_ns} ns)"
            )
    return out
