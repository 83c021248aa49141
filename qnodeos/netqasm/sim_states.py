"""``netqasm.sdk.toolbox.sim_states`` on qnodeos: the simulation-only helpers QNE
application templates call (``qubit_from``, ``to_dm``, ``get_fidelity``), which
netqasm's own module serves only on NetSquid.

NetSquid builds a reference qubit of its own; here ``qubit_from`` gives a
:class:`ReferenceQubit`, a pure one-qubit state with what apps read from NetSquid's
qubits (``.qstate.dm``, ``.qstate.qrepr``). ``get_fidelity(q, dm)`` follows NetSquid's
``qubitapi.fidelity`` with its default ``squared=False``: the root fidelity
sqrt(<psi|rho|psi>) (for a reference ket, |<psi|phi>|). ``backend.install`` puts this
module in place of netqasm's before an app is imported; the installed netqasm package
is not changed.

>>> q = qubit_from(0.0, 0.0)          # |0>
>>> to_dm(q).real.round(3).tolist()
[[1.0, 0.0], [0.0, 0.0]]
>>> round(get_fidelity(q, [[0.5, 0], [0, 0.5]]) ** 2, 12)
0.5
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from numpy.typing import NDArray

__all__ = ["ReferenceQubit", "get_fidelity", "qubit_from", "to_dm"]


class ReferenceQubit:
    """A pure one-qubit state, as NetSquid's qubit of ``qubit_from`` (only for
    comparing states in simulation): ``ket``, ``dm``, and ``qstate`` (itself) with
    ``dm`` and ``qrepr`` as NetSquid's qubits have."""

    def __init__(self, ket: NDArray[np.complex128]) -> None:
        self.ket = ket

    @property
    def dm(self) -> NDArray[np.complex128]:
        return np.outer(self.ket, self.ket.conj())

    @property
    def qstate(self) -> ReferenceQubit:
        return self

    @property
    def qrepr(self) -> ReferenceQubit:
        return self

    def __repr__(self) -> str:
        return f"ReferenceQubit(ket={self.ket.round(6).tolist()})"


def qubit_from(phi: float, theta: float) -> ReferenceQubit:
    """The qubit cos(theta/2)|0> + e^(i phi) sin(theta/2)|1> (Ry(theta), then Rz(phi),
    on |0>, as netqasm's ``qubit_from`` builds it; global phase dropped)."""
    ket = np.array(
        [math.cos(theta / 2), complex(math.cos(phi), math.sin(phi)) * math.sin(theta / 2)],
        dtype=complex,
    )
    return ReferenceQubit(ket)


def to_dm(q: ReferenceQubit) -> NDArray[np.complex128]:
    """The density matrix (2x2) of a qubit from ``qubit_from``."""
    if not isinstance(q, ReferenceQubit):
        raise TypeError(
            f"to_dm takes a qubit from qubit_from, not {type(q).__name__} (on qnodeos, "
            f"read an app's qubit with get_qubit_state)"
        )
    return q.dm


def get_fidelity(q1: ReferenceQubit, q2: Any) -> float:
    """Fidelity of the qubit ``q1`` (from ``qubit_from``) with the state ``q2``, a
    density matrix (such as ``get_qubit_state`` reads) or a ket: NetSquid's
    ``fidelity(q1, q2)``, not squared."""
    if not isinstance(q1, ReferenceQubit):
        raise TypeError(f"get_fidelity: the first argument comes from qubit_from, not {q1!r}")
    ref = np.asarray(q2, dtype=complex)
    if ref.shape == (2,):
        return float(abs(np.vdot(ref, q1.ket)))
    if ref.shape != (2, 2):
        raise ValueError(
            f"get_fidelity: the state is a {ref.shape} array; give a one-qubit density "
            f"matrix (2x2) or ket (2)"
        )
    overlap = float(np.real(q1.ket.conj() @ ref @ q1.ket))
    return math.sqrt(min(max(overlap, 0.0), 1.0))
