"""Every core gate, lowered for every device, equals the gate up to a global phase."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from qnodeos.errors import DeviceError
from qnodeos.hardware.params import build
from qnodeos.hardware.specs import DeviceSpec
from qnodeos.kernel.lower import Lowering
from qnodeos.lang.gates import CORE_GATES, GATES, unitary
from qnodeos.lang.messages import PhysOp


def embed(n: int, u: np.ndarray, qs: list[int]) -> np.ndarray:
    m = len(qs)
    eye = np.eye(2**n, dtype=complex).reshape((2,) * 2 * n)
    out = np.tensordot(u.reshape((2,) * 2 * m), eye, axes=(list(range(m, 2 * m)), qs))
    return np.moveaxis(out, list(range(m)), qs).reshape(2**n, 2**n)


def circuit(spec: DeviceSpec, ops: list[PhysOp]) -> np.ndarray:
    n = spec.num_qubits
    total = np.eye(2**n, dtype=complex)
    for op in ops:
        g = GATES[op.op]
        if g.arity:
            total = embed(n, unitary(op.op, op.param), list(op.qubits)) @ total
        elif g.collective_of == "ms":
            for i, j in itertools.combinations(range(n), 2):
                total = embed(n, unitary("ms", op.param), [i, j]) @ total
        else:
            assert g.collective_of is not None
            for q in range(n):
                total = embed(n, unitary(g.collective_of, op.param), [q]) @ total
    return total


def equal_up_to_phase(a: np.ndarray, b: np.ndarray) -> bool:
    i = np.unravel_index(np.argmax(abs(b)), b.shape)
    phase = a[i] / b[i]
    return bool(abs(abs(phase) - 1) < 1e-9 and np.allclose(a, phase * b, atol=1e-9))


CASES = [(kind, n) for kind, n in [("generic", 3), ("nv", 3), ("trapped_ion", 2)]]


@pytest.mark.parametrize("kind, n", CASES)
@pytest.mark.parametrize("gate", sorted(CORE_GATES))
def test_lowering_is_exact(kind: str, n: int, gate: str) -> None:
    spec = build(kind, n)
    low = Lowering(spec)
    for qs in itertools.permutations(range(n), GATES[gate].arity):
        try:
            ops = low.lower(gate, qs, 0.7)
        except DeviceError:
            assert kind == "nv" and all(spec.qubits[q] == "carbon" for q in qs)
            continue
        for op in ops:
            spec.validate(op)  # only native ops come out
        assert equal_up_to_phase(circuit(spec, ops), embed(n, unitary(gate, 0.7), list(qs)))


def test_ion_cnot_needs_a_two_ion_trap() -> None:
    with pytest.raises(DeviceError, match="this trap holds 3 ions"):
        Lowering(build("trapped_ion", 3)).lower("cnot", (0, 1))


def test_nv_carbon_carbon_gate_is_refused_with_reason() -> None:
    with pytest.raises(DeviceError, match="two-qubit gates exist only electron-carbon"):
        Lowering(build("nv", 3)).lower("cnot", (1, 2))
