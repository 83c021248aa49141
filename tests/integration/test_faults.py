"""Fault injection across real processes (``qnodeos run``): SIGKILL of an app, of a
classical process, of a quantum process, of the heralding station's process, and
SIGSTOP of a whole node for 3 s, while two apps are taking measured pairs.

Each time: the other side reports a clear error within 2 s (or carries on after
SIGCONT), the run ends with a clear message, no process or runtime file is left, and the
two apps' lists of entanglement ids agree once void pairs are dropped: 0 one-sided
pairs. The measured numbers go to stdout (``pytest -s``) for the fault table in README.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from .helpers import ROOT

pytestmark = pytest.mark.slow

NET = """
name = "faults"
[nodes.alice]
device = "generic"
qubits = 2
seed = 1
[nodes.bob]
device = "generic"
qubits = 2
seed = 2
[[links]]
nodes = ["alice", "bob"]        # alice's quantum process hosts the station
model = "depolarise"
fidelity = 0.95
p_success = 0.02
cycle_ns = 200000               # a pair every ~10 ms
seed = 3
[[apps]]
node = "alice"
name = "a"
module = "tests.integration.pair_logger"
args = {{ role = "create", me = "a", peer_node = "bob", peer = "b", duration = {d}, timeout = {t} }}
[[apps]]
node = "bob"
name = "b"
module = "tests.integration.pair_logger"
args = {{ role = "recv", me = "b", peer_node = "alice", peer = "a", duration = {d}, timeout = {t} }}
"""


def processes() -> dict[int, tuple[int, str]]:
    """pid -> (parent pid, command line) of every process."""
    out = {}
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        try:
            ppid = int((d / "stat").read_text().rsplit(")", 1)[1].split()[1])
            cmd = (d / "cmdline").read_bytes().replace(b"\0", b" ").decode().strip()
        except (OSError, IndexError, ValueError):
            continue
        out[int(d.name)] = (ppid, cmd)
    return out


def descendants(root: int) -> dict[int, str]:
    procs = processes()
    found: dict[int, str] = {}
    frontier = [root]
    while frontier:
        p = frontier.pop()
        for pid, (ppid, cmd) in procs.items():
            if ppid == p and pid not in found:
                found[pid] = cmd
                frontier.append(pid)
    return found


def find(tree: dict[int, str], *words: str) -> int:
    hits = [pid for pid, cmd in tree.items() if all(w in cmd for w in words)]
    assert len(hits) == 1, (words, tree)
    return hits[0]


def events(log: Path) -> list[dict[str, Any]]:
    out = []
    for line in log.read_text().splitlines():
        if line.startswith("{"):
            out.append(json.loads(line))
    return out


def kept_ids(evs: list[dict[str, Any]]) -> list[tuple[str, str, int]]:
    kinds = ("pairs", "error", "unanswered")
    got = [tuple(i) for e in evs if e["event"] in kinds for i in e["ids"]]
    void = {tuple(i) for e in evs if e["event"] == "expired" for i in e["ids"]}
    return [i for i in got if i not in void]


def doubt_ids(evs: list[dict[str, Any]]) -> set[tuple[str, str, int]]:
    return {tuple(i) for e in evs if e["event"] == "expired" for i in e["doubt"]}


def assert_agree(evs: dict[str, list[dict[str, Any]]]) -> None:
    """The two apps kept the same pairs, but for pairs one of them counts as in doubt
    (its session ended before the other end's confirmation came: at most the pairs
    then under way, one request of 5, or two): 0 one-sided pairs otherwise."""
    kept = {k: set(kept_ids(v)) for k, v in evs.items()}
    doubt = {k: doubt_ids(v) for k, v in evs.items()}
    assert kept["a"] - kept["b"] <= doubt["b"]
    assert kept["b"] - kept["a"] <= doubt["a"]
    assert len(doubt["a"] | doubt["b"]) <= 10
    assert all(len(kept_ids(v)) == len(kept[k]) for k, v in evs.items())  # no pair twice


def run_with_fault(
    tmp_path: Path,
    fault: Callable[[dict[int, str]], float],
    duration: float = 5.0,
    timeout: float = 3.0,
) -> tuple[subprocess.CompletedProcess[str], float, dict[str, list[dict[str, Any]]]]:
    """Start the run, wait until pairs flow, apply ``fault`` (returns when it struck);
    returns the finished run, the fault time and each app's events. ``timeout``: each
    EPR request's (wall seconds)."""
    net = tmp_path / "net.toml"
    net.write_text(NET.format(d=duration, t=timeout))
    run_dir = tmp_path / "run"
    tmp = tmp_path / "tmp"  # the run's own temp dir: its runtime dir goes there
    tmp.mkdir()
    proc = subprocess.Popen(
        [sys.executable, "-m", "qnodeos", "run", str(net), "--run-dir", str(run_dir)],
        cwd=ROOT,
        env={**os.environ, "TMPDIR": str(tmp)},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.time() + 30
        while time.time() < deadline:  # until both apps have pairs
            logs = [run_dir / "app-a.log", run_dir / "app-b.log"]
            if all(p.exists() and p.read_text().count('"pairs"') >= 3 for p in logs):
                break
            time.sleep(0.05)
        else:
            raise AssertionError("pairs never flowed")
        # the launcher too (a fault may stop every process of the run)
        struck = fault({proc.pid: " ".join(map(str, proc.args)), **descendants(proc.pid)})
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    done = subprocess.CompletedProcess(proc.args, proc.returncode, out, err)
    # nothing left: no process of the run, no runtime directory
    assert not descendants(proc.pid)
    left = [cmd for _, (_, cmd) in processes().items() if str(net) in cmd]
    assert left == [], left
    # no runtime dir left behind (the per-user one, empty, is where nodes started by
    # hand put their sockets: parsing the network file makes it)
    shared = tmp / f"qnodeos-{os.getuid()}"
    left = [p for p in tmp.iterdir() if p != shared or any(p.iterdir())]
    assert left == [], left
    evs = {a: events(run_dir / f"app-{a}.log") for a in ("a", "b")}
    return done, struck, evs


def first_error_after(evs: list[dict[str, Any]], t: float) -> float:
    return min(e["t"] for e in evs if e["event"] in ("error", "closed") and e["t"] >= t) - t


def report(name: str, detect_s: float, evs: dict[str, list[dict[str, Any]]], run: Any) -> None:
    print(
        f"\nFAULT {name}: detected in {detect_s:.2f} s; kept a={len(kept_ids(evs['a']))} "
        f"b={len(kept_ids(evs['b']))}, in doubt {len(doubt_ids(evs['a']) | doubt_ids(evs['b']))}"
        f"; run exit {run.returncode}: "
        f"{run.stderr.strip().splitlines()[-1] if run.stderr.strip() else ''}"
    )


def kill(*words: str, sig: int = signal.SIGKILL) -> Callable[[dict[int, str]], float]:
    def strike(tree: dict[int, str]) -> float:
        os.kill(find(tree, *words), sig)
        return time.time()

    return strike


@pytest.mark.parametrize(
    "name, fault, survivor, words",
    [
        ("app b (SIGKILL)", kill("app_runner", "pair_logger", " bob "), "a", "exited with -9"),
        ("classical process of bob", kill("qnodeos node bob"), "a", "node bob was killed"),
        (
            "quantum process of bob",
            kill("qnodeos qdevice bob"),
            "a",
            "its quantum process exited (killed by SIGKILL)",
        ),
        (
            "station (quantum process of alice)",
            kill("qnodeos qdevice alice"),
            "b",
            "node alice exited with 1 during the run (node alice stops: its quantum process",
        ),
    ],
)
def test_a_killed_process_is_reported_within_2s_and_leaves_no_one_sided_pair(
    tmp_path: Path,
    name: str,
    fault: Callable[[dict[int, str]], float],
    survivor: str,
    words: str,
) -> None:
    run, struck, evs = run_with_fault(tmp_path, fault)
    detect = first_error_after(evs[survivor], struck)
    report(name, detect, evs, run)
    assert detect < 2.0
    assert run.returncode == 1 and words in run.stderr + run.stdout
    assert_agree(evs)  # 0 one-sided pairs but those one side knows are in doubt
    assert len(kept_ids(evs["a"])) > 0


def test_a_node_paused_for_3s_leaves_no_one_sided_pair(tmp_path: Path) -> None:
    def pause(tree: dict[int, str]) -> float:
        pids = [find(tree, "qnodeos node bob"), find(tree, "qnodeos qdevice bob")]
        for pid in pids:
            os.kill(pid, signal.SIGSTOP)
        t = time.time()
        time.sleep(3.0)
        for pid in pids:
            os.kill(pid, signal.SIGCONT)
        return t

    run, struck, evs = run_with_fault(tmp_path, pause, duration=9.0)
    detect = first_error_after(evs["a"], struck)
    report("SIGSTOP of node bob for 3 s", detect, evs, run)
    assert detect < 2.0
    # both apps carried on after SIGCONT and ended normally
    assert run.returncode == 0, run.stderr
    after = [e for e in evs["a"] if e["event"] == "pairs" and e["t"] > struck + 3.0]
    assert after, "no pairs after the node came back"
    assert_agree(evs)


def test_an_app_paused_for_3s_gets_a_clear_error_and_leaves_no_one_sided_pair(
    tmp_path: Path,
) -> None:
    def pause(tree: dict[int, str]) -> float:
        pid = find(tree, "app_runner", "pair_logger", " bob ")
        os.kill(pid, signal.SIGSTOP)
        t = time.time()
        time.sleep(3.0)
        os.kill(pid, signal.SIGCONT)
        return t

    run, struck, evs = run_with_fault(tmp_path, pause)
    detect = first_error_after(evs["a"], struck)
    report("SIGSTOP of app b for 3 s", detect, evs, run)
    assert detect < 2.0  # its lease (1 s) ran out: a's request ends
    closed = [e for e in evs["b"] if e["event"] == "closed"]
    assert closed and "lease of 1.0s expired" in closed[0]["message"]
    assert "stopped answering" not in closed[0]["message"]  # not blamed on the node
    assert_agree(evs)


def test_a_whole_network_paused_for_3s_completes_correctly(tmp_path: Path) -> None:
    """Every process of the run (launcher, nodes, quantum processes, apps) stopped
    together for 3 s, as in a machine stall or a laptop suspend: once they go on,
    nobody blames anybody; the run ends normally and the apps agree on every pair."""

    def stall(tree: dict[int, str]) -> float:
        for pid in tree:
            os.kill(pid, signal.SIGSTOP)
        t = time.time()
        time.sleep(3.0)
        for pid in tree:
            os.kill(pid, signal.SIGCONT)
        return t

    # the apps' requests may take longer than the stall: a request whose own deadline
    # passed while everything stood still ends with TIMEOUT, rightly
    run, struck, evs = run_with_fault(tmp_path, stall, duration=9.0, timeout=8.0)
    report("SIGSTOP of the whole network for 3 s", 0.0, evs, run)
    assert run.returncode == 0, run.stderr
    for app in ("a", "b"):
        assert not [e for e in evs[app] if e["event"] in ("error", "closed")], evs[app]
        after = [e for e in evs[app] if e["event"] == "pairs" and e["t"] > struck + 3.0]
        assert after, f"app {app}: no pairs after the stall"
    assert_agree(evs)
    assert not doubt_ids(evs["a"]) | doubt_ids(evs["b"])


def test_a_paused_quantum_process_reports_the_pause_as_lag(tmp_path: Path) -> None:
    """The lag a real-time quantum process reports (results.json ``_nodes``) is a claim:
    stopping bob's quantum process for 1 s, known independently, must show as about
    1 s of lag at bob and not at alice (whose own lag stays under 0.5 s even beside
    4 busy loops: 0.18 s measured)."""

    def pause(tree: dict[int, str]) -> float:
        pid = find(tree, "qnodeos qdevice bob")
        os.kill(pid, signal.SIGSTOP)
        t = time.time()
        time.sleep(1.0)
        os.kill(pid, signal.SIGCONT)
        return t

    run, _, evs = run_with_fault(tmp_path, pause, duration=4.0)
    assert run.returncode == 0, run.stderr
    saved = json.loads((tmp_path / "run" / "results.json").read_text())
    lag = {n: saved["_nodes"][n]["lag"] for n in ("alice", "bob")}
    # bob acts every few ms (pings, rounds' reports): something fell due soon after
    # the pause began and left when it ended
    assert lag["bob"]["max_us"] >= 0.9e6, lag
    assert lag["alice"]["max_us"] < 0.5e6, lag  # its own acts were on time
    assert lag["bob"]["n"] > 100 and lag["alice"]["n"] > 100
    assert_agree(evs)


def test_a_paused_quantum_process_is_found_by_its_peer_and_the_run_recovers(
    tmp_path: Path,
) -> None:
    """bob's quantum process alone stopped for 3 s: alice's quantum process finds it
    silent, and the OS says it is stopped, so it is declared gone after 1.5 s (its
    rounds end and are attempted again); once it runs again the link recovers, the run
    ends normally and the apps agree on every pair."""

    def pause(tree: dict[int, str]) -> float:
        pid = find(tree, "qnodeos qdevice bob")
        os.kill(pid, signal.SIGSTOP)
        t = time.time()
        time.sleep(3.0)
        os.kill(pid, signal.SIGCONT)
        return t

    run, struck, evs = run_with_fault(tmp_path, pause, duration=9.0)
    assert run.returncode == 0, run.stderr
    log = (tmp_path / "run" / "node-alice.log").read_text()
    found = re.search(
        r"linked quantum process of 'bob' stopped answering \(nothing heard for (1\.[5-9]) s; "
        r"its process is stopped\)",
        log,
    )
    assert found, log[-2000:]
    after = [e for e in evs["a"] if e["event"] == "pairs" and e["t"] > struck + 3.0]
    assert after, "no pairs after the quantum process came back"
    assert_agree(evs)
