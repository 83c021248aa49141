"""Sweeps on a Dask cluster (a LocalCluster of worker processes on this machine): the
rows equal those of local runs of the same points, a worker killed mid-sweep costs no
point and leaves no process behind, and a cluster whose workers offer too few cores is
refused at once."""

from __future__ import annotations

import json
import os
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
from qnodeos.errors import ConfigError
from qnodeos.facade import cluster
from qnodeos.facade.sweep import grid, row

from . import chsh_pair

distributed = pytest.importorskip("distributed")
pytestmark = pytest.mark.slow

NET = chsh_pair("clsweep")
SWEEP = "links.0.fidelity=0.7:0.98:8"


@pytest.fixture(scope="module")
def client() -> Iterator[Any]:
    """Three worker processes (with nannies, which restart a killed one), 2 cores each."""
    with (
        distributed.LocalCluster(
            n_workers=3,
            threads_per_worker=2,
            processes=True,
            resources={"cores": 2},
            dashboard_address=None,
        ) as lc,
        distributed.Client(lc) as c,
    ):
        yield c


def _processes_mentioning(text: str) -> list[int]:
    """Pids of processes whose command line contains ``text``."""
    found = []
    for pid in os.listdir("/proc"):
        try:
            cmd = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        if pid.isdigit() and text in cmd:
            found.append(int(pid))
    return found


def _zombie(pid: int) -> bool:
    try:
        return " Z " in Path(f"/proc/{pid}/stat").read_text()
    except OSError:  # reaped meanwhile
        return True


def test_a_sweep_over_the_cluster_equals_local_runs_even_when_a_worker_dies(
    client: Any, tmp_path: Path
) -> None:
    net_file = tmp_path / "net.toml"
    net_file.write_text(NET)
    net = qnodeos.Network.from_file(net_file)
    executor, slots = cluster.sweep_executor(client, cluster.cores_needed(net.config, True))
    assert slots == 6  # 3 workers x 2 cores, 1 core per deterministic run
    pids: dict[str, int] = client.run(os.getpid)
    box: list[Any] = []

    def sweep() -> None:
        try:
            box.append(
                net.sweep(
                    SWEEP, deterministic=True, out=tmp_path / "sw", executor=executor, jobs=slots
                )
            )
        except BaseException as exc:  # handed to the test
            box.append(exc)

    t = threading.Thread(target=sweep)
    t.start()
    # kill a worker while it runs a point
    victim = None
    deadline = time.monotonic() + 60
    while victim is None and time.monotonic() < deadline:
        busy = [w for w, keys in client.processing().items() if keys]
        if busy:
            victim = busy[0]
            time.sleep(0.5)  # its run has started
            os.kill(pids[victim], signal.SIGKILL)
        time.sleep(0.05)
    assert victim is not None, "no point ever ran"
    deadline = time.monotonic() + 10
    while Path(f"/proc/{pids[victim]}").exists() and not _zombie(pids[victim]):
        assert time.monotonic() < deadline, "the killed worker lives on"
        time.sleep(0.1)
    t.join(timeout=240)
    assert not t.is_alive()
    rows = box[0]
    assert not isinstance(rows, BaseException), rows
    # every point once in the log, none failed
    log = [json.loads(x) for x in (tmp_path / "sw" / "sweep.jsonl").read_text().splitlines()]
    assert len(log) == 8 and len({x["point"] for x in log}) == 8
    assert not [r for r in rows if "error" in r or "a.error" in r]
    # the same rows as each point run here, deterministic
    _, points = grid([SWEEP], 1)
    for p, got in zip(points, rows, strict=True):
        local = net.set(*(f"{k}={json.dumps(v)}" for k, v in p.values)).run(deterministic=True)
        assert got == row(p, local.to_dict())
    # the killed worker's run did not outlive it
    time.sleep(1.0)
    assert _processes_mentioning(str(net_file)) == []


def test_a_cluster_without_enough_cores_is_refused_naming_them(client: Any) -> None:
    with pytest.raises(ConfigError, match="no worker of the cluster offers 3 cores"):
        cluster.sweep_executor(client, 3)


def test_ctrl_c_stops_a_cluster_sweeps_runs_on_the_workers(client: Any, tmp_path: Path) -> None:
    """``qnodeos sweep --cluster`` (real time, 2 cores per point: one point per worker);
    Ctrl-C once every point runs: the command ends and no run is left on any worker."""
    client.wait_for_workers(3, timeout=60)  # the one killed above is back (its nanny)
    net = tmp_path / "long.toml"
    net.write_text(NET.replace("rounds = 32", "rounds = 10000000").replace("speed = inf", ""))
    address = client.scheduler.address
    argv = [sys.executable, "-m", "qnodeos", "sweep", str(net), "--cluster", address]
    argv += ["--set", "links.0.fidelity=0.8,0.9,0.95", "--out", str(tmp_path / "sw")]
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 90
    runs: list[int] = []
    while time.monotonic() < deadline and len(runs) < 3:
        runs = [p for p in _processes_mentioning(str(net)) if p != proc.pid]
        runs = (
            [
                p
                for p in runs
                if " run " in Path(f"/proc/{p}/cmdline").read_text().replace("\0", " ")
            ]
            if runs
            else []
        )
        time.sleep(0.2)
    assert len(runs) == 3, "the three points never ran at once"
    assert "3 at a time" in _first_line(proc)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode != 0, err
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and _processes_mentioning(str(net)):
        time.sleep(0.2)
    assert _processes_mentioning(str(net)) == []
    log = tmp_path / "sw" / "sweep.jsonl"
    assert not log.exists() or log.read_text() == ""  # stopped runs are not results


def _first_line(proc: subprocess.Popen[str]) -> str:
    assert proc.stderr is not None
    return proc.stderr.readline()
