"""Run the netqasm package's multi-party example apps again and again, optionally beside
busy-loop processes, and count how many runs pass: a busy machine must make a
real-time run slower, never make it fail.

    python bench/repeat.py [--runs 50] [--load 4] [--apps chsh,three_nodes,magic_square]

Each run is ``qnodeos netqasm FOLDER --json`` on the example folder shipped in the
netqasm package (``pip install 'qnodeos[netqasm]'``); a run passes when it exits 0 and
no party reports an error. ``--load N`` starts N ``while True: pass`` processes for the
whole bench (stopped at its end). It prints, per app, passes / runs, the wall time per
run (median and max) and the distinct errors seen; it is not a test.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import netqasm

EXAMPLES = Path(netqasm.__file__).parent / "examples" / "apps"


def once(app: str, tmp: Path, i: int) -> tuple[bool, float, str]:
    """(passed, wall seconds, the error if it failed)."""
    cmd = [sys.executable, "-m", "qnodeos", "netqasm", str(EXAMPLES / app), "--json",
           "--quiet", "--run-dir", str(tmp / f"{app}-{i}")]  # fmt: skip
    start = time.perf_counter()
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=900)
    took = time.perf_counter() - start
    try:
        data = json.loads(out.stdout)
    except ValueError:
        return False, took, (out.stderr.strip().splitlines() or ["no output"])[-1][:300]
    errors = [str(v["error"]) for k, v in data.items() if not k.startswith("_") and "error" in v]
    if "_error" in data:
        errors.append(str(data["_error"]))
    if out.returncode != 0 or errors:
        return False, took, "; ".join(errors)[:300] or f"exit {out.returncode}"
    return True, took, ""


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--runs", type=int, default=50)
    p.add_argument("--load", type=int, default=0, help="busy-loop processes beside the runs")
    p.add_argument("--apps", default="chsh,three_nodes,magic_square")
    a = p.parse_args()
    spinners = [
        subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(a.load)
    ]
    try:
        print(f"{os.cpu_count()} cores; {a.load} busy loops; {a.runs} runs per app")
        with tempfile.TemporaryDirectory(prefix="qnrepeat-") as tmp:
            for app in a.apps.split(","):
                times: list[float] = []
                errors: Counter[str] = Counter()
                for i in range(a.runs):
                    ok, took, error = once(app, Path(tmp), i)
                    times.append(took)
                    if not ok:
                        errors[error] += 1
                passed = a.runs - sum(errors.values())
                print(
                    f"{app}: {passed}/{a.runs} passed; {statistics.median(times):.1f} s per run "
                    f"(max {max(times):.1f} s); load average {os.getloadavg()[0]:.1f}",
                    flush=True,
                )
                for error, n in errors.most_common():
                    print(f"  {n} x {error}", flush=True)
    finally:
        for s in spinners:
            s.kill()
            s.wait()


if __name__ == "__main__":
    main()
