"""qnodeos up / down: a network kept up for an app started from another process, then
stopped: no process, socket or lock file left."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from .helpers import ROOT
from .test_faults import processes

pytestmark = pytest.mark.slow

APP = """
import trio
from qnodeos import sdk

async def main():
    async with sdk.connect("server", app="elsewhere", qubits=1) as n:
        async with n.block() as b:
            q = b.qubit()
            q.x()
            m = q.measure()
    print("measured", m.value)

trio.run(main)
"""


def test_up_serves_apps_from_elsewhere_and_down_leaves_nothing(tmp_path: Path) -> None:
    rt = tmp_path / "rt"
    rt.mkdir(mode=0o700)
    env = {**os.environ, "QNODEOS_RUNTIME_DIR": str(rt)}
    qn = [sys.executable, "-m", "qnodeos"]
    up = subprocess.Popen(
        [*qn, "up", "dqc", "--run-dir", str(tmp_path / "run")],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    try:
        assert up.stdout is not None
        first = up.stdout.readline()
        assert "network 'dqc' is up (2 node(s))" in first, first
        state = json.loads((rt / "up-dqc.json").read_text())
        assert state["pid"] == up.pid and set(state["endpoints"]) == {"client", "server"}
        app = subprocess.run(
            [sys.executable, "-c", APP],
            cwd=ROOT, env={**env, "QNODEOS_NETWORK": state["network"]},
            capture_output=True, text=True, timeout=30,
        )  # fmt: skip
        assert app.returncode == 0 and "measured 1" in app.stdout, app.stderr
        down = subprocess.run([*qn, "down", "dqc"], env=env, capture_output=True, text=True)
        assert down.returncode == 0, down.stderr
        assert up.wait(timeout=15) == 0
    finally:
        up.kill()
    assert list(rt.iterdir()) == []  # sockets, locks, state file: all gone
    net = state["network"]
    assert not [c for _, c in processes().values() if net in c]  # no node process left
    again = subprocess.run([*qn, "down", "dqc"], env=env, capture_output=True, text=True)
    assert again.returncode == 2 and "no network 'dqc' is up" in again.stderr
