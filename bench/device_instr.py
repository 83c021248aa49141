"""Cost per physical instruction in the quantum process (the device core, no sockets).

    python bench/device_instr.py [--ops N]

Registers of 2 and 6 NV-like qubits (T1/T2, gate, init and readout errors all on), all
qubits in one entangled state group (the expensive case). Mixes:
  1q: single-qubit rotations;  2q: two-qubit gates;  mixed: 1q/2q/measure+init.
The goal for 2 qubits is <= 10 us per instruction (100 kHz, QNodeOS's NV QDevice rate).
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from qnodeos.hardware.params import generic
from qnodeos.hardware.specs import OpSpec, with_overrides
from qnodeos.lang.messages import PhysOp
from qnodeos.qdevice.device import QuantumDevice


def noisy_generic(n: int) -> QuantumDevice:
    spec = with_overrides(
        generic(n),
        {
            "kinds": {
                "qubit": {
                    "t1_ns": 3.6e12,
                    "t2_ns": 5e8,
                    "init": {"error": 0.01},
                    "gates": {g: {"error": 0.01} for g in ("rx", "ry", "rz", "h")},
                    "meas": {"p01": 0.05, "p10": 0.005},
                }
            },
            "two_qubit": {"cnot": {"spec": {"error": 0.02}}},
        },
    )
    assert isinstance(spec.kinds["qubit"].init, OpSpec)
    return QuantumDevice(spec, np.random.default_rng(1))


def entangle(dev: QuantumDevice, n: int) -> None:
    dev.execute(PhysOp("h", (0,)), 0.0)
    for q in range(1, n):
        dev.execute(PhysOp("cnot", (q - 1, q)), 0.0)


def mixes(n: int) -> dict[str, list[PhysOp]]:
    rng = np.random.default_rng(2)
    one = [
        PhysOp(("rx", "ry", "rz")[i % 3], (int(rng.integers(n)),), float(rng.random()))
        for i in range(64)
    ]
    two = [PhysOp("cnot", (i % n, (i + 1) % n)) for i in range(64)]
    mixed: list[PhysOp] = []
    for i in range(16):
        q = i % n
        mixed += [
            PhysOp("rx", (q,), 0.3),
            PhysOp("cnot", (q, (q + 1) % n)),
            PhysOp("meas", (q,)),
            PhysOp("init", (q,)),
        ]
    return {"1q": one, "2q": two, "mixed": mixed}


def bench(n: int, name: str, ops: list[PhysOp], total: int) -> float:
    dev = noisy_generic(n)
    entangle(dev, n)
    t = 0.0
    done = 0
    start = time.perf_counter()
    while done < total:
        for op in ops:
            t += 1000.0  # 1 us of device time passes between instructions: decay applies
            dev.execute(op, t)
        done += len(ops)
        if name == "mixed":
            entangle(dev, n)  # measurements split the group; re-entangle (counted)
            done += n
    return (time.perf_counter() - start) / done * 1e6


def numpy_floor() -> float:
    """One 4x4 complex matrix-vector product: the smallest numpy call we make."""
    a, v = np.eye(4, dtype=complex), np.ones(4, dtype=complex)
    n = 200_000
    start = time.perf_counter()
    for _ in range(n):
        a @ v
    return (time.perf_counter() - start) / n * 1e6


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--ops", type=int, default=20_000)
    p.add_argument("--repeat", type=int, default=5)
    a = p.parse_args()
    print(f"numpy floor (one 4x4 complex matvec): {numpy_floor():.2f} us")
    print(f"{'qubits':>6} {'mix':>6} {'median us/instr':>16} {'best':>7}   ({a.repeat} runs)")
    for n in (2, 6):
        for name, ops in mixes(n).items():
            runs = sorted(bench(n, name, ops, a.ops) for _ in range(a.repeat))
            print(f"{n:>6} {name:>6} {runs[len(runs) // 2]:16.2f} {runs[0]:7.2f}")


if __name__ == "__main__":
    main()
