"""Real processes on real sockets: a node (classical + quantum process) started with
``qnodeos node``, apps in their own OS processes, raw ZeroMQ clients sending junk."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import msgspec
import pytest
import zmq

from qnodeos.lang import codec
from qnodeos.lang import messages as m
from qnodeos.lang.text import parse

from .helpers import Proc

pytestmark = pytest.mark.slow


@pytest.fixture
def node(tmp_path: Path) -> Iterator[tuple[str, Proc]]:
    ep = f"ipc://{tmp_path}/app.sock"
    net = tmp_path / "net.toml"
    net.write_text(f"""
name = "it"
[nodes.n]
device = "generic"
qubits = 4
seed = 1
speed = 100.0
lease_s = 0.5
budget = 200000
app_endpoint = "{ep}"
qdevice_endpoint = "ipc://{tmp_path}/qdev.sock"
peer_endpoint = "ipc://{tmp_path}/peer.sock"
""")
    proc = Proc(
        [sys.executable, "-m", "qnodeos", "node", "n", "--network", str(net)], tmp_path / "node.log"
    )
    proc.wait_for(lambda line: "READY" in line)
    yield ep, proc
    proc.stop()
    assert proc.p.returncode == 0, proc.log.read_text()


def app(role: str, ep: str, tmp_path: Path) -> Proc:
    return Proc(
        [sys.executable, "-m", "tests.integration.proc_apps", role, ep], tmp_path / f"{role}.log"
    )


def test_two_app_processes_run_concurrently_and_isolated(
    node: tuple[str, Proc], tmp_path: Path
) -> None:
    ep, _ = node
    a = app("holder", ep, tmp_path)
    a.wait_for(lambda line: (e := a.events(line)) and e["event"] == "holding")
    b = app("prober", ep, tmp_path)
    probed = b.wait_for(lambda line: (e := b.events(line)) and e["event"] == "probed" and e)
    for err in probed["errors"]:
        assert "is not allocated by this app" in err
    done_a = a.wait_for(lambda line: (e := a.events(line)) and e["event"] == "done" and e)
    done_b = b.wait_for(lambda line: (e := b.events(line)) and e["event"] == "done" and e)
    checks = [a.events(x) for x in a.lines if '"check"' in x]
    works = [b.events(x) for x in b.lines if '"work"' in x]
    assert all(c and c["values"] == [1, 1] for c in checks)  # B never disturbed A's qubits
    assert all(w and w["value"] == 0 for w in works)
    # Concurrency: each ran blocks while the other was running blocks.
    assert works[0]["t"] < done_a["t"] and checks[-1]["t"] > works[0]["t"]
    assert done_b["t"] > checks[0]["t"]
    a.stop()
    b.stop()


def test_sigkill_frees_the_apps_qubits_within_2s_and_others_keep_running(
    node: tuple[str, Proc], tmp_path: Path
) -> None:
    ep, _ = node
    worker = app("worker", ep, tmp_path)
    worker.wait_for(lambda line: '"work"' in line)
    holder = app("holder", ep, tmp_path)
    holder.wait_for(lambda line: '"holding"' in line)
    # Device has 4 qubits: holder reserves 2, worker 1; 3 more cannot be had now.
    assert register(ep, qubits=3).code == "quota"
    holder.p.send_signal(signal.SIGKILL)
    killed = time.monotonic()
    while not isinstance(reply := register(ep, qubits=3), m.Registered):
        assert time.monotonic() - killed < 2.0, f"qubits not freed within 2 s: {reply}"
        time.sleep(0.05)
    freed_after = time.monotonic() - killed
    before = len(worker.lines)
    worker.wait_for(lambda line: '"work"' in line)
    worker.wait_for(lambda line: '"work"' in line)
    assert len(worker.lines) >= before + 2 and worker.p.poll() is None
    print(f"qubits freed {freed_after:.2f} s after SIGKILL")
    worker.stop()


def register(ep: str, qubits: int) -> Any:
    return exchange(ep, [codec.app_to_node().encode(m.Register(app="probe", qubits=qubits))])[0]


def exchange(ep: str, frames_list: list[bytes], more: int = 0) -> list[Any]:
    """Send each frame from one fresh DEALER and return the decoded replies."""
    ctx = zmq.Context.instance()
    s = ctx.socket(zmq.DEALER)
    s.setsockopt(zmq.LINGER, 0)
    s.connect(ep)
    dec = codec.node_to_app()
    out = []
    try:
        for data in frames_list:
            s.send(data)
            if not s.poll(5000):
                raise AssertionError(f"no reply to {data[:40]!r}")
            out.append(dec.decode(s.recv()))
    finally:
        s.close()
    return out


def test_bad_input_gets_error_replies_and_the_node_keeps_serving(node: tuple[str, Proc]) -> None:
    ep, proc = node
    enc = codec.app_to_node()

    def submit(block: int, sub: Any) -> bytes:
        return msgspec.msgpack.encode([2, {"type": "submit", "block": block, "sub": sub}])

    big = msgspec.to_builtins(parse("set R0 1\n" * 5000, check=False))
    loop = msgspec.to_builtins(parse("top:\njmp @top"))
    raw = lambda text: msgspec.to_builtins(parse(text, check=False))  # noqa: E731
    frames = [
        enc.encode(m.Register(app="junk", qubits=1)),
        b"\xc1\xc1 not msgpack",
        msgspec.msgpack.encode([2, {"type": "register", "app": 5, "qubits": "two"}]),
        submit(1, {"arrays": {}, "labels": {}, "instrs": [["frobnicate", []]]}),
        submit(2, {"arrays": {}, "labels": {}, "instrs": [["x", [["Q", "zero"]]]]}),
        submit(3, raw("set R99 1")),
        submit(4, big),
        submit(5, loop),
        submit(6, raw("qalloc Q0\ninit Q0\nx Q0\nmeas Q0 R0\nret R0")),
    ]
    replies = exchange(ep, frames)
    assert isinstance(replies[0], m.Registered)
    expect = [
        (m.ErrorReply, "malformed msgpack"),
        (m.ErrorReply, "Expected `str`, got `int` - at `$.app`"),
        (m.BlockFailed, "unknown instruction 'frobnicate'"),
        (m.BlockFailed, "Expected `int`, got `str`"),  # undecodable: still its block's
        (m.BlockFailed, "register R99 out of range"),
        (m.BlockFailed, "Expected `array` of length <= 4096 - at `$.sub.instrs`"),
        (m.BlockFailed, "instruction budget of 200000 exceeded"),
    ]
    for reply, (kind, words) in zip(replies[1:], expect, strict=False):
        assert isinstance(reply, kind), reply
        assert words in reply.message, reply
    assert isinstance(replies[-1], m.BlockDone) and replies[-1].values == {"R0": 1}
    assert proc.p.poll() is None


def test_node_stops_when_its_quantum_process_dies(node: tuple[str, Proc]) -> None:
    _, proc = node
    out = subprocess.run(
        ["pgrep", "-f", "qnodeos qdevice n", "-P", str(proc.p.pid)], capture_output=True, text=True
    )
    pids = [int(x) for x in out.stdout.split()]
    assert len(pids) == 1
    os.kill(pids[0], signal.SIGKILL)
    proc.p.wait(10)
    assert proc.p.returncode == 1
    proc.p.returncode = 0  # checked here; the fixture's clean-exit check does not apply
