"""Gate definitions as data: name, arity, whether it takes an angle, and its unitary.

Both the kernel (translating core gates into a device's native gates) and the quantum
process (applying them) use this one table, so a gate means the same thing everywhere.

>>> from typing import Any

import numpy as np
>>> np.allclose(unitary("h") @ unitary("h"), np.eye(2))
True
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

Matrix = NDArray[np.complexfloating[Any, Any]]

_I = np.eye(2, dtype=complex)
_X = np.array([[0, 1], [1, 0]], dtype=complex)
_Y = np.array([[0, -1j], [1j, 0]], dtype=complex)
_Z = np.array([[1, 0], [0, -1]], dtype=complex)
_P0 = np.diag([1.0, 0.0]).astype(complex)
_P1 = np.diag([0.0, 1.0]).astype(complex)


def _rot(pauli: Matrix) -> Callable[[float], Matrix]:
    def make(theta: float) -> Matrix:
        return math.cos(theta / 2) * _I - 1j * math.sin(theta / 2) * pauli

    return make


def _controlled_rot(pauli: Matrix) -> Callable[[float], Matrix]:
    # NV-style controlled rotation: control |0> -> R(+theta), |1> -> R(-theta) on target.
    def make(theta: float) -> Matrix:
        return np.kron(_P0, _rot(pauli)(theta)) + np.kron(_P1, _rot(pauli)(-theta))

    return make


def _ms(theta: float) -> Matrix:
    xx = np.kron(_X, _X)
    return math.cos(theta / 2) * np.eye(4, dtype=complex) - 1j * math.sin(theta / 2) * xx


@dataclass(frozen=True, kw_only=True)
class Gate:
    """A gate: ``arity`` qubits (0 = acts on every qubit of the device, collectively)."""

    name: str
    arity: int
    angle: bool
    make: Callable[[float], Matrix]
    collective_of: str | None = None  # for arity 0: the per-qubit (or pairwise) gate


def _fixed(m: Matrix) -> Callable[[float], Matrix]:
    return lambda _theta: m


GATES: dict[str, Gate] = {
    g.name: g
    for g in [
        Gate(name="x", arity=1, angle=False, make=_fixed(_X)),
        Gate(name="y", arity=1, angle=False, make=_fixed(_Y)),
        Gate(name="z", arity=1, angle=False, make=_fixed(_Z)),
        Gate(name="h", arity=1, angle=False, make=_fixed((_X + _Z) / math.sqrt(2))),
        Gate(name="s", arity=1, angle=False, make=_fixed(np.diag([1, 1j]).astype(complex))),
        Gate(
            name="t",
            arity=1,
            angle=False,
            make=_fixed(np.diag([1, np.exp(1j * math.pi / 4)]).astype(complex)),
        ),
        Gate(name="rx", arity=1, angle=True, make=_rot(_X)),
        Gate(name="ry", arity=1, angle=True, make=_rot(_Y)),
        Gate(name="rz", arity=1, angle=True, make=_rot(_Z)),
        Gate(
            name="cnot",
            arity=2,
            angle=False,
            make=_fixed(np.kron(_P0, _I) + np.kron(_P1, _X)),
        ),
        Gate(name="cz", arity=2, angle=False, make=_fixed(np.diag([1, 1, 1, -1]).astype(complex))),
        Gate(name="crx", arity=2, angle=True, make=_controlled_rot(_X)),
        Gate(name="cry", arity=2, angle=True, make=_controlled_rot(_Y)),
        Gate(name="ms", arity=0, angle=True, make=_ms, collective_of="ms"),
        Gate(name="all_rx", arity=0, angle=True, make=_rot(_X), collective_of="rx"),
        Gate(name="all_ry", arity=0, angle=True, make=_rot(_Y), collective_of="ry"),
    ]
}

# Gates every app may write regardless of device; the node translates them.
CORE_GATES = frozenset({"x", "y", "z", "h", "s", "t", "rx", "ry", "rz", "cnot", "cz"})


def unitary(name: str, theta: float = 0.0) -> Matrix:
    """The unitary of gate ``name`` (for collective gates: the 1- or 2-qubit factor)."""
    return GATES[name].make(theta)
