"""The netqasm package's own example apps on qnodeos, unchanged: each result next to its
closed form, and the wall time of ``qnodeos netqasm`` (start to exit: nodes up, apps
run, everything stopped).

    python bench/netqasm_examples.py [--fidelity 0.9] [--repeat 3]

Needs ``pip install 'qnodeos[netqasm]'``. Werner links of fidelity F (w = (4F-1)/3):
teleport fidelity (2F+1)/3 (read from the received state with --states), BB84 QBER
2(1-F)/3 (1000 bits), CHSH S = 2 sqrt2 w^2 (two links, 200 runs per setting),
distributed CNOT target right with probability (2F+1)/3. Then every other example
folder shipped in the package, timed.
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import netqasm

EXAMPLES = Path(netqasm.__file__).parent / "examples"


def run(app: str, *args: str) -> tuple[dict[str, Any], float]:
    with tempfile.TemporaryDirectory() as tmp:
        cmd = [sys.executable, "-m", "qnodeos", "netqasm", str(EXAMPLES / app), "--json",
               "--quiet", "--run-dir", str(Path(tmp) / "run"), *args]  # fmt: skip
        start = time.perf_counter()
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
        took = time.perf_counter() - start
    try:
        data = json.loads(out.stdout)
    except ValueError:
        return {"error": (out.stdout + out.stderr).strip().splitlines()[-1:]}, took
    apps = {k: v for k, v in data.items() if not k.startswith("_")}
    errors = {k: v["error"] for k, v in apps.items() if "error" in v}
    if errors or out.returncode != 0:
        return {"error": errors or out.stderr.strip()[-300:]}, took
    return {k: v.get("result") for k, v in apps.items()}, took


def fidelity_of(entry: list[list[list[float]]], psi: list[complex]) -> float:
    rho = [[complex(*z) for z in row] for row in entry]
    return sum((psi[i].conjugate() * rho[i][j] * psi[j]).real for i in range(2) for j in range(2))


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--fidelity", type=float, default=0.9)
    p.add_argument("--repeat", type=int, default=3, help="timed runs per app")
    a = p.parse_args()
    f = a.fidelity
    w = (4 * f - 1) / 3
    link = ["--fidelity", str(f)]
    print(f"Werner links, F = {f} (w = {w:.4f})\n")
    print(f"{'app':<12} {'measured':<34} closed form")

    phi, theta = 0.7, 1.1
    got, _ = run("apps/teleport", "--states", "--input", f"sender.phi={phi}",
                 "--input", f"sender.theta={theta}", *link)  # fmt: skip
    psi = [
        complex(math.cos(theta / 2)),
        complex(math.cos(phi), math.sin(phi)) * math.sin(theta / 2),
    ]
    (rho,) = got["receiver"]["qubit_states"].values()
    text = f"fidelity {fidelity_of(rho, psi):.4f}"
    print(f"{'teleport':<12} {text:<34} {(2 * f + 1) / 3:.4f}")

    got, _ = run("apps/bb84", "--input", "alice.num_bits=1000", "--input", "bob.num_bits=1000",
                 *link)  # fmt: skip
    q, n = got["alice"]["qber"], got["alice"]["outcome_comparison_count"]
    sd = math.sqrt(max(q * (1 - q), 1e-9) / n)
    text = f"QBER {q:.4f} ± {sd:.4f} ({n} bits)"
    print(f"{'bb84':<12} {text:<34} {2 * (1 - f) / 3:.4f}")

    runs, s, var = 200, 0.0, 0.0
    for x in (0, 1):
        for y in (0, 1):
            got, _ = run("apps/chsh", "--num", str(runs), "--input", f"alice.x={x}",
                         "--input", f"bob.y={y}", *link)  # fmt: skip
            ab = zip(got["alice"]["runs"], got["bob"]["runs"], strict=True)
            win = sum((r["a"] ^ t["b"]) == (x & y) for r, t in ab) / runs
            s += 2 * win - 1
            var += 4 * win * (1 - win) / runs
    text = f"S {s:.3f} ± {math.sqrt(var):.3f} ({4 * runs} runs)"
    print(f"{'chsh':<12} {text:<34} {2 * math.sqrt(2) * w * w:.3f}")

    right = []
    for c in (0, 1):
        for t in (0, 1):
            got, _ = run("apps/dist_cnot", "--states", "--input", f"controller.theta={math.pi * c}",
                         "--input", f"target.theta={math.pi * t}", *link)  # fmt: skip
            (rho,) = got["target"]["qubit_states"].values()
            want = [complex(1 - (t ^ c)), complex(t ^ c)]
            right.append(fidelity_of(rho, want))
    text = "target right " + " ".join(f"{r:.4f}" for r in right)
    print(f"{'dist_cnot':<12} {text:<34} {(2 * f + 1) / 3:.4f}")

    print(f"\nwall time of `qnodeos netqasm DIR` (perfect links), {a.repeat} runs, median:")
    for group in ("apps", "qne_apps"):
        for folder in sorted((EXAMPLES / group).iterdir()):
            if not folder.is_dir() or not list(folder.glob("app_*.py")):
                continue
            times, res = [], {}
            for _ in range(a.repeat):
                res, took = run(f"{group}/{folder.name}")
                times.append(took)
            state = "ok" if "error" not in res else f"fails: {res['error']}"
            name = f"{group}/{folder.name}"
            print(f"  {name:<32} {statistics.median(times):5.2f} s  {state}")


if __name__ == "__main__":
    main()
