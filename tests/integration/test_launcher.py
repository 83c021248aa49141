"""How ``qnodeos run`` starts and stops its processes (forked, all nodes at once)."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from .helpers import ROOT

pytestmark = pytest.mark.slow

THREE = """
name = "three"
[nodes.a]
[nodes.b]
qdevice_endpoint = "tcp://no-such-host.invalid:1"
[nodes.c]
[[apps]]
node = "a"
module = "qnodeos.apps.ramsey"
"""


def left_behind(tmp_path: Path) -> str:
    """Command lines of processes still running that mention ``tmp_path``."""
    out = subprocess.run(["pgrep", "-af", str(tmp_path)], capture_output=True, text=True)
    return out.stdout.strip()


def test_a_node_failing_among_others_starting_is_named_with_its_log(tmp_path: Path) -> None:
    net = tmp_path / "net.toml"
    net.write_text(THREE)
    run = tmp_path / "run"
    out = subprocess.run(
        [sys.executable, "-m", "qnodeos", "run", str(net), "--run-dir", str(run)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 1
    assert "node b exited with 1 before it was ready (error: nodes.b.qdevice_endpoint: " in (
        out.stderr
    )
    assert "its quantum process exited (code 2)); see " + str(run / "node-b.log") in out.stderr
    assert "node a" not in out.stderr and "node c" not in out.stderr
    assert "no-such-host" in (run / "node-b.log").read_text()
    assert left_behind(tmp_path) == ""  # a and c, up or not, were stopped; the app too


def test_every_child_dies_when_the_launcher_is_killed(tmp_path: Path) -> None:
    net = tmp_path / "net.toml"
    net.write_text("""
[nodes.alice]
[nodes.bob]
[[apps]]
node = "alice"
module = "qnodeos.apps.pingpong"
args = { role = "ping", me = "ping", peer_node = "bob", peer = "pong", rounds = 1000000 }
[[apps]]
node = "bob"
module = "qnodeos.apps.pingpong"
args = { role = "pong", me = "pong", peer_node = "alice", peer = "ping" }
""")
    launcher = subprocess.Popen(
        [sys.executable, "-m", "qnodeos", "run", str(net), "--run-dir", str(tmp_path / "run")],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    assert launcher.stdout is not None
    assert "running 2 app(s)" in launcher.stdout.readline()
    running = left_behind(tmp_path)
    for what in ("qnodeos node alice", "qnodeos qdevice bob", "app_runner qnodeos.apps.pingpong"):
        assert what in running  # each shows the command line it would have had
    launcher.send_signal(signal.SIGKILL)
    launcher.wait()
    deadline = time.monotonic() + 10
    while left_behind(tmp_path) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert left_behind(tmp_path) == ""
