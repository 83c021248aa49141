"""Pause one process of a running 2-node network (SIGSTOP, then SIGCONT) and see whether
its link recovers: prints, per run, whether both apps got all their pairs and how long
the run took next to the same run without a pause.

    python bench/pause.py [--process qdevice|node] [--node n0|n1] [--seconds 2.5]
                          [--pairs 20000] [--runs 3]

The network is ``bench/scale.py``'s 2-node chain (generic devices, a perfect link,
speed inf): each app asks for ``--pairs`` measure-directly pairs, 10 per request, each
request with 120 s to finish, so a link that stops making pairs shows as a run that
does not end within 60 s. ``n0``'s quantum process hosts the heralding station. A
paused classical process (``--process node``) is declared down by the other node after
1.5 s: its requests end with an error by design. It prints numbers; it is not a test.
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

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from scale import chain  # noqa: E402


def run(net: Path, run_dir: Path, target: str | None, seconds: float) -> tuple[str, float]:
    """One ``qnodeos run``; pause ``target`` (a command-line pattern) 1 s in. How it
    ended, and its wall time."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(HERE), str(HERE.parent)])}
    cmd = [sys.executable, "-m", "qnodeos", "run", str(net), "--run-dir", str(run_dir)]
    t0 = time.monotonic()
    proc = subprocess.Popen(
        [*cmd, "--timeout", "60", "--quiet"],
        cwd=HERE.parent,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    if target is not None:
        time.sleep(1.0)
        found = subprocess.run(["pgrep", "-f", target], capture_output=True, text=True)
        pids = [int(p) for p in found.stdout.split()]
        if len(pids) != 1:
            proc.kill()
            raise SystemExit(f"expected one process matching {target!r}, found {pids}")
        os.kill(pids[0], signal.SIGSTOP)
        time.sleep(seconds)
        os.kill(pids[0], signal.SIGCONT)
    proc.wait()
    took = time.monotonic() - t0
    results = json.loads((run_dir / "results.json").read_text())
    apps = {k: v for k, v in results.items() if not k.startswith("_")}
    if proc.returncode == 0:
        done = [v["result"]["done"] for v in apps.values()]
        return f"all pairs ({done[0]} each)", took
    why = results.get("_error") or "; ".join(str(v.get("error")) for v in apps.values())
    return f"FAILED: {why}", took


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--process", choices=["qdevice", "node"], default="qdevice")
    p.add_argument("--node", choices=["n0", "n1"], default="n1")
    p.add_argument("--seconds", type=float, default=2.5)
    p.add_argument("--pairs", type=int, default=20000)
    p.add_argument("--runs", type=int, default=3)
    a = p.parse_args()
    with tempfile.TemporaryDirectory(prefix="qnpause-") as tmp:
        net = Path(tmp) / "pause.toml"
        net.write_text(chain(2, a.pairs))
        what = f"the {a.process} process of {a.node}"
        print(f"{a.pairs} pairs per app; pausing {what} for {a.seconds:g} s, 1 s in")
        for i in range(a.runs):
            outcome, took = run(net, Path(tmp) / f"free{i}", None, 0.0)
            print(f"run {i + 1}, no pause:   {outcome} in {took:.1f} s", flush=True)
            target = f"qnodeos {a.process} {a.node} .*{net}"
            outcome, took = run(net, Path(tmp) / f"paused{i}", target, a.seconds)
            print(f"run {i + 1}, with pause: {outcome} in {took:.1f} s", flush=True)


if __name__ == "__main__":
    main()
