"""CPU an idle node costs: ``qnodeos up`` keeps N nodes up (in linked pairs: each node
has one neighbour, no app runs), and the CPU time of all their processes (classical
and quantum) is read from /proc at two instants after they are up.

    python bench/idle.py [--nodes 2,16] [--seconds 10] [--runs 3]

Start-up is excluded: the first reading is taken ``--settle`` seconds after ``up``
says the network is up. Prints, per N and run, the CPU per node per second (ms/s, and
as a percentage of one core) of the nodes' processes; the ``up`` process itself (the
launcher, one per network) is reported apart. It prints numbers; it is not a test.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from cpu import below, cpu_s  # noqa: E402


def network(n: int) -> str:
    out = [f'name = "idle{n}"']
    for i in range(n):
        out += [f"[nodes.n{i}]", 'device = "generic"', "qubits = 2"]
    for i in range(0, n - 1, 2):
        out += ["[[links]]", f'nodes = ["n{i}", "n{i + 1}"]']
        out += ['model = "perfect"', "cycle_ns = 1000"]
    return "\n".join(out) + "\n"


def measure(n: int, seconds: float, settle: float) -> tuple[float, float, int]:
    """(CPU s per node per s of the nodes' processes, of the ``up`` process, how many
    node processes) for N idle nodes."""
    with tempfile.TemporaryDirectory() as tmp:
        net = Path(tmp) / "net.toml"
        net.write_text(network(n))
        env = dict(os.environ, QNODEOS_RUNTIME_DIR=f"{tmp}/rt")
        cmd = [sys.executable, "-m", "qnodeos", "up", str(net), "--run-dir", f"{tmp}/run"]
        up = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, text=True)
        try:
            assert up.stdout is not None
            for line in up.stdout:
                if "is up" in line:
                    break
            else:
                raise SystemExit(f"qnodeos up ended: {up.wait()}")
            time.sleep(settle)
            procs = below(up.pid)
            t0 = time.monotonic()
            before = {p: cpu_s(p) for p in [up.pid, *procs]}
            time.sleep(seconds)
            after = {p: cpu_s(p) for p in before}
            wall = time.monotonic() - t0
        finally:
            up.send_signal(signal.SIGTERM)
            up.wait(timeout=60)
    nodes = sum(after[p] - before[p] for p in procs)
    return nodes / n / wall, (after[up.pid] - before[up.pid]) / wall, len(procs)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--nodes", default="2,16", help="comma-separated N (even)")
    ap.add_argument("--seconds", type=float, default=10.0, help="measured interval")
    ap.add_argument("--settle", type=float, default=3.0, help="wait after up, before")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--json", action="store_true", help="one JSON object: the median run")
    args = ap.parse_args()
    if args.json:  # for bench/run.py: the largest N, CPU us per node per second
        n = max(int(x) for x in args.nodes.split(","))
        runs = sorted(measure(n, args.seconds, args.settle)[0] for _ in range(args.runs))
        print(json.dumps({"nodes": n, "idle_cpu_us_per_node_s": runs[len(runs) // 2] * 1e6}))
        return
    print(f"{'N':>4} {'run':>3} {'procs':>5} {'ms/s per node':>14} {'% core':>7} {'up ms/s':>8}")
    for n in (int(x) for x in args.nodes.split(",")):
        for run in range(1, args.runs + 1):
            node, launcher, procs = measure(n, args.seconds, args.settle)
            print(
                f"{n:>4} {run:>3} {procs:>5} {node * 1e3:>14.3f} {node * 100:>7.3f} "
                f"{launcher * 1e3:>8.3f}",
                flush=True,
            )


if __name__ == "__main__":
    main()
