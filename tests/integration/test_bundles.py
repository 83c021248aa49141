"""Messages between quantum processes that are due together travel as one zmq message,
a frame each (issue #25): a real node's quantum process reads every frame of such a
bundle as one message, answers each, and refuses a bundle larger than ``BUNDLE``."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import zmq

from qnodeos.lang import codec
from qnodeos.lang import messages as m
from qnodeos.qdevice.realtime import BUNDLE

from .helpers import start_node

pytestmark = pytest.mark.slow


def network(d: Path) -> str:
    """alice and bob, linked; every endpoint ipc in ``d`` (bob's qpeer: ``b-qpeer``)."""
    out = ['name = "bundles"']
    for n in ("alice", "bob"):
        out += [f"[nodes.{n}]", 'device = "generic"', "qubits = 2"]
        kinds = ("app", "qdevice", "peer", "qpeer")
        out += [f'{k}_endpoint = "ipc://{d}/{n[0]}-{k}"' for k in kinds]
    out += ["[[links]]", 'nodes = ["alice", "bob"]', 'model = "perfect"', "cycle_ns = 1000"]
    return "\n".join(out) + "\n"


def answers(bob: zmq.Socket[bytes], wait_s: float) -> list[m.QPeer]:
    """What alice's quantum process sent to bob's endpoint within ``wait_s``."""
    dec, got = codec.qdevice_peer(), []
    end = time.time() + wait_s
    while time.time() < end:
        if bob.poll(50):
            got += [dec.decode(f) for f in bob.recv_multipart()[1:]]
    return got


def test_every_frame_of_a_bundle_is_a_message_and_a_huge_bundle_is_refused(
    tmp_path: Path,
) -> None:
    net = tmp_path / "net.toml"
    net.write_text(network(tmp_path))
    ctx = zmq.Context.instance()
    bob = ctx.socket(zmq.ROUTER)  # stands in for bob's quantum process
    bob.bind(f"ipc://{tmp_path}/b-qpeer")
    node = start_node("alice", net, tmp_path / "alice.log")
    me = ctx.socket(zmq.DEALER)
    me.connect(f"ipc://{tmp_path}/a-qpeer")
    try:
        ask = codec.qdevice_peer().encode(m.QPing(frm="bob", ask=True))
        me.send_multipart([ask, ask, ask])
        got = answers(bob, 2.0)
        assert [(type(a).__name__, a.frm) for a in got] == [("QPing", "alice")] * 3
        me.send_multipart([ask] * (BUNDLE + 1))
        assert answers(bob, 1.0) == []
        assert node.p.poll() is None
    finally:
        me.close(linger=0)
        bob.close(linger=0)
        node.stop()
