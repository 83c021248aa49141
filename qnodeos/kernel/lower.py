"""Lowering: core gates (what apps write) -> the device's native physical operations.

A gate the device can do natively on those qubits is passed through. Otherwise a rule
from ``RULES`` rewrites it into other gates, which are lowered in turn. Every rewrite
holds up to a global phase; tests check each against the gate's unitary on every device.
A gate with no applicable rule is refused with a DeviceError saying why.

Rules:
- x, y, z, s, t, h -> rotations (h = ry(pi/2) then rx(pi));
- rx, ry on a trapped ion where only collective all_rx/all_ry exist:
  rz(-pi) . all_r(-theta/2) . rz(pi) . all_r(theta/2) turns ion k by theta, others by 0;
- cnot on NV (electron control): crx(pi/2) then rz(-pi/2) on the electron and
  rx(-pi/2) on the carbon; with a carbon control, conjugate by Hadamards;
- cnot on trapped ions via the Molmer-Sorensen gate (only with exactly two ions, since
  MS acts on every ion in the trap);
- cz = h(target) . cnot . h(target).
"""

from __future__ import annotations

import math
from collections.abc import Callable

from ..errors import DeviceError
from ..hardware.specs import DeviceSpec
from ..lang.messages import PhysOp

PI = math.pi
Seq = list[tuple[str, tuple[int, ...], float]]
Rule = Callable[[DeviceSpec, tuple[int, ...], float], Seq | None]


def _fixed(seq: Callable[[tuple[int, ...]], Seq]) -> Rule:
    return lambda _spec, qs, _theta: seq(qs)


def _collective_rot(single: str, coll: str) -> Rule:
    def rule(spec: DeviceSpec, qs: tuple[int, ...], theta: float) -> Seq | None:
        if coll not in spec.collective:
            return None
        (q,) = qs
        return [("rz", (q,), -PI), (coll, (), -theta / 2), ("rz", (q,), PI), (coll, (), theta / 2)]

    return rule


def _cnot(spec: DeviceSpec, qs: tuple[int, ...], _theta: float) -> Seq | None:
    a, b = qs
    if "crx" in spec.two_qubit:
        g = spec.two_qubit["crx"]
        if spec.qubits[a] == g.control and spec.qubits[b] == g.target:
            return [("crx", (a, b), PI / 2), ("rz", (a,), -PI / 2), ("rx", (b,), -PI / 2)]
        if spec.qubits[b] == g.control and spec.qubits[a] == g.target:
            return [
                ("h", (a,), 0),
                ("h", (b,), 0),
                ("cnot", (b, a), 0),
                ("h", (a,), 0),
                ("h", (b,), 0),
            ]
        raise DeviceError(
            f"{spec.name}: cnot between qubits {a} ({spec.qubits[a]}) and {b} "
            f"({spec.qubits[b]}) is impossible; two-qubit gates exist only "
            f"{g.control}-{g.target}"
        )
    if "ms" in spec.collective:
        if spec.num_qubits != 2:
            raise DeviceError(
                f"{spec.name}: cnot needs the Molmer-Sorensen gate, which acts on every ion; "
                f"this trap holds {spec.num_qubits} ions, so only a 2-ion trap can do it"
            )
        return [
            ("h", (a,), 0),
            ("ms", (), PI / 2),
            ("h", (a,), 0),
            ("h", (b,), 0),
            ("rz", (a,), -PI / 2),
            ("rz", (b,), -PI / 2),
            ("h", (b,), 0),
        ]
    return None


RULES: dict[str, Rule] = {
    "x": _fixed(lambda qs: [("rx", qs, PI)]),
    "y": _fixed(lambda qs: [("ry", qs, PI)]),
    "z": _fixed(lambda qs: [("rz", qs, PI)]),
    "s": _fixed(lambda qs: [("rz", qs, PI / 2)]),
    "t": _fixed(lambda qs: [("rz", qs, PI / 4)]),
    "h": _fixed(lambda qs: [("ry", qs, PI / 2), ("rx", qs, PI)]),
    "rx": _collective_rot("rx", "all_rx"),
    "ry": _collective_rot("ry", "all_ry"),
    "cnot": _cnot,
    "cz": _fixed(lambda qs: [("h", (qs[1],), 0), ("cnot", qs, 0), ("h", (qs[1],), 0)]),
}


class Lowering:
    """Lowers gates for one device, caching each (gate, qubits, angle) result."""

    def __init__(self, spec: DeviceSpec) -> None:
        self.spec = spec
        self.native = spec.native_gates()
        self._cache: dict[tuple[str, tuple[int, ...], float], list[PhysOp]] = {}

    def lower(self, gate: str, qubits: tuple[int, ...], theta: float = 0.0) -> list[PhysOp]:
        key = (gate, qubits, theta)
        out = self._cache.get(key)
        if out is None:
            out = self._lower(gate, qubits, theta, depth=0)
            if len(self._cache) < 8192:
                self._cache[key] = out
        return out

    def _lower(self, gate: str, qs: tuple[int, ...], theta: float, depth: int) -> list[PhysOp]:
        op = PhysOp(gate, qs, float(theta))
        try:
            self.spec.validate(op)
            return [op]
        except DeviceError as exc:
            native_error = exc
        rule = RULES.get(gate)
        seq = rule(self.spec, qs, theta) if rule is not None and depth < 6 else None
        if seq is None:
            raise native_error
        return [p for g, q, t in seq for p in self._lower(g, q, t, depth + 1)]
