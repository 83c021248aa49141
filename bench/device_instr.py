"""Cost per physical instruction in the quantum process (the device core, no sockets).

    python bench/device_instr.py [--ops N] [--repeat R] [--budget S]

Registers of 2, 6 and 10 generic qubits (T1/T2, gate, init and readout errors all on),
all qubits in one entangled state group (the expensive case). Rows:
  1q: single-qubit rotations;  2q: two-qubit gates (a ring of CNOTs);
  meas / init: one measurement / initialisation of a qubit of the full group, timed alone
    (the untimed CNOT after it joins the qubit back into the group);
  mixed: 1q/2q/measure/init, re-entangling (counted) after each pass.
Each row runs ``--repeat`` times (each for up to --ops instructions or --budget seconds,
whichever comes first) and prints the median and best. The goal for 2 qubits is
<= 10 us per instruction (100 kHz, QNodeOS's NV QDevice rate).
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np

from qnodeos.hardware.params import generic
from qnodeos.hardware.specs import OpSpec, with_overrides
from qnodeos.lang.messages import PhysOp
from qnodeos.qdevice.device import QuantumDevice

STEP_NS = 1000.0  # device time between instructions, so idle decay applies to every op


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


def bench(n: int, name: str, ops: list[PhysOp], total: int, budget: float) -> float:
    """us per instruction of running ``ops`` over and over (timed as a whole)."""
    dev = noisy_generic(n)
    entangle(dev, n)
    t = 0.0
    done = 0
    start = time.perf_counter()
    while done < total and (done < 8 or time.perf_counter() - start < budget):
        for op in ops:
            t += STEP_NS
            dev.execute(op, t)
        done += len(ops)
        if name == "mixed":
            entangle(dev, n)  # measurements split the group; re-entangle (counted)
            done += n
    return (time.perf_counter() - start) / done * 1e6


def bench_alone(n: int, name: str, total: int, budget: float) -> float:
    """us per ``name`` (meas or init) on a qubit of the full group, each timed alone."""
    dev = noisy_generic(n)
    entangle(dev, n)
    t = 0.0
    spent = 0.0
    done = 0
    while done < total and (done < 8 or spent < budget):
        q = done % n
        t += STEP_NS
        op = PhysOp(name, (q,))
        start = time.perf_counter()
        dev.execute(op, t)
        spent += time.perf_counter() - start
        done += 1
        t += STEP_NS
        dev.execute(PhysOp("cnot", ((q + 1) % n, q)), t)  # back into the group (untimed)
    return spent / done * 1e6


def numpy_floor() -> float:
    """One 4x4 complex matrix-vector product: the smallest numpy call we make."""
    a, v = np.eye(4, dtype=complex), np.ones(4, dtype=complex)
    n = 200_000
    start = time.perf_counter()
    for _ in range(n):
        a @ v
    return (time.perf_counter() - start) / n * 1e6


def row(n: int, name: str, ops: list[PhysOp] | None, a: argparse.Namespace) -> float:
    def once() -> float:
        if ops is None:
            return bench_alone(n, name, a.ops, a.budget)
        return bench(n, name, ops, a.ops, a.budget)

    runs = sorted(once() for _ in range(a.repeat))
    if not a.json:
        print(f"{n:>6} {name:>6} {runs[len(runs) // 2]:16.2f} {runs[0]:9.2f}", flush=True)
    return runs[len(runs) // 2]


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--ops", type=int, default=20_000)
    p.add_argument("--repeat", type=int, default=5)
    p.add_argument("--budget", type=float, default=1.0, help="seconds per run, at most")
    p.add_argument("--qubits", type=int, nargs="+", default=[2, 6, 10])
    p.add_argument("--quick", action="store_true", help="2 and 6 qubits, 3 runs, 0.3 s each")
    p.add_argument("--json", action="store_true", help="print one JSON object (medians, us)")
    a = p.parse_args()
    if a.quick:
        a.qubits, a.repeat, a.budget = [2, 6], 3, 0.3
    floor = numpy_floor()
    if not a.json:
        print(f"numpy floor (one 4x4 complex matvec): {floor:.2f} us")
        print(f"{'qubits':>6} {'row':>6} {'median us/instr':>16} {'best':>9}   ({a.repeat} runs)")
    out: dict[str, float] = {"numpy_floor_us": floor}
    for n in a.qubits:
        m = mixes(n)
        for name in ("1q", "2q", "meas", "init", "mixed"):
            out[f"q{n}_{name}_us"] = row(n, name, m.get(name), a)
    if a.json:
        print(json.dumps(out))


if __name__ == "__main__":
    main()
