"""Every endpoint of a running node, fuzzed (hypothesis; see tests/fuzzing.py), while a
legitimate app keeps checking its results: no process dies, no bug is swallowed, the
legitimate app is never disturbed. Nodes run with keys, so the fuzzer on the peer and
qpeer endpoints holds a real node key (mallory's, a node of the network that is not
running) and spoofs other nodes; on the quantum process's endpoint it even holds the
node's own key, and only the start-up token keeps it out. ``bench/fuzz.py`` runs the
same at 100,000+ messages per endpoint."""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
import trio
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.fuzzing import ENDPOINTS, Target, frames, legit_check, target

from .helpers import ROOT, Proc, start_node

pytestmark = pytest.mark.slow
EXAMPLES = 100  # per endpoint in CI (~600 messages); bench/fuzz.py sends 100,000+


def fuzz_network(d: Path) -> Path:
    nodes = "".join(
        f"""
[nodes.{n}]
device = "generic"
qubits = 3
speed = inf
app_endpoint = "ipc://{d}/{n}-app"
qdevice_endpoint = "ipc://{d}/{n}-qdev"
peer_endpoint = "ipc://{d}/{n}-peer"
qpeer_endpoint = "ipc://{d}/{n}-qpeer"
"""
        for n in ("alice", "bob", "mallory")
    )
    net = d / "net.toml"
    net.write_text(
        f'name = "fuzz"\nkeys = "keys"\n{nodes}\n'
        '[[links]]\nnodes = ["alice", "bob"]\nmodel = "perfect"\ncycle_ns = 1000\n'
    )
    keys = [sys.executable, "-m", "qnodeos", "keys", str(net)]
    subprocess.run(keys, cwd=ROOT, check=True, capture_output=True)
    return net


def fuzz_target(d: Path) -> Target:
    from qnodeos.runtime.security import KeyStore

    keys = KeyStore(d / "keys")
    alice, mallory = keys.node("alice", secret=True), keys.node("mallory", secret=True)
    assert alice.secret is not None and mallory.secret is not None
    return target(
        {e: f"ipc://{d}/alice-{e if e != 'qdevice' else 'qdev'}" for e in ENDPOINTS},
        {
            "peer": (mallory.public, mallory.secret, alice.public),
            "qpeer": (mallory.public, mallory.secret, alice.public),
            "qdevice": (alice.public, alice.secret, alice.public),  # the node's own key
        },
    )


@pytest.fixture(scope="module")
def running() -> Iterator[tuple[Path, list[Proc], Target]]:
    d = Path(tempfile.mkdtemp(prefix="qf-"))
    net = fuzz_network(d)
    procs = [start_node(n, net, d / f"{n}.log") for n in ("alice", "bob")]
    tgt = fuzz_target(d)
    yield net, procs, tgt
    tgt.close()
    for p in procs:
        p.stop()
    logs = "".join((d / f"{n}.log").read_text() for n in ("alice", "bob"))
    shutil.rmtree(d, ignore_errors=True)
    assert "internal error" not in logs and "kernel failed" not in logs, logs[-3000:]


@pytest.mark.parametrize("endpoint", ENDPOINTS)
def test_fuzzing_an_endpoint_crashes_nothing_and_disturbs_no_one(
    running: tuple[Path, list[Proc], Target], endpoint: str
) -> None:
    net, procs, tgt = running
    count = [0]

    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(st.lists(frames(endpoint), min_size=1, max_size=5))
    def attack(batch: list[list[bytes]]) -> None:
        for msg in batch:
            tgt.blast(endpoint, msg)
        count[0] += 1
        assert all(p.p.poll() is None for p in procs), "a node process died"
        if count[0] % 10 == 0:
            trio.run(legit_check, str(net))

    attack()
    trio.run(legit_check, str(net))
    assert all(p.p.poll() is None for p in procs)


def test_a_pull_for_a_node_whose_quantum_process_is_not_up_stops_nothing(
    running: tuple[Path, list[Proc], Target],
) -> None:
    """Found by bench/fuzz.py's state-move scenario: each QPull made "for" mallory (a
    listed node that is not running) has alice's quantum process answer mallory's;
    zmq queues those for the missing peer up to its high-water mark (1,000), and the
    next send blocked, stopping alice's real-time loop for good. Sends never block
    now; what is not taken is retried, then dropped and reported."""
    from qnodeos.lang import codec
    from qnodeos.lang import messages as m

    net, procs, tgt = running
    enc = codec.qdevice_peer()
    for i in range(700):  # each sent twice: past the 1,000 zmq queues
        pull = m.QPull(frm="mallory", for_node="mallory", qubit=("mallory", i % 4))
        tgt.blast("qpeer", [enc.encode(pull)])
    trio.run(legit_check, str(net))  # before: TooSlowError, alice's device stuck
    assert all(p.p.poll() is None for p in procs)
