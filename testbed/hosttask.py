"""What a Dask worker does in a ``--cluster`` run: ``run_host`` starts the nodes placed
on it and, once the driver says every node of the network is up, their apps; it
returns the run's records (logs, results, timelines) for the driver's run directory.

One task per worker, long-running (it leaves the worker's thread pool: ``secede``).
It talks to the driver through three Dask objects named by the run: a queue it puts
reports on (``ready``: one per node, with its host and READY line; ``done``: this
host's apps have ended), a ``go`` event (every node is up: start the apps) and a
``stop`` event (every app has ended, or the run failed: stop everything and return).
Nodes and apps are child processes made with ``subprocess`` (fork+exec: safe in a
threaded worker) that die with the worker (``PR_SET_PDEATHSIG``), so a worker that
dies takes its nodes and apps with it; a node that dies fails the task with an error
naming the node and the host.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from qnodeos.runtime.blas import one_thread_env
from qnodeos.runtime.forking import die_with_parent
from qnodeos.runtime.timeline import ENV
from qnodeos.sdk.progress import ENV as PROGRESS_ENV

from .node import READY

POLL_S = 0.2
READY_TIMEOUT_S = 120.0
DRIVER_SILENT_S = 20.0  # a driver not heard from this long is gone: stop everything
STOP_GRACE_S = 5.0


@dataclass(frozen=True)
class HostSpec:
    """Everything one worker needs for its share of the run (sent with the task)."""

    run: str  # the run's id: names its queue and events
    network: str  # the network file's text, as the nodes read it
    keys: dict[str, bytes]  # key files, by path under keys/ (secrets: this host's only)
    nodes: list[str]
    apps: list[dict[str, Any]] = field(default_factory=list)  # name, module, node, args
    go_timeout_s: float = 600.0


class HostError(RuntimeError):
    """A node on this host exited before the run ended (the message names it)."""


def free_ports(n: int) -> list[int]:
    """``n`` tcp ports free on this host now (the kernel's choice)."""
    socks = []
    try:
        for _ in range(n):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind(("", 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def _child_setup() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    die_with_parent(signal.SIGTERM)


def _last_words(log: Path) -> str:
    try:
        lines = log.read_text(errors="replace").splitlines()
    except OSError:
        return ""
    said = [ln.removeprefix("qnodeos: ") for ln in lines if ln.startswith("qnodeos:")]
    return f" ({said[-1]})" if said else ""


def _exit_text(code: int) -> str:
    return f"was killed by {signal.Signals(-code).name}" if code < 0 else f"exited with {code}"


class Host:
    """The processes of one host's share of a run, in directory ``root``."""

    def __init__(self, spec: HostSpec, root: Path, where: str) -> None:
        self.spec = spec
        self.root = root
        self.run_dir = root / "run"
        self.run_dir.mkdir()
        rt = root / "rt"
        rt.mkdir(mode=0o700)
        for rel, data in spec.keys.items():
            path = root / "keys" / rel
            path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            path.write_bytes(data)
            path.chmod(0o600)
        (root / "keys").chmod(0o700)
        self.net_file = root / "network.toml"
        self.net_file.write_text(spec.network)
        self.env = one_thread_env(  # node and app processes: one BLAS thread each
            {
                **os.environ,
                "QNODEOS_NETWORK": str(self.net_file),
                "QNODEOS_RUNTIME_DIR": str(rt),
                ENV: str(self.run_dir),
            }
        )
        self.nodes: dict[str, subprocess.Popen[bytes]] = {}
        self.apps: dict[str, subprocess.Popen[bytes]] = {}
        self._logs: list[IO[bytes]] = []
        self.host = where  # as errors name this host

    def _spawn(self, argv: list[str], log: Path, env: dict[str, str]) -> subprocess.Popen[bytes]:
        out = log.open("ab")
        self._logs.append(out)
        return subprocess.Popen(
            [sys.executable, *argv],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
            preexec_fn=_child_setup,
        )

    def start_nodes(self) -> None:
        for name in self.spec.nodes:
            argv = ["-m", "qnodeos", "node", name, "--network", str(self.net_file)]
            self.nodes[name] = self._spawn(argv, self.node_log(name), self.env)

    def node_log(self, name: str) -> Path:
        return self.run_dir / f"node-{name}.log"

    def check_nodes(self) -> None:
        """HostError naming the first node that has exited."""
        for name, proc in self.nodes.items():
            code = proc.poll()
            if code is not None:
                why = _last_words(self.node_log(name))
                raise HostError(
                    f"node {name} on host {self.host} {_exit_text(code)}{why}; its log is "
                    f"{self.node_log(name).name} in the run directory"
                )

    def ready_lines(self) -> dict[str, str]:
        """The READY line of each node that has printed it."""
        out = {}
        for name in self.nodes:
            try:
                text = self.node_log(name).read_text(errors="replace")
            except OSError:
                continue
            for line in text.splitlines():
                if line.startswith(READY):
                    out[name] = line
        return out

    def start_apps(self) -> None:
        for a in self.spec.apps:
            name = a["name"]
            argv = ["-m", "qnodeos.testbed.app_runner", a["module"], a["node"], "--name", name]
            argv += ["--args", json.dumps(a["args"])]
            argv += ["--result", str(self.run_dir / f"app-{name}.json")]
            env = {**self.env, PROGRESS_ENV: str(self.run_dir / f"progress-{name}.jsonl")}
            self.apps[name] = self._spawn(argv, self.run_dir / f"app-{name}.log", env)

    def apps_done(self) -> bool:
        return all(p.poll() is not None for p in self.apps.values())

    def stop(self) -> None:
        """SIGTERM every process left (apps first), SIGKILL after ``STOP_GRACE_S``."""
        procs = [*self.apps.values(), *self.nodes.values()]
        for p in procs:
            if p.poll() is None:
                p.terminate()
        deadline = time.monotonic() + STOP_GRACE_S
        for p in procs:
            try:
                p.wait(timeout=max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        for f in self._logs:
            f.close()

    def records(self) -> dict[str, bytes]:
        """Every file of this host's run directory, by name."""
        return {p.name: p.read_bytes() for p in sorted(self.run_dir.iterdir()) if p.is_file()}


class DriverWatch:
    """Whether the driver still runs: it bumps a Dask variable while it waits; one
    that has not changed for ``DRIVER_SILENT_S`` (this host's clock) means the driver
    is gone (killed, its machine lost), and the host stops rather than run on."""

    def __init__(self, variable: Any) -> None:
        self.variable = variable
        self.seen: Any = None
        self.changed = time.monotonic()
        self.looked = 0.0

    def gone(self) -> bool:
        now = time.monotonic()
        if now - self.looked < 1.0:
            return False
        self.looked = now
        try:
            value = self.variable.get(timeout=2)
        except Exception:  # not set yet, or the scheduler slow: silence so far
            value = self.seen
        if value != self.seen:
            self.seen, self.changed = value, now
        return now - self.changed > DRIVER_SILENT_S


def run_host(spec: HostSpec) -> dict[str, Any]:
    """The task: this host's nodes, then its apps, to the end; its records. Raises
    HostError when a node dies (the driver stops the rest)."""
    from .daskclient import distributed

    dd = distributed()
    dd.secede()  # long-running: not one of the worker's task threads
    ready_q = dd.Queue(f"{spec.run}-ready")
    go, stop = dd.Event(f"{spec.run}-go"), dd.Event(f"{spec.run}-stop")
    driver = DriverWatch(dd.Variable(f"{spec.run}-alive"))
    worker = dd.get_worker().address
    where = worker.partition("://")[2].rpartition(":")[0] or worker
    root = Path(tempfile.mkdtemp(prefix="qn-host-"))
    host = Host(spec, root, f"{where} ({socket.gethostname()})")
    try:
        host.start_nodes()
        told: set[str] = set()
        deadline = time.monotonic() + READY_TIMEOUT_S
        while len(told) < len(spec.nodes):
            host.check_nodes()
            for name, line in host.ready_lines().items():
                if name not in told:
                    ready_q.put({"kind": "ready", "node": name, "host": host.host, "line": line})
                    told.add(name)
            if time.monotonic() > deadline:
                late = sorted(set(spec.nodes) - told)
                raise HostError(
                    f"node(s) {', '.join(late)} on host {host.host} not ready "
                    f"within {READY_TIMEOUT_S:.0f} s"
                )
            if stop.is_set() or driver.gone():
                return {"files": host.records()}
            time.sleep(POLL_S)
        deadline = time.monotonic() + spec.go_timeout_s
        while not go.wait(POLL_S):
            host.check_nodes()
            if stop.is_set() or driver.gone() or time.monotonic() > deadline:
                return {"files": host.records()}
        host.start_apps()
        reported = False
        while not stop.wait(POLL_S):  # the driver stops every host once all apps ended
            host.check_nodes()
            if driver.gone():
                break
            if not reported and host.apps_done():
                ready_q.put({"kind": "done", "worker": worker, "host": host.host})
                reported = True
        host.stop()
        return {"files": host.records()}
    finally:
        host.stop()
        shutil.rmtree(root, ignore_errors=True)
