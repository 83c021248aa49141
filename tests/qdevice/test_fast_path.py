"""The device's fast path (cached noisy superoperators composed with each qubit's idle
decay, applied in the register's paired order) against a plain reference: one dense
density matrix of all qubits, every channel lifted to the whole register with kron.
They must agree to floating-point precision for any sequence of ops and idle times."""

from __future__ import annotations

import numpy as np
import pytest

from qnodeos.config.network import parse_network
from qnodeos.lang.gates import GATES
from qnodeos.lang.messages import PhysOp
from qnodeos.qdevice.device import QuantumDevice
from qnodeos.qdevice.physics import decay_superop, depolarise_superop, unitary_superop

NET = """
[nodes.a]
device = "generic"
qubits = 3
speed = inf
[nodes.a.params.kinds.qubit]
t1_ns = 40000
t2_ns = 25000
gates = { rx = { error = 0.01 }, ry = { error = 0.02 }, h = { error = 0.015 } }
[nodes.a.params.two_qubit.cnot.spec]
error = 0.03
"""


def lift(s: np.ndarray, qubits: list[int], n: int) -> np.ndarray:
    """Superoperator ``s`` on ``qubits`` (row-major vec order) as one on all n qubits."""
    m = len(qubits)
    d = 2**n
    out = np.zeros((d * d, d * d), dtype=complex)
    rest = [q for q in range(n) if q not in qubits]
    for col in range(d * d):
        i, j = divmod(col, d)
        bi = [(i >> (n - 1 - q)) & 1 for q in range(n)]
        bj = [(j >> (n - 1 - q)) & 1 for q in range(n)]
        a = int("".join(str(bi[q]) for q in qubits), 2) if m else 0
        b = int("".join(str(bj[q]) for q in qubits), 2) if m else 0
        column = s[:, a * 2**m + b]
        for k, amp in enumerate(column):
            if amp == 0:
                continue
            a2, b2 = divmod(k, 2**m)
            ni, nj = bi[:], bj[:]
            for pos, q in enumerate(qubits):
                ni[q] = (a2 >> (m - 1 - pos)) & 1
                nj[q] = (b2 >> (m - 1 - pos)) & 1
            for q in rest:
                assert ni[q] == bi[q] and nj[q] == bj[q]
            row = int("".join(map(str, ni)), 2) * d + int("".join(map(str, nj)), 2)
            out[row, col] += amp
    return out


@pytest.mark.parametrize("seed", range(4))
def test_fast_path_matches_a_dense_reference(seed: int) -> None:
    spec = parse_network(NET).node("a").device
    dev = QuantumDevice(spec, np.random.default_rng(seed))
    rng = np.random.default_rng(100 + seed)
    n = 3
    rho = np.zeros((8, 8), dtype=complex)
    rho[0, 0] = 1.0
    vec = rho.reshape(-1)
    touched = [0.0] * n
    kind = spec.kind(0)
    now = 0.0
    for _ in range(60):
        now += float(rng.uniform(0, 20000))  # idle time passes between ops
        r = rng.random()
        if r < 0.5:
            name = str(rng.choice(["rx", "ry", "h"]))
            theta = float(rng.uniform(-3, 3)) if GATES[name].angle else 0.0
            qs = [int(rng.integers(n))]
        else:
            name, theta = "cnot", 0.0
            qs = [int(q) for q in rng.choice(n, size=2, replace=False)]
        op = PhysOp(name, tuple(qs), theta)
        _, end = dev.execute(op, now)
        start = end - spec.op_spec(op).duration_ns
        for q in qs:  # the reference: each touched qubit's idle decay, then the gate
            dt = start - touched[q]
            if dt > 0:
                vec = lift(decay_superop(dt, kind.t1_ns, kind.t2_ns), [q], n) @ vec
        s = unitary_superop(GATES[name].make(theta))
        err = spec.op_spec(op).error
        if err > 0:
            s = depolarise_superop(err, len(qs)) @ s
        vec = lift(s, qs, n) @ vec
        for q in qs:
            touched[q] = end
        now = end
    dev.decohere(range(n), now)
    for q in range(n):
        if now > touched[q]:
            vec = lift(decay_superop(now - touched[q], kind.t1_ns, kind.t2_ns), [q], n) @ vec
    np.testing.assert_allclose(dev.reg.density_matrix([0, 1, 2]), vec.reshape(8, 8), atol=1e-10)
