"""The QNodeOS multitasking experiment: DQC alone against DQC plus local apps on the
server node, and the same with a time-bin network schedule.

    python bench/multitask.py [--k K] [--seconds S]

Runs the embedded networks ``dqc`` (DQC alone) and ``multitask`` (the same DQC pair plus
two local gate-tomography apps on the server), each continuous and with time bins on
the link (bins of 10 ms, the link owning 1 of every 2), all at speed 1 (real time).
Prints, per run, the server device's utilization (busy / elapsed device time, from
the run's timeline) over the DQC's run (device time 0 to the end of the DQC server's
last block: the local apps may run on after it) and over the whole run, the mean DQC
fidelity over the six settings with its error, and the local apps' fidelities.
"""

from __future__ import annotations

import argparse
import json
import math
import subprocess
import sys
import tempfile
from importlib.resources import files
from pathlib import Path
from typing import Any

from qnodeos.testbed.trace import node_spans, utilization

BINS = "schedule = { bin_ns = 10000000, period = 2, bins = [0] }\n"


def run(name: str, k: int, seconds: float, bins: bool, d: Path) -> dict[str, Any]:
    text = files("qnodeos").joinpath(f"data/{name}.toml").read_text()
    text = text.replace("k = 20", f"k = {k}").replace("seconds = 6.0", f"seconds = {seconds}")
    if bins:
        text = text.replace("seed = 43\n", "seed = 43\n" + BINS)
    net = d / f"{name}{'-bins' if bins else ''}.toml"
    net.write_text(text)
    run_dir = d / net.stem
    cmd = [sys.executable, "-m", "qnodeos", "run", str(net), "--json", "--run-dir", str(run_dir)]
    out = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if out.returncode != 0:
        raise SystemExit(f"{net.stem} failed:\n{out.stderr[-2000:]}")
    result: dict[str, Any] = json.loads(out.stdout)
    spans, _ = node_spans(run_dir, "server")
    dqc_end = max(s["end"] for s in spans if s["what"] == "block" and s["app"] == "server")
    result["_dqc_window"] = utilization(spans, dqc_end)
    return result


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--k", type=int, default=60, help="DQC repetitions per basis and setting")
    p.add_argument("--seconds", type=float, default=20.0, help="how long the local apps run")
    a = p.parse_args()
    print(
        f"{'run':16} {'busy (DQC run)':>14} {'DQC s':>6} {'busy (all)':>10} {'all s':>6} "
        f"{'DQC fidelity':>16} local apps"
    )
    with tempfile.TemporaryDirectory(prefix="qnm-") as tmp:
        for name in ("dqc", "multitask"):
            for bins in (False, True):
                r = run(name, a.k, a.seconds, bins, Path(tmp))
                u = r["_nodes"]["server"]["utilization"]
                w = r["_dqc_window"]
                rows = r["client"]["result"]["settings"]
                fid = sum(s["fidelity"] for s in rows) / len(rows)
                err = math.sqrt(sum(s["stderr"] ** 2 for s in rows)) / len(rows)
                local = ", ".join(
                    f"{v['result']['gate']} {v['result']['fidelity']:.3f}"
                    for v in r.values()
                    if isinstance(v, dict) and "gate" in v.get("result", {})
                )
                label = name + (" +bins" if bins else "")
                print(
                    f"{label:16} {100 * w['busy_fraction']:13.1f}% {w['elapsed_ns'] / 1e9:6.1f} "
                    f"{100 * u['busy_fraction']:9.1f}% {u['elapsed_ns'] / 1e9:6.1f} "
                    f"{fid:9.3f} ± {err:.3f} {local}"
                )


if __name__ == "__main__":
    main()
