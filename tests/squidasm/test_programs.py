"""SquidASM-style programs run unchanged through ``qnodeos squidasm`` (a folder with
``application.py`` and ``run_simulation.py``, as SquidASM's tutorial lays them out), on
a generic and on an NV stack config (noiseless devices, a depolarising link of
fidelity F = 0.9, so that closed forms hold), and match them:

- teleportation: the received state (``get_qubit_state``, exact) has fidelity
  (2F + 1)/3 with the state sent (1e-9);
- QKD: the error rate on matching bases is 2(1 - F)/3 (4 sigma, binomial);
- CHSH game: Alice and Bob win with probability (1 + w/sqrt 2)/2, w = (4F - 1)/3
  (4 sigma);
- distributed CNOT (``squidasm.util.routines``): control |1>, target |0> -> the
  target is |1> with probability (2F + 1)/3, the control stays |1> (exact states).

Also: ``run`` returns one list per stack in the config's order, with one result per
run, numpy arrays as they are.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tests.conftest import within
from tests.squidasm.tutorial_app import FILES

pytest.importorskip("netqasm")
pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[2]
F = 0.9
RUNS = {"generic.yaml": 200, "nv.yaml": 80}  # CHSH runs and QKD pairs (NV: the mapping)


def dm(entry: list[list[list[float]]]) -> np.ndarray:
    return np.array([[complex(*z) for z in row] for row in entry])


def run_folder(folder: Path, *args: str) -> dict[str, Any]:
    out = subprocess.run(
        [sys.executable, "-m", "qnodeos", "squidasm", str(folder), *args],
        cwd=ROOT, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


@pytest.mark.parametrize("config", ["generic.yaml", "nv.yaml"])
def test_tutorial_programs_match_closed_forms(config: str, tmp_path: Path) -> None:
    folder = tmp_path / "tutorial"
    folder.mkdir()
    for name, text in FILES.items():
        (folder / name).write_text(text)
    n = RUNS[config]
    got = run_folder(folder, config, str(n), str(n))

    sender, receiver = got["teleport"]
    assert len(sender) == len(receiver) == 3  # per stack (config order), per run
    for r in receiver:
        assert abs(r["fidelity"] - (2 * F + 1) / 3) < 1e-9, r["fidelity"]

    (alice,), (bob,) = got["qkd"]
    assert alice["same"] == bob["same"] and len(alice["outcomes"]) == n
    same = alice["same"]
    errors = sum(alice["outcomes"][i] != bob["outcomes"][i] for i in same)
    assert within(errors / len(same), 2 * (1 - F) / 3, len(same)), (errors, len(same))

    a_runs, b_runs = got["chsh"]
    wins = sum((a["a"] ^ b["b"]) == a["x"] * b["y"] for a, b in zip(a_runs, b_runs, strict=True))
    w = (4 * F - 1) / 3
    assert within(wins / n, (1 + w / math.sqrt(2)) / 2, n), wins / n
    assert {a["x"] for a in a_runs} == {b["y"] for b in b_runs} == {0, 1}

    controls, targets = got["cnot"]
    for c, t in zip(controls, targets, strict=True):
        assert abs(dm(c["final_dm"])[1, 1].real - 1) < 1e-9
        assert abs(dm(t["final_dm"])[1, 1].real - (2 * F + 1) / 3) < 1e-9
