"""A node's log stays small whatever its peers send (issue 21: two warnings bypassed
the rate limit: late heralds, 2.56 MB per 20,000 messages, and "no quantum process of
node X", 1.94 MB per 20,000, from any keyed node). Real processes, keys on: alice runs;
the test holds bob's key (bob, alice's linked peer, is not running) and mallory's (a
listed node without a link), and sends 20,000 messages to each log site."""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import pytest
import trio
import zmq

from qnodeos import sdk
from qnodeos.lang import codec
from qnodeos.lang import messages as m
from qnodeos.runtime.security import KeyStore

from .helpers import start_node
from .test_fuzz import fuzz_network

pytestmark = pytest.mark.slow
N = 20_000
LOG_BOUND = 20_000  # bytes the node's log may grow by, for both floods together


def socket_as(d: Path, who: str, endpoint: str) -> zmq.Socket[bytes]:
    keys = KeyStore(d / "keys")
    me, alice = keys.node(who, secret=True), keys.node("alice")
    s = zmq.Context.instance().socket(zmq.DEALER)
    s.setsockopt(zmq.LINGER, 0)
    s.setsockopt(zmq.SNDHWM, 0)
    assert me.secret is not None
    s.curve_publickey, s.curve_secretkey, s.curve_serverkey = me.public, me.secret, alice.public
    s.connect(endpoint)
    return s


async def one_block(net: Path) -> int:
    async with sdk.connect("alice", app="still-here", qubits=1, network=str(net)) as node:
        async with node.block() as b:
            q = b.qubit()
            q.x()
            out = q.measure()
    return out.value


def test_floods_of_late_heralds_and_unknown_nodes_cost_a_few_log_lines() -> None:
    with tempfile.TemporaryDirectory(prefix="qlog-") as tmp:
        d = Path(tmp)
        net = fuzz_network(d)
        log = d / "alice.log"
        alice = start_node("alice", net, log)
        try:
            enc = codec.qdevice_peer()
            bob = socket_as(d, "bob", f"ipc://{d}/alice-qpeer")
            mallory = socket_as(d, "mallory", f"ipc://{d}/alice-qpeer")
            time.sleep(0.5)  # CURVE handshakes
            before = log.stat().st_size
            late = [m.QHerald(seq=i + 1, attempts=1, at_ns=0.0, bell_index=0) for i in range(4)]
            for i in range(N):
                # the linked peer answers rounds alice never ran: heralds, too late
                bob.send(enc.encode(m.QRound(
                    frm="bob", key=f"gone-{i}", heralds=late, attempts=4, at_ns=0.0,
                    reason="", epoch_ns=0,
                )))  # fmt: skip
                # a pull made for a node nobody knows: the answer has nowhere to go
                pull = m.QPull(frm="mallory", for_node="nobody", qubit=("nobody", i))
                mallory.send(enc.encode(pull))
            time.sleep(2.0)  # let alice read them all
            assert trio.run(one_block, net) == 1  # and it still serves its apps
            grown = log.stat().st_size - before
            text = log.read_text()
            assert "late heralds" in text and "no quantum process to send to" in text
            print(f"\nlog grew by {grown} bytes for {2 * N} messages")
            assert grown <= LOG_BOUND, (grown, text[-3000:])
            bob.close()
            mallory.close()
        finally:
            alice.stop()
