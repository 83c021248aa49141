"""Bad input about links, as a user meets it through `qnodeos run`: each case ends with
a clear error and a non-zero exit, never a hang, and the run directory keeps what was
produced."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow

NODES = """
name = "bad"
[nodes.alice]
qubits = 3
speed = inf
[nodes.bob]
qubits = 3
speed = inf
"""
LINK = """
[[links]]
nodes = ["alice", "bob"]
model = "depolarise"
fidelity = 0.9
p_success = 0.5
cycle_ns = 1000
"""


def qnodeos_run(tmp_path: Path, text: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    net = tmp_path / "net.toml"
    net.write_text(text)
    return subprocess.run(
        [sys.executable, "-m", "qnodeos", "run", str(net), "--run-dir", str(tmp_path / "run")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


@pytest.mark.parametrize(
    "link, words",
    [
        (LINK.replace('"bob"]', '"carol"]'), "links[0].nodes: no node named 'carol'"),
        (LINK.replace("fidelity = 0.9", "fidelity = 1.5"), "fidelity = 1.5 not in [0.25, 1.0]"),
        (LINK.replace("p_success = 0.5", "p_succes = 0.5"), "unknown key(s) p_succes"),
        (LINK.replace("cycle_ns = 1000", ""), "model 'depolarise' needs cycle_ns"),
        (LINK.replace('model = "depolarise"', 'model = "wormhole"'), "unknown 'wormhole'"),
        (LINK + LINK, "two links between 'alice' and 'bob'"),
    ],
)
def test_malformed_link_is_a_config_error(tmp_path: Path, link: str, words: str) -> None:
    out = qnodeos_run(tmp_path, NODES + link)
    assert out.returncode == 2, out.stderr
    assert words in out.stderr and "Traceback" not in out.stderr


def test_unknown_node_impossible_fidelity_and_silent_peer_fail_clearly(tmp_path: Path) -> None:
    apps = ""
    for me, args in [
        ("to-carol", 'remote_node = "carol", remote_app = "x"'),
        ("too-good", 'remote_node = "bob", remote_app = "y", min_fidelity = 0.99'),
        ("unheard", 'remote_node = "bob", remote_app = "nobody", timeout = 2.0'),
    ]:
        apps += f"""
[[apps]]
node = "alice"
name = "{me}"
module = "tests.integration.epr_probe"
args = {{ me = "{me}", {args} }}
"""
    start = time.monotonic()
    out = qnodeos_run(tmp_path, NODES + LINK + apps)
    took = time.monotonic() - start
    assert out.returncode == 1
    assert took < 30
    saved = json.loads((tmp_path / "run" / "results.json").read_text())
    assert "no quantum link to 'carol' (links to: bob)" in saved["to-carol"]["error"]
    assert "(UNSUPP)" in saved["to-carol"]["error"]
    assert "0.99 is above what the depolarise link delivers (0.9000)" in saved["too-good"]["error"]
    assert "(TIMEOUT): 'bob' did not accept the request" in saved["unheard"]["error"]
    assert "FAILED" in out.stdout
    run = tmp_path / "run"
    assert (run / "app-unheard.log").exists() and (run / "node-bob.log").exists()


def test_a_frozen_peer_node_ends_the_request_with_a_clear_error(tmp_path: Path) -> None:
    """bob's node (both processes) stops answering (SIGSTOP) before alice asks for a
    pair: alice's request ends with a clear error and the run ends, no hang. Which
    error depends on which comes first: alice's node noticing bob's silence (1.5 s
    after it froze) or the request's 2 s maximum time."""
    import os
    import signal

    net = tmp_path / "net.toml"
    net.write_text(
        NODES
        + LINK
        + """
[[apps]]
node = "alice"
name = "asker"
module = "tests.integration.epr_probe"
args = { me = "asker", remote_node = "bob", remote_app = "b", timeout = 2.0, delay = 1.0 }
"""
    )
    proc = subprocess.Popen(
        [sys.executable, "-m", "qnodeos", "run", str(net), "--run-dir", str(tmp_path / "run")],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    frozen: list[int] = []
    try:
        log = tmp_path / "run" / "node-bob.log"
        deadline = time.monotonic() + 30
        while not (log.exists() and "READY" in log.read_text()):
            assert time.monotonic() < deadline, "bob never started"
            time.sleep(0.05)
        found = subprocess.run(
            ["pgrep", "-f", f"qnodeos (node|qdevice) bob .*{tmp_path}"],
            capture_output=True,
            text=True,
        ).stdout.split()
        frozen = [int(p) for p in found]
        assert len(frozen) == 2, found  # the classical and the quantum process
        for pid in frozen:
            os.kill(pid, signal.SIGSTOP)
        out, err = proc.communicate(timeout=60)
    finally:
        for pid in frozen:
            try:
                os.kill(pid, signal.SIGCONT)
            except ProcessLookupError:
                pass
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 1, err
    saved = json.loads((tmp_path / "run" / "results.json").read_text())
    error = saved["asker"]["error"]
    # the OS says bob's processes are stopped, so his silence counts from 1.5 s
    silent = (
        r"\(OTHER\): node 'bob' stopped answering "
        r"\(nothing heard for 1\.[5-9] s; its process is stopped\)"
    )
    assert (
        "(TIMEOUT): 'bob' did not accept the request" in error and "does not answer" in error
    ) or re.search(silent, error), error
