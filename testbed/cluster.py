"""``qnodeos run NET --cluster ADDRESS``: one network spread over the workers of a Dask
cluster, with the run directory it would have had on one machine.

How it goes (the driver here, one ``testbed.hosttask.run_host`` task per worker used):
1. place the nodes (``placement.place``: a node's ``host`` key, else by free cores);
2. ask each worker for free ports, measure each worker's clock offset to ours
   (``placement.clock_offset``, over Dask round trips) and refuse time bins the
   offsets could blur (``placement.check_time_bins``);
3. make fresh CURVE keys for the run; each worker gets every public key and the
   secret keys of its own nodes only, with the task (no key file is copied by hand);
   every node's peer endpoints are tcp on its worker's host, so every link between
   nodes is CURVE-encrypted;
4. start every host's nodes, wait for every node's READY, then let the apps go;
5. once every host's apps have ended, stop every host and write what they return
   (logs, app results, timelines) into the run directory, then results.json with the
   placement and the clocks in ``_meta.cluster``, as ``qnodeos run`` does.
A worker that dies, or a node that exits, ends the run with an error naming the node
and its host; the other hosts are told to stop (their processes die with their task
anyway if their worker dies too).
"""

from __future__ import annotations

import json
import shutil
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from qnodeos.config.network import NetworkConfig, parse_network
from qnodeos.errors import QNodeOSError
from qnodeos.runtime.security import PEER, QPEER, guarded, make_keys
from qnodeos.testbed.trace import lag_warnings, summarize

from .daskclient import RESOURCE, connect, distributed
from .hosttask import HostSpec, free_ports, run_host
from .launcher import app_imports, prepare, print_results, run_meta
from .placement import (
    BIN_FRACTION,
    Clock,
    Worker,
    check_time_bins,
    clock_offset,
    cluster_text,
    place,
)

POLL_S = 0.25
READY_TIMEOUT_S = 180.0
COLLECT_TIMEOUT_S = 60.0
CLOCK_SAMPLES = 8


class ClusterRunError(QNodeOSError):
    """A node, an app's host or a worker failed during a ``--cluster`` run; the message
    names the node and the host."""


def workers_of(client: Any) -> list[Worker]:
    """The cluster's workers, with the cores each offers (its ``cores`` resource, else
    its threads)."""
    info = client.scheduler_info(n_workers=-1)["workers"]
    out = []
    for addr, w in info.items():
        cores = w.get("resources", {}).get(RESOURCE, w.get("nthreads", 1))
        out.append(Worker(addr, str(w.get("name", addr)), float(cores)))
    return out


def measure_clock(client: Any, address: str, samples: int = CLOCK_SAMPLES) -> Clock:
    """Worker ``address``'s clock offset to ours, from ``samples`` timed round trips."""
    triples = []
    for _ in range(samples):
        sent = time.time()
        theirs = client.run(time.time, workers=[address])[address]
        triples.append((sent, float(theirs), time.time()))
    return clock_offset(triples)


def run_keys(cfg: NetworkConfig) -> dict[str, bytes]:
    """Fresh key pairs for every node and app name of the run, by path under keys/."""
    names = {a.name for a in cfg.apps} | {
        a.args["me"] for a in cfg.apps if isinstance(a.args.get("me"), str)
    }
    with tempfile.TemporaryDirectory(prefix="qn-keys-") as tmp:
        make_keys(Path(tmp), cfg.nodes, sorted(names))
        return {
            str(p.relative_to(tmp)): p.read_bytes() for p in Path(tmp).rglob("*") if p.is_file()
        }


def keys_for(keys: dict[str, bytes], nodes: list[str], apps: list[str]) -> dict[str, bytes]:
    """The key files one host gets: every public key; the secret keys of its own
    ``nodes`` and ``apps`` only."""
    mine = {f"nodes/{n}.key_secret" for n in nodes} | {f"apps/{a}.key_secret" for a in apps}
    return {k: v for k, v in keys.items() if not k.endswith("_secret") or k in mine}


class Driver:
    """One cluster run, driven from here (see the module doc)."""

    def __init__(self, client: Any, cfg: NetworkConfig, text: str, run_dir: Path) -> None:
        self.client = client
        self.cfg = cfg
        self.text = text
        self.run_dir = run_dir
        self.run = f"qnodeos-run-{uuid.uuid4().hex[:12]}"
        dd = distributed()
        self.queue = dd.Queue(f"{self.run}-ready", client=client)
        self.go = dd.Event(f"{self.run}-go", client=client)
        self.stop = dd.Event(f"{self.run}-stop", client=client)
        self.alive = dd.Variable(f"{self.run}-alive", client=client)  # see hosttask
        self.beats = 0
        self.alive.set(self.beats)  # before any host looks
        self.placement: dict[str, Worker] = {}
        self.clocks: dict[str, Clock] = {}
        self.futures: dict[str, Any] = {}  # by worker address
        self.started_s = time.monotonic()
        self.failed: set[str] = set()  # workers whose failure is already reported
        self.curve: dict[str, bool] = {}  # each node's peer endpoints speak CURVE
        self.timings: dict[str, float] = {}

    def hosts(self) -> dict[str, list[str]]:
        """Each worker used -> its nodes."""
        out: dict[str, list[str]] = {}
        for node, w in self.placement.items():
            out.setdefault(w.address, []).append(node)
        return out

    def prepare(self) -> None:
        self.placement = place(self.cfg, workers_of(self.client))
        hosts = self.hosts()
        ports: dict[str, tuple[int, int]] = {}
        for addr, nodes in hosts.items():
            got = self.client.run(free_ports, 2 * len(nodes), workers=[addr])[addr]
            for i, n in enumerate(nodes):
                ports[n] = (got[2 * i], got[2 * i + 1])
            self.clocks[addr] = measure_clock(self.client, addr)
        check_time_bins(self.cfg, {n: self.clocks[w.address] for n, w in self.placement.items()})
        text = cluster_text(self.text, self.placement, ports)
        cnodes = parse_network(text, "cluster network").nodes
        self.curve = {  # derived from what the nodes will read, not assumed
            n: guarded(c.peer_endpoint, PEER, c.keys) and guarded(c.qpeer_endpoint, QPEER, c.keys)
            for n, c in cnodes.items()
        }
        keys = run_keys(self.cfg)
        for i, (addr, nodes) in enumerate(hosts.items()):
            apps = [a for a in self.cfg.apps if a.node in nodes]
            names = [a.name for a in apps] + [
                a.args["me"] for a in apps if isinstance(a.args.get("me"), str)
            ]
            spec = HostSpec(
                run=self.run,
                network=text,
                keys=keys_for(keys, nodes, names),
                nodes=nodes,
                apps=[
                    {"name": a.name, "module": a.module, "node": a.node, "args": a.args}
                    for a in apps
                ],
            )
            self.futures[addr] = self.client.submit(
                run_host,
                spec,
                workers=[addr],
                allow_other_workers=False,
                pure=False,
                retries=0,
                key=f"{self.run}-host-{i}",
            )

    def _check(self) -> None:
        """ClusterRunError if a host's task failed or its worker is gone."""
        alive = set(self.client.scheduler_info(n_workers=-1)["workers"])
        for addr, fut in self.futures.items():
            nodes = ", ".join(self.hosts()[addr])
            host = self.placement[self.hosts()[addr][0]].host
            if fut.status == "error":
                self.failed.add(addr)
                raise ClusterRunError(str(fut.exception()))
            if addr not in alive:
                self.failed.add(addr)
                raise ClusterRunError(
                    f"worker {addr} on host {host} died during the run; its node(s): {nodes}"
                )

    def _wait(self, kind: str, count: int, timeout: float) -> list[dict[str, Any]]:
        """The next ``count`` reports of ``kind`` from the hosts (checking meanwhile)."""
        got: list[dict[str, Any]] = []
        deadline = time.monotonic() + timeout
        while len(got) < count:
            self._check()
            self.beats += 1
            self.alive.set(self.beats)
            if time.monotonic() > deadline:
                raise ClusterRunError(
                    f"{count - len(got)} {kind} report(s) missing after {timeout:.0f} s"
                )
            items = self.queue.get(batch=True)  # what is there now (a wait with a
            if not items:  # timeout makes the scheduler log an error each time)
                time.sleep(POLL_S)
            got += [x for x in items if isinstance(x, dict) and x.get("kind") == kind]
        return got

    def run_apps(self, timeout: float) -> None:
        """Wait for every node's READY, let the apps go, wait until they all ended."""
        self._wait("ready", len(self.cfg.nodes), READY_TIMEOUT_S)
        self.timings["ready_s"] = time.monotonic() - self.started_s
        self.timings["ready_at"] = time.time()  # wall clock, to compare with the apps'
        self.go.set()
        self._wait("done", len(self.futures), timeout)
        self.timings["apps_s"] = time.monotonic() - self.started_s

    def collect(self) -> list[str]:
        """Stop every host; write what each returns into the run dir; what went wrong."""
        self.stop.set()
        errors = []
        alive = set(self.client.scheduler_info(n_workers=-1)["workers"])
        for addr, fut in self.futures.items():
            nodes = ", ".join(self.hosts()[addr])
            if addr in self.failed or addr not in alive:
                fut.cancel()  # reported already; a dead worker's task never ends
                continue
            try:
                out = fut.result(timeout=COLLECT_TIMEOUT_S)
            except Exception as exc:
                errors.append(f"host of node(s) {nodes} ({addr}): {type(exc).__name__}: {exc}")
                fut.cancel()
                continue
            for name, data in out["files"].items():
                if "/" in name or name.startswith("."):
                    errors.append(f"{addr} returned a bad record name {name!r}")
                    continue
                (self.run_dir / name).write_bytes(data)
        return errors

    def meta(self, address: str) -> dict[str, Any]:
        return {
            "scheduler": address,
            "placement": {
                n: {"worker": w.address, "host": w.host} for n, w in self.placement.items()
            },
            "clocks": {
                a: {"offset_s": c.offset_s, "error_s": c.error_s} for a, c in self.clocks.items()
            },
            "bin_fraction": BIN_FRACTION,
            "curve": self.curve,
            "timings_s": self.timings,
        }


def run_cluster(
    path: str | None,
    address: str,
    as_json: bool,
    run_dir_arg: str | None,
    timeout: float,
    settings: list[str] | None = None,
    show: bool = True,
) -> int:
    """``qnodeos run NET --cluster ADDRESS``: the exit status, as ``qnodeos run``."""
    with app_imports(path):
        cfg, run_dir, _, env = prepare(path, run_dir_arg, settings)
    shutil.rmtree(env["QNODEOS_RUNTIME_DIR"], ignore_errors=True)  # the hosts have their own
    text = (run_dir / "network.toml").read_text()
    meta = run_meta(cfg, text.encode())
    results: dict[str, Any] = {}
    errors: list[str] = []
    interrupted = False
    with connect(address) as client:
        driver = Driver(client, cfg, text, run_dir)
        try:
            driver.prepare()
            if show and not as_json:
                print(
                    f"qnodeos: network {cfg.name!r}: {len(cfg.nodes)} node(s) on "
                    f"{len(driver.futures)} worker(s); run dir {run_dir}",
                    flush=True,
                )
            driver.run_apps(timeout)
        except KeyboardInterrupt:
            errors.append("interrupted (Ctrl-C)")
            interrupted = True
        except ClusterRunError as exc:
            errors.append(str(exc))
        finally:
            errors += driver.collect()
            meta["cluster"] = driver.meta(address)
    for a in cfg.apps:
        try:
            entry = json.loads((run_dir / f"app-{a.name}.json").read_text())
        except (OSError, ValueError):
            entry = {"error": f"no result (see app-{a.name}.log in {run_dir})"}
        results[a.name] = {"node": a.node, "module": a.module, **entry}
    if errors:
        results["_error"] = "; ".join(errors)
    nodes_util, counts = summarize(run_dir, list(cfg.nodes))
    if nodes_util:
        results["_nodes"] = nodes_util
    warnings = lag_warnings(cfg, nodes_util)
    results["_meta"] = {
        **meta,
        "ended": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "records": counts,
        "warnings": warnings,
    }
    (run_dir / "results.json").write_text(json.dumps(results, indent=2))
    status = (
        130
        if interrupted
        else 1
        if errors or any("error" in r for k, r in results.items() if not k.startswith("_"))
        else 0
    )
    if show:
        if as_json:
            print(json.dumps(results, indent=2))
        else:
            print_results(cfg, results)
        if "_error" in results:
            print(f"qnodeos: error: {results['_error']}", flush=True)
    return status
