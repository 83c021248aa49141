"""qnodeos sweep: a Werner link's fidelity over 4 points gives CHSH S on the closed form
2*sqrt(2)*(4F - 1)/3 at every point; a sweep stopped part-way resumes; failed points are
shown, kept and retried; ``--lean`` keeps a point small."""

from __future__ import annotations

import json
import math
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

import qnodeos
from qnodeos.config.defaults import shipped_network_text

from .helpers import ROOT, ctrl_c_works

pytestmark = pytest.mark.slow

# the shipped CHSH network (`qnodeos sweep chsh ...`, README's example)
NET = shipped_network_text("chsh") or ""


def sweep(tmp_path: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    net = tmp_path / "chsh.toml"
    net.write_text(NET)
    args = [
        "sweep",
        str(net),
        "--set",
        "links.0.fidelity=0.7:0.97:4",
        "--out",
        str(tmp_path / "sw"),
    ]
    return subprocess.run(
        [sys.executable, "-m", "qnodeos", *args, *extra],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_a_fidelity_sweep_follows_the_chsh_closed_form_and_resumes(tmp_path: Path) -> None:
    out = sweep(tmp_path, "--deterministic", "--jobs", "2")
    assert out.returncode == 0, out.stderr
    rows = [
        json.loads(x)["row"] for x in (tmp_path / "sw" / "sweep.jsonl").read_text().splitlines()
    ]
    assert sorted(r["links.0.fidelity"] for r in rows) == [0.7, 0.79, 0.88, 0.97]
    for r in rows:
        f = r["links.0.fidelity"]
        expect = 2 * math.sqrt(2) * (4 * f - 1) / 3
        assert abs(r["a.S"] - expect) < 4 * r["a.S_stderr"], (f, r["a.S"], expect)
        assert abs(r["a.S_theory"] - expect) < 1e-9  # the app's own link-only prediction
    assert "links.0.fidelity" in out.stdout and "a.S" in out.stdout  # the table
    csv = (tmp_path / "sw" / "sweep.csv").read_text().splitlines()
    assert len(csv) == 5 and "a.S" in csv[0]
    # a log whose last line was torn (a sweep stopped while writing): a second start
    # runs only the runs it lacks
    log = tmp_path / "sw" / "sweep.jsonl"
    lines = log.read_text().splitlines()
    log.write_text("\n".join(lines[:3]) + "\n" + lines[3][:20])
    again = sweep(tmp_path, "--deterministic", "--jobs", "2")
    assert again.returncode == 0, again.stderr
    assert "3 already in" in again.stderr and "1 to go" in again.stderr
    assert again.stdout == out.stdout  # the same table


def test_a_sweep_stopped_with_ctrl_c_resumes(tmp_path: Path) -> None:
    net = tmp_path / "chsh.toml"
    net.write_text(NET)
    args = [sys.executable, "-m", "qnodeos", "sweep", str(net), "--out", str(tmp_path / "sw")]
    args += ["--set", "links.0.fidelity=0.7:0.97:4", "--deterministic"]
    proc = subprocess.Popen(
        args, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, preexec_fn=ctrl_c_works
    )
    log = tmp_path / "sw" / "sweep.jsonl"
    deadline = time.monotonic() + 60
    while not (log.exists() and log.read_text().count("\n") >= 1):
        assert time.monotonic() < deadline and proc.poll() is None
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    assert proc.wait(timeout=30) != 0
    done = log.read_text().count("\n")
    assert 1 <= done < 4
    again = sweep(tmp_path, "--deterministic")
    assert again.returncode == 0, again.stderr
    assert f"{done} already in" in again.stderr and f"{4 - done} to go" in again.stderr
    assert log.read_text().count("\n") == 4


def test_a_sweep_from_python_in_real_processes(tmp_path: Path) -> None:
    net = qnodeos.Network.from_dict(__import__("tomllib").loads(NET))
    rows = net.sweep("links.0.fidelity=0.8,0.95", "apps.a.args.rounds=400", jobs=2, out=tmp_path)
    assert [r["links.0.fidelity"] for r in rows] == [0.8, 0.95]
    assert all(r["a.rounds"] == 400 and "a.S" in r for r in rows)
    assert (tmp_path / "run-00000" / "results.json").exists()
    full = sum(f.stat().st_size for f in (tmp_path / "run-00000").iterdir())
    assert (tmp_path / "run-00000" / "timeline.json").exists() and full > 200_000


def test_lean_keeps_results_and_logs_only(tmp_path: Path) -> None:
    """--lean: each point's directory keeps results.json, the apps' results and the
    logs, not the timeline or the pair and block records (1.4 MB a point -> ~8 kB)."""
    out = sweep(tmp_path, "--lean", "--set", "apps.a.args.rounds=400")
    assert out.returncode == 0, out.stderr
    for i in range(4):
        run = tmp_path / "sw" / f"run-{i:05d}"
        names = {f.name for f in run.iterdir()}
        assert {"results.json", "network.toml", "app-a.json", "node-alice.log"} <= names
        assert not names & {"timeline.json", "pairs.csv", "blocks.csv"}, names
        size = sum(f.stat().st_size for f in run.iterdir())
        assert size < 20_000, (i, size)
        assert "_nodes" in json.loads((run / "results.json").read_text())  # utilization kept


def test_failed_points_are_shown_kept_retried_and_rerun_once_the_file_is_fixed(
    tmp_path: Path,
) -> None:
    net = tmp_path / "chsh.toml"
    # bob asks for 9 qubits on an 8-qubit node: every run fails, after the checks
    net.write_text(NET.replace("batch = 8, seed = 5", "batch = 9, seed = 5"))
    args = [sys.executable, "-m", "qnodeos", "sweep", str(net), "--out", str(tmp_path / "sw")]
    args += ["--set", "links.0.fidelity=0.8,0.9", "--deterministic"]

    def run(*extra: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([*args, *extra], capture_output=True, text=True, timeout=120)

    first = run()
    assert first.returncode == 1
    head, *lines = first.stdout.split("\n\n")[0].splitlines()
    assert head.split() == ["links.0.fidelity", "failures", "error"]
    assert len(lines) == 2 and all("asked for 9 qubit(s)" in ln for ln in lines)
    assert [ln.split()[:2] for ln in lines] == [["0.8", "1"], ["0.9", "1"]]
    assert "2 failed; " in first.stdout and "--retry" in first.stdout
    again = run()  # failed points are kept as failed, not run again
    assert again.returncode == 1 and "2 failed before, not rerun" in again.stderr
    assert "0 to go" in again.stderr and again.stdout == first.stdout
    retried = run("--retry")
    assert retried.returncode == 1 and "2 to go" in retried.stderr
    assert [ln.split()[:2] for ln in retried.stdout.splitlines()[1:3]] == [
        ["0.8", "2"],
        ["0.9", "2"],
    ]
    net.write_text(NET.replace("rounds = 1600", "rounds = 200"))  # fixed: another network,
    fixed = run()  # so every point runs again
    assert fixed.returncode == 0, fixed.stderr
    assert "4 of another network or settings, 2 to go" in fixed.stderr
    assert "error" not in fixed.stdout and "a.S" in fixed.stdout
