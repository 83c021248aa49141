"""Helpers for tests that start real processes: children whose output we follow, free
tcp ports, nodes started with ``qnodeos node``."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]


def werner_pair(name: str, fidelity: float) -> str:
    """Network text: alice and bob, generic 8-qubit devices at speed inf, a Werner link
    of ``fidelity`` (p = 0.5 per 1 us attempt); all seeds set."""
    return f"""
name = "{name}"
[nodes.alice]
device = "generic"
qubits = 8
speed = inf
seed = 1
[nodes.bob]
device = "generic"
qubits = 8
speed = inf
seed = 2
[[links]]
nodes = ["alice", "bob"]
model = "depolarise"
fidelity = {fidelity}
p_success = 0.5
cycle_ns = 1000
seed = 3
"""


class Proc:
    """A child process whose stdout lines we can wait for."""

    def __init__(self, args: list[str], log: Path) -> None:
        self.log = log
        self.p = subprocess.Popen(
            args, cwd=ROOT, stdout=subprocess.PIPE, stderr=log.open("w"), text=True, bufsize=1
        )
        self.lines: list[str] = []

    def wait_for(self, predicate: Any, timeout: float = 20.0) -> Any:
        import selectors

        sel = selectors.DefaultSelector()
        assert self.p.stdout is not None
        sel.register(self.p.stdout, selectors.EVENT_READ)
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if not sel.select(timeout=max(0.0, end - time.monotonic())):
                break
            line = self.p.stdout.readline()
            if not line:
                break
            self.lines.append(line)
            got = predicate(line)
            if got:
                return got
        raise AssertionError(
            f"timed out; output: {self.lines[-5:]}; log: {self.log.read_text()[-2000:]}"
        )

    def events(self, line: str) -> dict[str, Any] | None:
        try:
            event: dict[str, Any] = json.loads(line)
            return event
        except ValueError:
            return None

    def stop(self) -> None:
        if self.p.poll() is None:
            self.p.terminate()
            try:
                self.p.wait(5)
            except subprocess.TimeoutExpired:
                self.p.kill()
                self.p.wait()


def ctrl_c_works() -> None:
    """A ``preexec_fn`` for a child the test will Ctrl-C: SIGINT as in a terminal. A
    shell that starts pytest in the background (``pytest &``) hands it SIGINT ignored,
    and every child inherits that, so the SIGINT the test sends would do nothing."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def start_node(name: str, net: Path, log: Path, timeout: float = 20.0) -> Proc:
    """``qnodeos node NAME --network NET``, once it says READY."""
    proc = Proc([sys.executable, "-m", "qnodeos", "node", name, "--network", str(net)], log)
    proc.wait_for(lambda line: "READY" in line, timeout)
    return proc
