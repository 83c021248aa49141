"""End-to-end measure-directly pairs per second over repeater chains, and CPU per pair.

    python bench/e2e.py [--hops 2 4 8] [--pairs N] [--batch B] [--qubits Q] [--ends-own]
                        [--json]

For each number of hops: a chain of generic nodes (Q qubits each: a repeater holds up
to (Q // 2, at most 8) link pairs per side, so links make that many per round; Q = 2:
one) at unlimited clock speed joined by
perfect links (every attempt heralds), started with ``qnodeos run`` (two real processes
per node), and the linkstats app (unchanged) at the two ends asking for N measured
pairs in requests of B (each request is one circuit). Reports the pairs per second the
creating app saw (wall clock, from its first request to its last pair), the fidelity it
measured (1 for perfect links), and the CPU time of every process of the run (all
nodes, the apps, the launcher) per end-to-end pair. The machine's load matters: run it
on a quiet machine.

A link's first node hosts its heralding station and keeps the state of a kept pair
(its *owner*). By default each link is written left to right, so the last hop's owner
is the repeater, which keeps its half while the end measures: the state goes to the
end and the repeater's half comes back, one state-group message per pair more.
``--ends-own`` writes the last link from the end (both end hops are then owned by the
end that measures): the same pairs with fewer messages (docs/network-layer.md, Speed).
``--json`` prints one JSON object instead of the table, for bench/run.py: per number of
hops H, ``hH_pairs_per_s`` and ``hH_cpu_us_per_pair``.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def chain(hops: int, pairs: int, batch: int, qubits: int, ends_own: bool = False) -> str:
    body = 'name = "e2ebench"\n'
    for i in range(hops + 1):
        body += (
            f'[nodes.n{i}]\ndevice = "generic"\nqubits = {qubits}\nspeed = inf\nseed = {i + 1}\n'
        )
    for i in range(hops):
        a, b = (f"n{i + 1}", f"n{i}") if ends_own and i == hops - 1 else (f"n{i}", f"n{i + 1}")
        body += f'[[links]]\nnodes = ["{a}", "{b}"]\nmodel = "perfect"\ncycle_ns = 1000\n'
    ends = (("create", "a", "n0", "b", f"n{hops}"), ("recv", "b", f"n{hops}", "a", "n0"))
    for role, me, at, peer, peer_at in ends:
        body += (
            f'[[apps]]\nnode = "{at}"\nname = "{me}"\nmodule = "qnodeos.apps.linkstats"\n'
            f'args = {{ role = "{role}", me = "{me}", peer_node = "{peer_at}", peer = "{peer}", '
            f"pairs = {pairs}, batch = {batch}, timeout = 600.0 }}\n"
        )
    return body


def measure(
    hops: int, pairs: int, batch: int, qubits: int, ends_own: bool = False
) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as d:
        net = Path(d) / "net.toml"
        net.write_text(chain(hops, pairs, batch, qubits, ends_own))
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        t0 = time.perf_counter()
        done = subprocess.run(
            [sys.executable, "-m", "qnodeos", "run", str(net), "--run-dir", f"{d}/run"],
            cwd=ROOT, env={**os.environ, "TMPDIR": d}, capture_output=True, text=True,
        )  # fmt: skip
        wall = time.perf_counter() - t0
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        if done.returncode != 0:
            raise SystemExit(f"{hops} hops: the run failed:\n{done.stderr[-3000:]}")
        r = json.loads((Path(d) / "run" / "app-a.json").read_text())["result"]
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return {
        "hops": hops,
        "pairs": pairs,
        "pairs_per_s": r["wall_rate_hz"],
        "fidelity": r["fidelity"],
        "cpu_ms_per_pair": 1e3 * cpu / pairs,
        "run_s": wall,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--hops", type=int, nargs="+", default=[2, 4, 8])
    ap.add_argument("--pairs", type=int, default=3000)
    ap.add_argument("--batch", type=int, default=1000)
    ap.add_argument("--qubits", type=int, default=16)
    ap.add_argument(
        "--ends-own", action="store_true", help="the last link written from the end (its owner)"
    )
    ap.add_argument("--json", action="store_true", help="one JSON object (for bench/run.py)")
    args = ap.parse_args()
    if args.json:
        figures: dict[str, float] = {}
        for hops in args.hops:
            r = measure(hops, args.pairs, args.batch, args.qubits, args.ends_own)
            figures[f"h{hops}_pairs_per_s"] = r["pairs_per_s"]
            figures[f"h{hops}_cpu_us_per_pair"] = 1e3 * r["cpu_ms_per_pair"]
        print(json.dumps(figures))
        return
    print(f"{'hops':>4} {'pairs/s':>9} {'F':>6} {'CPU ms/pair':>12} {'run s':>6}")
    for hops in args.hops:
        r = measure(hops, args.pairs, args.batch, args.qubits, args.ends_own)
        print(
            f"{r['hops']:>4} {r['pairs_per_s']:>9.0f} {r['fidelity']:>6.3f} "
            f"{r['cpu_ms_per_pair']:>12.2f} {r['run_s']:>6.1f}",
            flush=True,
        )


if __name__ == "__main__":
    main()
