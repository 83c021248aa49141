"""``qnodeos run --cluster`` over three hosts: a Dask scheduler and three workers, each
its own OS process and each worker in its own Linux network namespace (its own network
stack, on a bridge with the scheduler's address), so the nodes reach each other over
tcp only, as on three machines. A 3-node chain lands on three hosts with CURVE on every
link and gives CHSH on the closed form; a worker killed mid-run ends the run naming its
node and host and leaves no process behind. Needs root and iproute2; skipped otherwise
(loopback addresses are not used as a stand-in: then this test does not run)."""

from __future__ import annotations

import json
import math
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import qnodeos

pytest.importorskip("distributed")
pytestmark = pytest.mark.slow

SUBNET = "10.79.0"
CHAIN = """
name = "chain3"
[nodes.alice]
device = "generic"
qubits = 16
speed = inf
seed = 1
[nodes.bob]
device = "generic"
qubits = 16
speed = inf
seed = 2
[nodes.charlie]
device = "generic"
qubits = 16
speed = inf
seed = 3
[[links]]
nodes = ["alice", "bob"]
model = "depolarise"
fidelity = 0.9
p_success = 0.5
cycle_ns = 1000
seed = 4
[[links]]
nodes = ["bob", "charlie"]
model = "depolarise"
fidelity = 0.8
p_success = 0.5
cycle_ns = 1000
seed = 5
[[apps]]
node = "alice"
name = "a"
module = "qnodeos.apps.chsh"
args = { role = "alice", me = "a", peer_node = "bob", peer = "b", rounds = ROUNDS, batch = 4, \
seed = 6 }
[[apps]]
node = "bob"
name = "b"
module = "qnodeos.apps.chsh"
args = { role = "bob", me = "b", peer_node = "alice", peer = "a", batch = 4, seed = 7 }
[[apps]]
node = "charlie"
name = "c"
module = "qnodeos.apps.chsh"
args = { role = "alice", me = "c", peer_node = "bob", peer = "d", rounds = ROUNDS, batch = 4, \
seed = 8 }
[[apps]]
node = "bob"
name = "d"
module = "qnodeos.apps.chsh"
args = { role = "bob", me = "d", peer_node = "charlie", peer = "c", batch = 4, seed = 9 }
"""


def ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True, text=True)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """A scheduler on a bridge in this namespace, one worker in each of three
    namespaces: {"address", "workers": {host address: Popen}}."""
    if os.geteuid() != 0 or shutil.which("ip") is None:
        pytest.skip("needs root and iproute2 for network namespaces")
    tag = f"qc{os.getpid() % 10000}"
    spaces = {f"{tag}n{i}": f"{SUBNET}.{i + 1}" for i in range(3)}
    bridge = f"{tag}br"
    procs: list[subprocess.Popen[bytes]] = []
    try:
        ip("link", "add", bridge, "type", "bridge")
        ip("addr", "add", f"{SUBNET}.254/24", "dev", bridge)
        ip("link", "set", bridge, "up")
        for i, (ns, addr) in enumerate(spaces.items()):
            ip("netns", "add", ns)
            ip("link", "add", f"{tag}h{i}", "type", "veth", "peer", "name", f"{tag}v{i}")
            ip("link", "set", f"{tag}h{i}", "master", bridge)
            ip("link", "set", f"{tag}h{i}", "up")
            ip("link", "set", f"{tag}v{i}", "netns", ns)
            ip("-n", ns, "addr", "add", f"{addr}/24", "dev", f"{tag}v{i}")
            ip("-n", ns, "link", "set", f"{tag}v{i}", "up")
            ip("-n", ns, "link", "set", "lo", "up")
    except subprocess.CalledProcessError as exc:
        _teardown(bridge, spaces, procs)
        pytest.skip(f"cannot make network namespaces here: {exc.stderr.strip()}")
    tmp = tmp_path_factory.mktemp("dask")
    log = (tmp / "dask.log").open("wb")
    try:
        sched_file = tmp / "scheduler.json"
        procs.append(
            subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "distributed.cli.dask_scheduler",
                    "--host",
                    f"{SUBNET}.254",
                    "--port",
                    "0",
                    "--no-dashboard",
                    "--scheduler-file",
                    str(sched_file),
                ],
                stdout=log,
                stderr=log,
                cwd=tmp,
            )
        )
        deadline = time.monotonic() + 30
        while not sched_file.exists() and time.monotonic() < deadline:
            time.sleep(0.1)
        address = json.loads(sched_file.read_text())["address"]
        workers = {}
        for i, (ns, addr) in enumerate(spaces.items()):
            workers[addr] = subprocess.Popen(
                [
                    "ip",
                    "netns",
                    "exec",
                    ns,
                    sys.executable,
                    "-m",
                    "distributed.cli.dask_worker",
                    address,
                    "--host",
                    addr,
                    "--name",
                    f"w{i}",
                    "--nthreads",
                    "2",
                    "--resources",
                    "cores=1",
                    "--no-nanny",
                    "--no-dashboard",
                ],
                stdout=log,
                stderr=log,
                cwd=tmp,
            )
            procs.append(workers[addr])
        from distributed import Client

        with Client(address, timeout=30) as client:
            client.wait_for_workers(3, timeout=60)
        yield {"address": address, "workers": workers, "tmp": tmp}
    finally:
        _teardown(bridge, spaces, procs)
        log.close()


def _teardown(bridge: str, spaces: dict[str, str], procs: list[subprocess.Popen[bytes]]) -> None:
    for p in reversed(procs):
        p.terminate()
    for p in procs:
        try:
            p.wait(timeout=10)
        except subprocess.TimeoutExpired:
            p.kill()
    for ns in spaces:
        subprocess.run(["ip", "netns", "del", ns], capture_output=True)
    subprocess.run(["ip", "link", "del", bridge], capture_output=True)


def _host_pids() -> dict[int, str]:
    """Nodes and apps started by a cluster run's hosts, anywhere: pid -> command line."""
    found = {}
    for pid in os.listdir("/proc"):
        try:
            cmd = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        if pid.isdigit() and "qn-host-" in cmd:
            found[int(pid)] = cmd
    return found


def _host_processes() -> list[str]:
    return list(_host_pids().values())


def _run_long_chain(
    cluster: dict[str, Any], net: Path, tmp_path: Path
) -> tuple[threading.Thread, list[Any]]:
    """Run ``net`` on the cluster in a thread, returning once its 4 apps are running
    (the thread puts the run's Results, or what it raised, in the list)."""
    box: list[Any] = []

    def run() -> None:
        try:
            box.append(
                qnodeos.Network.from_file(net).run(
                    cluster=cluster["address"], run_dir=tmp_path / "run", timeout=120
                )
            )
        except BaseException as exc:  # handed to the test
            box.append(exc)

    t = threading.Thread(target=run)
    t.start()
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and sum("app_runner" in c for c in _host_processes()) < 4:
        time.sleep(0.2)
    return t, box


def _run_error(t: threading.Thread, box: list[Any]) -> str:
    """The error a run ended with (it must end, and with Results, not an exception)."""
    t.join(timeout=90)
    assert not t.is_alive()
    res = box[0]
    assert not isinstance(res, BaseException), res
    err: str = res.errors["_run"]
    return err


def test_a_chain_over_three_hosts_gives_local_physics_with_curve_on_every_link(
    cluster: dict[str, Any], tmp_path: Path
) -> None:
    net = tmp_path / "chain.toml"
    net.write_text(CHAIN.replace("ROUNDS", "800"))
    res = qnodeos.Network.from_file(net).run(
        cluster=cluster["address"], run_dir=tmp_path / "run", timeout=180
    )
    assert res.ok, res.errors
    meta = res.to_dict()["_meta"]["cluster"]
    hosts = {n: p["host"] for n, p in meta["placement"].items()}
    assert sorted(hosts.values()) == sorted(cluster["workers"])  # one node per host
    assert meta["curve"] == {"alice": True, "bob": True, "charlie": True}
    for clock in meta["clocks"].values():  # one kernel clock: offsets within the error
        assert abs(clock["offset_s"]) <= clock["error_s"] + 0.002
    for app, f in (("a", 0.9), ("c", 0.8)):
        expect = 2 * math.sqrt(2) * (4 * f - 1) / 3
        assert abs(res[app]["S"] - expect) < 4 * res[app]["stderr"], (app, res[app], expect)
    run = tmp_path / "run"
    for node in ("alice", "bob", "charlie"):
        assert "READY" in (run / f"node-{node}.log").read_text()
        assert (run / f"timeline-{node}-device.jsonl").stat().st_size > 0
    for app in "abcd":
        assert json.loads((run / f"app-{app}.json").read_text())["result"]
    for merged in ("timeline.json", "pairs.csv", "blocks.csv", "results.json"):
        assert (run / merged).stat().st_size > 0, merged
    assert len(res.pair_rows) >= 1600 and {r["node"] for r in res.pair_rows} == set(hosts)
    assert _host_processes() == []


def test_a_node_killed_mid_run_ends_it_naming_node_and_host(
    cluster: dict[str, Any], tmp_path: Path
) -> None:
    net = tmp_path / "chain.toml"
    host = f"{SUBNET}.3"
    text = CHAIN.replace("ROUNDS", "200000")
    net.write_text(text.replace("[nodes.bob]\n", f'[nodes.bob]\nhost = "{host}"\n'))
    t, box = _run_long_chain(cluster, net, tmp_path)
    bob = [pid for pid, c in _host_pids().items() if " node bob " in c]
    assert len(bob) == 1, _host_processes()
    os.kill(bob[0], signal.SIGKILL)
    err = _run_error(t, box)
    assert "node bob on host 10.79.0.3" in err and "SIGKILL" in err, err
    time.sleep(1.0)
    assert _host_processes() == []
    assert cluster["workers"][host].poll() is None  # the worker itself lives on


def test_a_worker_killed_mid_run_ends_it_naming_node_and_host(
    cluster: dict[str, Any], tmp_path: Path
) -> None:
    net = tmp_path / "chain.toml"
    text = CHAIN.replace("ROUNDS", "200000")
    victim = f"{SUBNET}.2"
    text = text.replace("[nodes.bob]\n", f'[nodes.bob]\nhost = "{victim}"\n')
    net.write_text(text)
    t, box = _run_long_chain(cluster, net, tmp_path)
    assert sum("app_runner" in c for c in _host_processes()) == 4, _host_processes()
    time.sleep(1.0)  # the apps are at work
    cluster["workers"][victim].send_signal(signal.SIGKILL)
    err = _run_error(t, box)
    assert "bob" in err and victim in err, err
    time.sleep(1.0)
    assert _host_processes() == []
