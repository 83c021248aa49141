"""qnodeos sweep: a Werner link's fidelity over 4 points gives CHSH S on the closed form
2*sqrt(2)*(4F - 1)/3 at every point; a sweep stopped part-way resumes."""

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

from .helpers import ROOT, ctrl_c_works, werner_pair

pytestmark = pytest.mark.slow

NET = werner_pair("chshsweep", 0.9) + """
[[apps]]
node = "alice"
name = "a"
module = "qnodeos.apps.chsh"
args = { role = "alice", me = "a", peer_node = "bob", peer = "b", rounds = 1600, batch = 8, \
seed = 4 }
[[apps]]
node = "bob"
name = "b"
module = "qnodeos.apps.chsh"
args = { role = "bob", me = "b", peer_node = "alice", peer = "a", batch = 8, seed = 5 }
"""


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
