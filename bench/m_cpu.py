"""CPU per measure-directly ("M") pair in each process of two real nodes.

    python bench/m_cpu.py [--pairs N] [--repeat R]

The network and apps of ``bench/pairs.py`` (two nodes, generic devices at unlimited
speed, a perfect link, one request for all N pairs with bases X/Z), M only. Reads each
node process's and its children's CPU time (utime + stime in /proc/PID/stat) before and
after the pairs, and this process's own (the two SDK apps); prints microseconds of CPU
per pair per process and in all, the median of R runs of the total (with the rows of
that run). Linux only.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import trio

sys.path.insert(0, str(Path(__file__).parent))
from cpu import below, cpu_s, own_cpu, title  # noqa: E402
from pairs import NET, run  # noqa: E402
from roundtrip import start  # noqa: E402


def cpu(pid: int) -> tuple[str, float]:
    """(process title, CPU seconds so far)."""
    return title(pid), cpu_s(pid)


def once(n: int) -> dict[str, float]:
    with tempfile.TemporaryDirectory(prefix="qnm-") as d:
        net = Path(d) / "net.toml"
        net.write_text(NET.format(d=d, q=16))
        nodes = [
            start([sys.executable, "-m", "qnodeos", "node", x, "--network", str(net)])
            for x in ("alice", "bob")
        ]
        try:
            trio.run(run, d, "M", 100, 100)  # warm up: every process is up and connected
            pids = [p for node in nodes for p in (node.pid, *below(node.pid))]
            before = {p: cpu(p) for p in pids}
            apps = own_cpu()
            t0 = time.perf_counter()
            trio.run(run, d, "M", n, n)
            wall = time.perf_counter() - t0
            after = {p: cpu(p) for p in pids}
            apps = own_cpu() - apps
        finally:
            for proc in nodes:
                proc.terminate()
            for proc in nodes:
                proc.wait()
    out = {f"{after[p][0]} [{p}]": (after[p][1] - before[p][1]) / n * 1e6 for p in pids}
    out["apps (this process)"] = apps / n * 1e6
    out["total"] = sum(out.values())
    out["wall_pairs_per_s"] = n / wall
    return out


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--pairs", type=int, default=20000)
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--json", action="store_true")
    a = p.parse_args()
    runs = sorted((once(a.pairs) for _ in range(a.repeat)), key=lambda r: r["total"])
    mid = runs[len(runs) // 2]
    if a.json:
        print(json.dumps({"totals_us": [r["total"] for r in runs], **mid}))
        return
    print(f"CPU us per M pair, {a.pairs} pairs in one request; totals of {a.repeat} runs:")
    print("  " + ", ".join(f"{r['total']:.1f}" for r in runs) + "  (median run below)")
    for k, v in mid.items():
        print(f"{v:12.1f}  {k}")


if __name__ == "__main__":
    main()
