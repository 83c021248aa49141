"""A node that works hard stays responsive: one app's long blocks (each stopped by the
instruction budget after 0.5-2 s of CPU) do not end other apps' sessions, and loops
far bigger than one device request run or end with the budget's own error.

Before (issue 20): back-to-back ``l: jmp @l`` blocks ended every other app's session
on the node ("lease of 1.0s expired"), an idle one's included, in 5 of 8 runs: the
task that read app messages ran the whole block, so heartbeats waited unread. A loop
of 70,000 gates failed as an "invalid message" (one device request carried every op)
and from ~300,000 iterations the session ended for a lease instead of the budget.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from .helpers import Proc

pytestmark = pytest.mark.slow


@pytest.fixture
def node(tmp_path: Path) -> Iterator[str]:
    ep = f"ipc://{tmp_path}/app.sock"
    net = tmp_path / "net.toml"
    net.write_text(f"""
name = "busy"
[nodes.n]
device = "generic"
qubits = 4
seed = 1
speed = inf
app_endpoint = "{ep}"
qdevice_endpoint = "ipc://{tmp_path}/qdev.sock"
peer_endpoint = "ipc://{tmp_path}/peer.sock"
""")
    proc = Proc(
        [sys.executable, "-m", "qnodeos", "node", "n", "--network", str(net)], tmp_path / "node.log"
    )
    proc.wait_for(lambda line: "READY" in line)
    yield ep
    proc.stop()
    assert proc.p.returncode == 0, proc.log.read_text()


def app(role: str, ep: str, tmp_path: Path, seconds: float = 0.0) -> Proc:
    return Proc(
        [sys.executable, "-m", "tests.integration.busy_apps", role, ep, str(seconds)],
        tmp_path / f"{role}.log",
    )


def done(p: Proc, timeout: float = 60.0) -> dict[str, object]:
    event: dict[str, object] = p.wait_for(
        lambda line: (e := p.events(line)) and e["event"] == "done" and e, timeout
    )
    return event


def test_long_blocks_leave_other_apps_sessions_alive(node: str, tmp_path: Path) -> None:
    idle = app("idle", node, tmp_path, 8.0)
    idle.wait_for(lambda line: (e := idle.events(line)) and e["event"] == "connected")
    spinner = app("spinner", node, tmp_path, 8.0)
    spinner.wait_for(lambda line: (e := spinner.events(line)) and e["event"] == "stopped")
    worker = app("worker", node, tmp_path, 5.0)
    try:
        spun, worked, idled = done(spinner), done(worker), done(idle)
    finally:
        for p in (idle, spinner, worker):
            p.stop()
    stops = [spinner.events(x) for x in spinner.lines if '"stopped"' in x]
    assert all(s and "instruction budget of 1000000 exceeded" in str(s["message"]) for s in stops)
    assert int(str(spun["blocks"])) >= 3
    assert idled["value"] == 0  # its session lived through 8 s of the spinner
    print(f"\nspinner blocks {spun['blocks']}; worker {worked}")
    # a block runs without interleaving: one-gate blocks wait for the spinner's block
    # under way (its budget bounds it: 0.3-2 s of CPU), and get the device between them
    assert int(str(worked["blocks"])) >= 2, worked
    assert float(str(worked["max_s"])) < 5.0, worked


def test_loops_bigger_than_a_device_request_run_or_meet_the_budget(
    node: str, tmp_path: Path
) -> None:
    big = app("bigloop", node, tmp_path)
    try:
        ran = big.wait_for(lambda line: (e := big.events(line)) and e["event"] == "ran" and e)
        refused = big.wait_for(
            lambda line: (e := big.events(line)) and e["event"] == "refused" and e
        )
        done(big)
    finally:
        big.stop()
    assert ran["value"] == 0  # 100,000 X gates (an even number)
    assert refused["code"] == "program"
    assert "instruction budget of 1000000 exceeded" in refused["message"]


def test_big_netqasm_blocks_back_to_back_do_not_slow_other_apps(
    node: str, tmp_path: Path
) -> None:
    """Issue 21: an app sending oversized blocks back to back (NetQASM text of 16,384
    lines, ~8 s of netqasm's parser; 65,536 native instructions) held another app to 31
    blocks in 15 s. They are now refused before they are parsed or walked, each app's
    messages are served fairly by what they cost (kernel/intake.py), and one app's may
    take at most a quarter of a core."""
    quiet = app("median", node, tmp_path, 2.0)
    alone = done(quiet)
    quiet.stop()
    flood = app("flooder", node, tmp_path, 6.0)
    time.sleep(0.5)
    busy = app("median", node, tmp_path, 4.0)
    try:
        beside, flooded = done(busy), done(flood)
    finally:
        for p in (flood, busy):
            p.stop()
    print(f"\nquiet {alone}; beside the flood {beside}; flooder {flooded}")
    assert int(str(flooded["answered"])) >= 4  # it did flood, and was answered
    # Measured beside the flood: 2.4-8 ms (quiet 1.3-1.9 ms) on 2 shared cores, the
    # flooder busy on one of them; before, 486 ms (quiet 1.9 ms).
    quiet_s = float(str(alone["median_s"]))
    assert float(str(beside["median_s"])) <= max(3 * quiet_s, quiet_s + 0.010), (alone, beside)
