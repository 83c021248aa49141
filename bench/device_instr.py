"""Cost per physical instruction in the quantum process (the device core, no sockets).

    python bench/device_instr.py [--ops N] [--repeat R] [--budget S]
    python bench/device_instr.py --floor [--qubits 1 2 ... 12] [--repeat R]

Registers of 2, 6 and 10 generic qubits (T1/T2, gate, init and readout errors all on),
all qubits in one entangled state group (the expensive case). Rows:
  1q: single-qubit rotations;  2q: two-qubit gates (a ring of CNOTs);
  meas / init: one measurement / initialisation of a qubit of the full group, timed alone
    (the untimed CNOT after it joins the qubit back into the group);
  mixed: 1q/2q/measure/init, re-entangling (counted) after each pass (the group
    shrinks as its qubits are measured, so most ops act on small groups);
  chain: a one-qubit rotation then a CNOT to the next qubit, round a ring, on the full
    group (the layout a group's lazy axis order must keep: neighbours next to each
    other, or a later gate pays a move of the whole state).
Each row runs ``--repeat`` times (each for up to --ops instructions or --budget seconds
of CPU time, whichever comes first) and prints the median and best CPU time per
instruction (the process's own: load from others inflates it far less than wall time;
``--rows`` picks rows). The goal for 2 qubits is <= 10 us per instruction (100 kHz,
QNodeOS's NV QDevice rate).

``--floor``: instead, how applying an op to one state group as the register does
(``physics.apply_moving``: it may leave the group's axes reordered) compares with the
numpy *floor*: the same op (a random 4x4 or 16x16 superoperator)
applied to a state of the same size by one BLAS call on a contiguous view with no copy,
flat vector in, flat vector out: ``s.dot(vec.reshape(4**k, -1)).reshape(-1)``, which
is where the op's qubits sit first in the group: the best plain numpy can do. Every
1-qubit position, and 2-qubit positions in
the group's order (the device applies a two-qubit op that way round, with the exchanged
superoperator it keeps: ``QuantumDevice._two``): all of them up to 6 qubits, beyond
that every pair among the first three and last three positions (which covers every
layout ``apply_moving`` tells apart). Each
op and its floor are timed alternately (CPU time, ``--repeat`` times, best of each);
prints per size the worst ratio over positions (goal: <= 2) and where it is. BLAS runs
one thread (OPENBLAS_NUM_THREADS=1 unless set), so CPU time is the work done.

The process fixes glibc's malloc thresholds as a node's quantum process does
(``qnodeos.runtime.allocator``); ``--glibc-heap`` keeps glibc's own, as before.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from collections.abc import Callable

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # CPU time = work (see --floor)

import numpy as np  # noqa: E402
from numpy.typing import NDArray  # noqa: E402

from qnodeos.hardware.params import generic  # noqa: E402
from qnodeos.hardware.specs import OpSpec, with_overrides  # noqa: E402
from qnodeos.lang.messages import PhysOp  # noqa: E402
from qnodeos.qdevice.device import QuantumDevice  # noqa: E402
from qnodeos.qdevice.physics import apply_moving  # noqa: E402
from qnodeos.runtime.allocator import roomy_heap  # noqa: E402

ROWS = ("1q", "2q", "meas", "init", "mixed", "chain")
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
    chain: list[PhysOp] = []
    for i in range(32):
        q = i % n
        chain += [PhysOp(("rx", "ry")[i % 2], (q,), 0.4), PhysOp("cnot", (q, (q + 1) % n))]
    return {"1q": one, "2q": two, "mixed": mixed, "chain": chain}


def bench(n: int, name: str, ops: list[PhysOp], total: int, budget: float) -> float:
    """us per instruction of running ``ops`` over and over (timed as a whole)."""
    dev = noisy_generic(n)
    entangle(dev, n)
    t = 0.0
    done = 0
    start = time.process_time()
    while done < total and (done < 8 or time.process_time() - start < budget):
        for op in ops:
            t += STEP_NS
            dev.execute(op, t)
        done += len(ops)
        if name == "mixed":
            entangle(dev, n)  # measurements split the group; re-entangle (counted)
            done += n
    return (time.process_time() - start) / done * 1e6


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
        start = time.process_time()
        dev.execute(op, t)
        spent += time.process_time() - start
        done += 1
        t += STEP_NS
        dev.execute(PhysOp("cnot", ((q + 1) % n, q)), t)  # back into the group (untimed)
    return spent / done * 1e6


def numpy_floor() -> float:
    """One 4x4 complex matrix-vector product: the smallest numpy call we make."""
    a, v = np.eye(4, dtype=complex), np.ones(4, dtype=complex)
    n = 200_000
    start = time.process_time()
    for _ in range(n):
        a @ v
    return (time.process_time() - start) / n * 1e6


def positions(n: int) -> list[tuple[int, ...]]:
    """The positions --floor times at n qubits (see the module docstring)."""
    near = sorted({p for p in (0, 1, 2, n - 3, n - 2, n - 1) if 0 <= p < n})
    pool = range(n) if n <= 6 else near
    return [(p,) for p in range(n)] + [(p, q) for p in pool for q in pool if p < q]


def floor_ratios(n: int, repeat: int) -> tuple[float, tuple[int, ...], dict[str, float]]:
    """(worst ratio of apply_moving to the floor, its position, floor us per k) at n qubits."""
    rng = np.random.default_rng(n)
    vec = rng.normal(size=4**n) + 1j * rng.normal(size=4**n)
    ops = {k: rng.normal(size=(4**k, 4**k)) + 1j * rng.normal(size=(4**k, 4**k)) for k in (1, 2)}
    reps = max(1, 200_000 // 4**n)

    def cpu(f: Callable[..., object], *args: object) -> float:
        start = time.process_time()
        for _ in range(reps):
            f(*args)
        return (time.process_time() - start) / reps

    def floor(s: NDArray[np.complex128]) -> object:
        return s.dot(vec.reshape(s.shape[1], -1)).reshape(-1)

    worst, floors = 0.0, {}
    where: tuple[int, ...] = (0,)
    for pos in positions(n):
        s = ops[len(pos)]
        best_op = best_floor = float("inf")
        for _ in range(repeat):
            best_floor = min(best_floor, cpu(floor, s))
            best_op = min(best_op, cpu(apply_moving, vec, n, s, pos))
        floors[f"{len(pos)}q"] = best_floor * 1e6
        if best_op / best_floor > worst:
            worst, where = best_op / best_floor, pos
    return worst, where, floors


def floor_table(a: argparse.Namespace) -> None:
    out: dict[str, float] = {}
    if not a.json:
        print(f"apply_moving / numpy floor, worst over positions (best of {a.repeat}, CPU time)")
        print(f"{'qubits':>6} {'floor 1q us':>12} {'floor 2q us':>12} {'worst':>6}  at")
    for n in a.qubits:
        worst, where, floors = floor_ratios(n, a.repeat)
        out[f"q{n}_worst_ratio"] = worst
        if not a.json:
            f1, f2 = floors.get("1q", 0.0), floors.get("2q", float("nan"))
            print(f"{n:>6} {f1:12.2f} {f2:12.2f} {worst:6.2f}  {where}", flush=True)
    if a.json:
        print(json.dumps(out))


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
    p.add_argument("--rows", nargs="+", choices=ROWS, default=list(ROWS))
    p.add_argument("--quick", action="store_true", help="2 and 6 qubits, 3 runs, 0.3 s each")
    p.add_argument("--json", action="store_true", help="print one JSON object (medians, us)")
    p.add_argument("--floor", action="store_true", help="apply_moving vs the numpy floor")
    p.add_argument(
        "--glibc-heap",
        action="store_true",
        help="keep glibc's own mmap/trim thresholds (a quantum process fixes them: "
        "qnodeos.runtime.allocator)",
    )
    a = p.parse_args()
    if not a.glibc_heap:
        roomy_heap()  # as a node's quantum process starts
    if a.floor:
        if a.qubits == [2, 6, 10]:
            a.qubits = list(range(1, 11))
        floor_table(a)
        return
    if a.quick:
        a.qubits, a.repeat, a.budget = [2, 6], 3, 0.3
    floor = numpy_floor()
    if not a.json:
        print(f"numpy floor (one 4x4 complex matvec): {floor:.2f} us")
        print(f"{'qubits':>6} {'row':>6} {'median us/instr':>16} {'best':>9}   ({a.repeat} runs)")
    out: dict[str, float] = {"numpy_floor_us": floor}
    for n in a.qubits:
        m = mixes(n)
        for name in a.rows:
            out[f"q{n}_{name}_us"] = row(n, name, m.get(name), a)
    if a.json:
        print(json.dumps(out))


if __name__ == "__main__":
    main()
