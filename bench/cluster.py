"""Start-up of a chain on one launcher vs spread over local Dask workers (same machine:
the difference is the cluster path's overhead, not a speed-up).

    python bench/cluster.py [--nodes 64] [--workers 4]

For the chain of ``bench/scale.py`` (generic nodes, perfect links, speed inf, one
measure-directly pair per link) it prints, for ``qnodeos run`` and for ``qnodeos run
--cluster`` on a LocalCluster of ``--workers`` worker processes: the time from the
command's start to every node READY, to the first pair on every link (the latest of
the links' first pairs), and to exit, and the CPU time of the command and its
children (the workers' own children are not counted: their CPU is reported by them).
It prints numbers; it is not a test.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from scale import HERE, chain
from scale import run as run_local


def run_cluster(text: str, d: Path, address: str) -> dict[str, float]:
    net = d / "cluster.toml"
    net.write_text(text)
    t0 = time.time()
    argv = [sys.executable, "-m", "qnodeos", "run", str(net), "--cluster", address]
    argv += ["--run-dir", str(d / "cluster"), "--json"]
    proc = subprocess.run(argv, capture_output=True, text=True, cwd=HERE.parent)
    end = time.time() - t0
    results = json.loads((d / "cluster" / "results.json").read_text())
    if proc.returncode != 0:
        raise SystemExit(f"cluster run failed: {results.get('_error')} {proc.stderr[-1500:]}")
    res = [r["result"] for k, r in results.items() if not k.startswith("_")]
    return {
        "up": results["_meta"]["cluster"]["timings_s"]["ready_at"] - t0,
        "first": max((r["first"] for r in res), default=math.nan) - t0,
        "exit": end,
    }


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--nodes", type=int, default=64)
    p.add_argument("--workers", type=int, default=4)
    a = p.parse_args()
    from distributed import LocalCluster

    os.environ["PYTHONPATH"] = os.pathsep.join([str(HERE), str(HERE.parent)])  # scale_app
    print(f"{os.cpu_count()} cores; load average {os.getloadavg()[0]:.1f} at start")
    print(f"chain of {a.nodes} nodes, 1 pair per link")
    print(f"{'how':<22} {'READY s':>8} {'1st pair s':>10} {'exit s':>7}")
    with tempfile.TemporaryDirectory(prefix="qnclb-") as tmp:
        d = Path(tmp)
        text = chain(a.nodes, 1)
        r = run_local(text, d, "local")
        print(f"{'one launcher':<22} {r['up']:>8.2f} {r['first']:>10.2f} {r['exit']:>7.2f}")
        cores = math.ceil(a.nodes / a.workers)
        with LocalCluster(
            n_workers=a.workers,
            threads_per_worker=2,
            processes=True,
            resources={"cores": cores},
            dashboard_address=None,
        ) as lc:
            r = run_cluster(text, d, lc.scheduler_address)
        how = f"{a.workers} local workers"
        print(f"{how:<22} {r['up']:>8.2f} {r['first']:>10.2f} {r['exit']:>7.2f}", flush=True)


if __name__ == "__main__":
    main()
