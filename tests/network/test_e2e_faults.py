"""Both or neither over a repeater, in real processes (``qnodeos run``): SIGKILL the
repeater's classical or quantum process while two apps take end-to-end measured pairs
through it. Both ends end their request with a clear error within 2 s, and their lists
of pair ids agree once void pairs are dropped (0 one-sided pairs, but for those an end
says are in doubt). Numbers go to stdout (``pytest -s``)."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

import tests.integration.test_faults as faults
from tests.integration.helpers import ROOT

pytestmark = pytest.mark.slow

LINK = """model = "depolarise"
fidelity = 0.95
p_success = 0.02
cycle_ns = 200000
"""

CHAIN = (
    """
name = "e2efaults"
[nodes.alice]
device = "generic"
qubits = 2
seed = 1
[nodes.rep]
device = "generic"
qubits = 2
seed = 4
[nodes.bob]
device = "generic"
qubits = 2
seed = 2
[[links]]
nodes = ["alice", "rep"]
"""
    + LINK
    + """seed = 3
[[links]]
nodes = ["rep", "bob"]
"""
    + LINK
    + """seed = 5
[[apps]]
node = "alice"
name = "a"
module = "tests.integration.pair_logger"
args = {{ role = "create", me = "a", peer_node = "bob", peer = "b", duration = {d} }}
[[apps]]
node = "bob"
name = "b"
module = "tests.integration.pair_logger"
args = {{ role = "recv", me = "b", peer_node = "alice", peer = "a", duration = {d} }}
"""
)


@pytest.mark.parametrize(
    "name, fault",
    [
        ("classical process of the repeater", faults.kill("qnodeos node rep")),
        ("quantum process of the repeater", faults.kill("qnodeos qdevice rep")),
    ],
)
def test_a_killed_repeater_ends_both_requests_and_leaves_no_one_sided_pair(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    name: str,
    fault: Callable[[dict[int, str]], float],
) -> None:
    monkeypatch.setattr(faults, "NET", CHAIN)
    run, struck, evs = faults.run_with_fault(tmp_path, fault)
    detect = {k: faults.first_error_after(v, struck) for k, v in evs.items()}
    faults.report(
        f"{name} (a: {detect['a']:.2f} s, b: {detect['b']:.2f} s)", max(detect.values()), evs, run
    )
    assert max(detect.values()) < 2.0
    assert run.returncode == 1
    errors = [e["message"] for v in evs.values() for e in v if e["event"] == "error"]
    assert errors and all("alice-rep-bob" in x or "rep" in x for x in errors), errors[:3]
    faults.assert_agree(evs)
    assert len(faults.kept_ids(evs["a"])) > 0


def test_a_killed_repeater_holding_a_window_of_halves_leaves_no_one_sided_pair(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The same with nodes of 10 qubits: the repeater holds up to 5 halves per side and
    swaps them in batches when it is killed."""
    monkeypatch.setattr(faults, "NET", CHAIN.replace("qubits = 2", "qubits = 10"))
    run, struck, evs = faults.run_with_fault(tmp_path, faults.kill("qnodeos node rep"))
    detect = {k: faults.first_error_after(v, struck) for k, v in evs.items()}
    faults.report(f"windowed repeater (a: {detect['a']:.2f} s)", max(detect.values()), evs, run)
    assert max(detect.values()) < 2.0
    assert run.returncode == 1
    faults.assert_agree(evs)
    assert len(faults.kept_ids(evs["a"])) > 0


@pytest.mark.parametrize(
    "name, fault",
    [
        ("classical process of the far end", faults.kill("qnodeos node bob")),
        ("quantum process of the far end", faults.kill("qnodeos qdevice bob")),
    ],
)
def test_a_killed_far_end_ends_the_near_ends_request_and_leaves_no_one_sided_pair(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    name: str,
    fault: Callable[[dict[int, str]], float],
) -> None:
    """bob, the far end of alice's circuit (not her neighbour), dies: alice's app gets
    a clear error within 2 s naming the circuit and bob, and so does every request it
    makes after (the repeater refuses circuits to a node it knows is down, at once);
    it keeps only pairs bob's app had too, but for those it says are in doubt."""
    monkeypatch.setattr(faults, "NET", CHAIN)
    run, struck, evs = faults.run_with_fault(tmp_path, fault)
    detect = faults.first_error_after(evs["a"], struck)
    faults.report(f"{name} (a: {detect:.2f} s)", detect, evs, run)
    assert detect < 2.0
    assert run.returncode == 1
    errors = [e["message"] for e in evs["a"] if e["event"] == "error"]
    assert errors and all("alice-rep-bob" in x and "node 'bob'" in x for x in errors), errors
    faults.assert_agree(evs)
    assert len(faults.kept_ids(evs["a"])) > 0


def test_a_repeater_whose_protocol_raises_ends_both_requests(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The repeater's protocol (named in the network file) raises on its first link
    pair: both apps get an error naming it, every time they ask, and keep no pair; the
    run ends normally (the node itself goes on)."""
    bad = '[network]\nprotocol = "tests.network.bad_protocol:Raises"\n'
    net = tmp_path / "net.toml"
    net.write_text(CHAIN.format(d=2.0) + bad)
    run_dir = tmp_path / "run"
    done = subprocess.run(
        [sys.executable, "-m", "qnodeos", "run", str(net), "--run-dir", str(run_dir)],
        cwd=ROOT,
        env={**os.environ, "TMPDIR": str(tmp_path)},
        capture_output=True,
        text=True,
        timeout=120,
    )
    evs = {a: faults.events(run_dir / f"app-{a}.log") for a in ("a", "b")}
    for v in evs.values():
        errors = [e["message"] for e in v if e["event"] == "error"]
        assert errors, v[:3]
        assert all("tests.network.bad_protocol:Raises" in x for x in errors), errors[:2]
        assert faults.kept_ids(v) == []
    print(f"\nraising protocol: {len(errors)} clear errors at b; run exit {done.returncode}")
