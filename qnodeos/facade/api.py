"""Run networks from Python: a script, a notebook, a test.

    import qnodeos
    net = qnodeos.Network.from_file("lab.toml")          # or .shipped("dqc"), .from_dict
    res = net.set("apps.client.args.k=5").run()           # real processes, as `qnodeos run`
    res = net.run(deterministic=True)                     # in this process, simulated time
    res["client"]                                          # an app's result dict
    res.to_dict()                                          # everything, as results.json

``run()`` is a plain synchronous call; inside a running asyncio loop (Jupyter) it runs
in a worker thread, so it works there too. Trio users ``await net.run_async()``.

Deterministic mode runs every node and app inside one trio run over in-memory sockets,
on a simulated clock: device time, leases and timeouts do not depend on the machine,
and with the seeds set in the network file (nodes', links', apps') two runs give the
same results, bit for bit. Apps connect as usual (``sdk.connect(node, ...)``): the SDK
finds the in-process nodes by name.
"""

from __future__ import annotations

import asyncio
import importlib
import json
import os
import random
import sys
import tempfile
import threading
import time
from collections.abc import Awaitable, Callable, Iterator
from concurrent.futures import Executor
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO, TypeVar

import tomli_w
import trio
import trio.testing

from ..config import overrides
from ..config.defaults import network_text, shipped_network_text
from ..config.network import NetworkConfig, parse_network, read_network
from ..errors import ConfigError, LocalError, NodeFailure

if TYPE_CHECKING:
    from qnodeos.testbed.progress import ProgressView

T = TypeVar("T")


class Results:
    """What a run gave: per app its node, module and ``result`` (or ``error``), and per
    node the device utilization (``nodes``), as ``results.json`` holds them."""

    def __init__(
        self,
        data: dict[str, Any],
        run_dir: Path | None = None,
        pairs: list[dict[str, Any]] | None = None,
        blocks: list[dict[str, Any]] | None = None,
    ) -> None:
        self.data = data
        self.run_dir = run_dir
        # every pair handed to an app and every block that ran (pairs.csv, blocks.csv)
        self.pair_rows: list[dict[str, Any]] = pairs or []
        self.block_rows: list[dict[str, Any]] = blocks or []

    @property
    def pairs(self) -> Any:
        """Every pair handed to an app (``pairs.csv``): a pandas DataFrame when pandas
        is installed, else a list of dicts (``pair_rows`` is always the list)."""
        return _frame(self.pair_rows)

    @property
    def blocks(self) -> Any:
        """Every block that ran (``blocks.csv``): a DataFrame when pandas is installed,
        else a list of dicts (``block_rows``)."""
        return _frame(self.block_rows)

    def __getitem__(self, app: str) -> Any:
        """The result dict of app ``app`` (KeyError naming the apps if unknown;
        RuntimeError with the app's error if it failed)."""
        entry = self.apps.get(app)
        if entry is None:
            raise KeyError(f"no app {app!r} in this run; apps: {', '.join(self.apps)}")
        if "error" in entry:
            raise RuntimeError(f"app {app!r} failed: {entry['error']}")
        return entry["result"]

    @property
    def apps(self) -> dict[str, dict[str, Any]]:
        """Per app: its ``node``, ``module`` and ``result`` (or ``error``)."""
        return {k: v for k, v in self.data.items() if not k.startswith("_")}

    @property
    def nodes(self) -> dict[str, Any]:
        """Per node: its device's ``utilization`` (busy, idle and waiting times)."""
        nodes: dict[str, Any] = self.data.get("_nodes", {})
        return nodes

    @property
    def errors(self) -> dict[str, str]:
        """Each failed app's error, and the run's own under ``_run``."""
        out = {k: v["error"] for k, v in self.apps.items() if "error" in v}
        if "_error" in self.data:
            out["_run"] = self.data["_error"]
        return out

    @property
    def ok(self) -> bool:
        """No app failed, and the run itself did not (timeout, a node that died)."""
        return not self.errors

    def to_dict(self) -> dict[str, Any]:
        """Everything, as ``results.json`` holds it."""
        return self.data

    def to_pandas(self) -> Any:
        """One row per app: node, module, error, and every field of its result, nested
        dicts as ``outer.inner`` columns and lists as cells (needs pandas).

        >>> flat({"S": 2.3, "fit": {"T2": 0.5}, "xs": [1, 2]})  # each app's row has
        {'S': 2.3, 'fit.T2': 0.5, 'xs': [1, 2]}
        """
        pd = importlib.import_module("pandas")  # not a dependency: pip install pandas

        rows = []
        for name, entry in self.apps.items():
            row = {"app": name, "node": entry.get("node"), "module": entry.get("module")}
            row["error"] = entry.get("error")
            row.update(flat(entry.get("result") or {}))
            rows.append(row)
        return pd.DataFrame(rows)

    def __repr__(self) -> str:
        state = "ok" if self.ok else f"errors: {self.errors}"
        where = f", run_dir={str(self.run_dir)!r}" if self.run_dir else ""
        return (
            f"Results(apps={list(self.apps)}, {state}, pairs={len(self.pair_rows)}, "
            f"blocks={len(self.block_rows)}{where})"
        )


def flat(result: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """A result dict with nested dicts spread out as ``outer.inner`` keys."""
    out: dict[str, Any] = {}
    for k, v in result.items():
        if isinstance(v, dict):
            out.update(flat(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out


def _frame(rows: list[dict[str, Any]]) -> Any:
    """``rows`` as a pandas DataFrame, or as they are without pandas."""
    try:
        pd = importlib.import_module("pandas")
    except ImportError:
        return rows
    return pd.DataFrame(rows)


class Network:
    """A network file, parsed and checked (ConfigError naming the key otherwise)."""

    def __init__(
        self,
        text: str,
        source: str = "<network>",
        path: Path | None = None,
        home: Path | None = None,
    ) -> None:
        self.text = text
        self.source = source
        self.path = path  # the file it came from (its `keys` are relative to it)
        # where its app modules import from, besides the current directory: the folder
        # of the file it came from, also after `set` (whose text lives nowhere)
        self.home = home if home is not None or path is None else path.resolve().parent
        self.config: NetworkConfig = parse_network(text, source)

    def __repr__(self) -> str:
        cfg = self.config
        return (
            f"Network({cfg.name!r}, nodes={list(cfg.nodes)}, links={len(cfg.links)}, "
            f"apps={[a.name for a in cfg.apps]}, source={self.source!r})"
        )

    @classmethod
    def from_file(cls, path: str | Path) -> Network:
        """A network file (its ``keys`` and app modules are found relative to it)."""
        return cls(read_network(path), str(path), Path(path))

    @classmethod
    def from_dict(cls, data: dict[str, Any], source: str = "<dict>") -> Network:
        """A network given as the file's tables (``{"name": ..., "nodes": {...}}``)."""
        return cls(tomli_w.dumps(data), source)

    @classmethod
    def named(cls, arg: str | None) -> Network:
        """What ``qnodeos run ARG`` would run: an embedded network by name, a file, or
        (None) the default network."""
        text, source, path = network_text(arg)
        return cls(text, source, Path(path) if path else None)

    @classmethod
    def shipped(cls, name: str = "default") -> Network:
        """An embedded network: default, dqc, multitask."""
        text = shipped_network_text(name)
        if text is None:
            raise ConfigError(f"no embedded network {name!r}")
        return cls(text, f"<{name}>")

    def set(self, *settings: str) -> Network:
        """A copy with ``KEY=VALUE`` settings applied (as ``qnodeos run --set``)."""
        text = overrides.applied(self.text, self.source, self.path, list(settings))
        return Network(text, f"{self.source} with set", home=self.home)

    def sweep(
        self,
        *settings: str,
        repeat: int = 1,
        jobs: int = 1,
        deterministic: bool = False,
        out: str | Path = "sweep",
        timeout: float = 600.0,
        retry: bool = False,
        lean: bool = False,
        executor: Executor | None = None,
    ) -> list[dict[str, Any]]:
        """``qnodeos sweep`` on this network: one row per run (see ``qnodeos.facade.sweep``);
        resumes from ``out`` when run again with the same network and settings (failed
        points again only with ``retry``); ``lean`` keeps no timelines or pair records.
        ``qnodeos.facade.sweep.aggregate(rows, keys)`` gives mean ± standard error per
        point. With ``executor`` (any ``concurrent.futures.Executor``: a process pool, a
        Dask client's ``get_executor(resources={"cores": n})``) each run is a task on it."""
        from qnodeos.testbed.launcher import app_imports

        from .sweep import run_sweep

        if self.path is not None:
            path = str(self.path)
        else:
            Path(out).mkdir(parents=True, exist_ok=True)
            path = str(Path(out) / "network.toml")
            Path(path).write_text(self.text)
        # each point is a process of its own: it finds the apps beside the original
        # file through $PYTHONPATH (the copy in `out` has none beside it)
        where = [str(self.home)] if self.home is not None else []
        pythonpath = os.pathsep.join([*where, *filter(None, [os.environ.get("PYTHONPATH")])])
        with app_imports(None, self.home), _env("PYTHONPATH", pythonpath):
            return run_sweep(
                path,
                list(settings),
                repeat=repeat,
                jobs=jobs,
                deterministic=deterministic,
                out_dir=out,
                timeout=timeout,
                retry=retry,
                lean=lean,
                say=lambda s: None,
                executor=executor,
            )

    # -- running -------------------------------------------------------------------------
    def run(
        self,
        *,
        deterministic: bool = False,
        timeout: float = 600.0,
        run_dir: str | Path | None = None,
        quiet: bool = True,
        cluster: str | None = None,
    ) -> Results:
        """Run the network's apps to their end. Real mode (the default) runs every
        node and app as its own process, exactly as ``qnodeos run`` (``run_dir``:
        where logs and results go); deterministic mode runs them in this process on a
        simulated clock. Unless ``quiet``, each app's progress is shown on stderr
        meanwhile, as ``qnodeos run`` shows it. App modules import from the current
        directory and the network file's folder, and their arguments are checked
        against their ``main`` before any node starts (ConfigError). Works from plain
        Python and inside a running asyncio loop.
        ``cluster``: the address of a Dask scheduler to spread the nodes over its
        workers (real mode only; docs/cluster.md)."""
        from qnodeos.testbed.launcher import app_imports, check_modules

        if deterministic and cluster:
            raise ConfigError("deterministic mode runs in this process: it cannot use a cluster")
        with app_imports(None, self.home):
            check_modules(self.config)  # as `qnodeos run` does, before any node starts
            if not deterministic:
                return _sync(lambda: self._run_processes(timeout, run_dir, quiet, cluster))
            show = None if quiet else sys.stderr
            return _sync(
                lambda: _deterministic(
                    lambda: trio.run(self._run_here, timeout, run_dir, show, clock=_clock())
                )
            )

    async def run_async(
        self, *, timeout: float = 600.0, run_dir: str | Path | None = None
    ) -> Results:
        """Deterministic mode from inside your own trio run (on its clock). Under
        asyncio (a Jupyter cell's top-level ``await``) it raises LocalError saying to
        call ``run(deterministic=True)``, which works there."""
        try:
            trio.lowlevel.current_task()
        except RuntimeError:
            raise LocalError(
                "Network.run_async runs under trio, not asyncio: call "
                "net.run(deterministic=True) (a plain call, no await), or switch a "
                "Jupyter notebook to trio with `%autoawait trio`"
            ) from None
        return await self._run_here(timeout, run_dir)

    async def _run_here(
        self, timeout: float, run_dir: str | Path | None = None, show: TextIO | None = None
    ) -> Results:
        """Every node and app in this trio run; with ``run_dir``, what a real run keeps
        is kept there too (network.toml, results.json, timeline, pairs and blocks).
        With ``show``, each app's progress is shown there meanwhile."""
        from qnodeos.testbed.launcher import make_run_dir, run_meta
        from qnodeos.testbed.local import local_network
        from qnodeos.testbed.trace import summarize

        from ..runtime.timeline import ENV
        from ..sdk.client import IN_PROCESS

        cfg = self.config
        mains = [(a, importlib.import_module(a.module).main) for a in cfg.apps]
        results: dict[str, Any] = {}
        keep = make_run_dir(cfg.name, run_dir) if run_dir is not None else None
        start = trio.current_time()
        with _records_dir(keep) as tmp, _env(ENV, tmp), _shown(cfg, Path(tmp), show, start) as view:
            with trio.move_on_after(timeout) as scope, _node_failure_alone():
                async with local_network(cfg) as endpoints:  # they record a timeline
                    token = IN_PROCESS.set((cfg, endpoints))
                    try:
                        async with trio.open_nursery() as nursery:
                            for app, main in mains:
                                nursery.start_soon(_one, app, main, results, Path(tmp), view)
                    finally:
                        IN_PROCESS.reset(token)
            simulated = trio.current_time() - start
            nodes_util, _ = summarize(Path(tmp), list(cfg.nodes))
            pairs, blocks = _read_csv(Path(tmp) / "pairs.csv"), _read_csv(Path(tmp) / "blocks.csv")
        if nodes_util:
            results["_nodes"] = nodes_util
        if scope.cancelled_caught:
            results["_error"] = f"run did not finish within {timeout} s (simulated time)"
        # what the results depend on, and nothing else (no clock, host or command line):
        # two deterministic runs give equal Results
        meta = run_meta(cfg, self.text.encode())
        same = ("version", "network", "network_sha256", "seeds")
        results["_meta"] = {
            **{k: meta[k] for k in same},
            "deterministic": True,
            "simulated_s": round(simulated, 9),
        }
        if keep is not None:
            (keep / "network.toml").write_text(self.text)
            (keep / "results.json").write_text(json.dumps(results, indent=2))
        return Results(results, keep, pairs, blocks)

    def _run_processes(
        self, timeout: float, run_dir: str | Path | None, quiet: bool, cluster: str | None = None
    ) -> Results:

        from qnodeos.testbed.launcher import run

        with tempfile.TemporaryDirectory(prefix="qn-api-") as tmp:
            path = str(self.path) if self.path is not None else os.path.join(tmp, "net.toml")
            if self.path is None:
                Path(path).write_text(self.text)
            where = Path(run_dir) if run_dir else Path(tmp) / "run"
            if cluster:
                from qnodeos.testbed.cluster import run_cluster

                run_cluster(path, cluster, True, str(where), timeout, show=False)
            else:
                run(path, True, str(where), timeout, None, quiet, show=False)
            data = json.loads((where / "results.json").read_text())
            pairs, blocks = _read_csv(where / "pairs.csv"), _read_csv(where / "blocks.csv")
        return Results(data, Path(run_dir) if run_dir else None, pairs, blocks)


async def _one(
    app: Any,
    main: Callable[..., Awaitable[Any]],
    results: dict[str, Any],
    records: Path,
    view: ProgressView | None,
) -> None:
    from qnodeos.testbed.launcher import progress_file

    from ..sdk import progress
    from ..sdk.apps import call_main

    entry: dict[str, Any] = {"node": app.node, "module": app.module}
    shown = None if view is None else str(progress_file(records, app.name))
    try:
        with progress.reporting_to(shown):
            entry["result"] = await call_main(main, app.node, app.name, app.args)
    except Exception as exc:  # an app's failure is data, as in qnodeos run
        entry["error"] = f"{type(exc).__name__}: {exc}"
    results[app.name] = entry
    if view is not None:
        view.ended(app.name, "done" if "error" not in entry else f"failed: {entry['error']}")


@contextmanager
def _shown(
    cfg: NetworkConfig, records: Path, out: TextIO | None, start: float
) -> Iterator[ProgressView | None]:
    """Meanwhile, each app's progress is shown on ``out`` (None: not shown), as
    ``qnodeos run`` shows it, with the simulated time since ``start``."""
    if out is None:
        yield None
        return
    from qnodeos.testbed.launcher import progress_file
    from qnodeos.testbed.progress import AppLine, ProgressView

    lines = [
        AppLine(a.name, f"{a.module} on {a.node}", progress_file(records, a.name)) for a in cfg.apps
    ]
    view = ProgressView(lines, out, simulated=lambda: trio.current_time() - start)
    ticker = _Ticker(view)
    view.open()
    trio.lowlevel.add_instrument(ticker)
    try:
        yield view
    finally:
        with suppress(KeyError):  # trio drops an instrument that raised (logging why)
            trio.lowlevel.remove_instrument(ticker)
        view.close()


class _Ticker(trio.abc.Instrument):
    """Calls ``view.tick()`` every ``view.every`` seconds of wall time, from trio's own
    loop. A task sleeping on the simulated clock would wake at simulated times, and as
    a task of the run it would change the run's schedule: shown or not, a
    deterministic run gives the same results."""

    def __init__(self, view: ProgressView) -> None:
        self.view = view
        self.next = time.monotonic() + view.every

    def before_io_wait(self, timeout: float) -> None:
        now = time.monotonic()
        if now >= self.next:
            self.next = now + self.view.every
            self.view.tick()


@contextmanager
def _records_dir(keep: Path | None) -> Iterator[str]:
    """Where an in-process run's nodes record: ``keep``, or a directory removed after."""
    if keep is not None:
        yield str(keep)
        return
    with tempfile.TemporaryDirectory(prefix="qn-det-") as tmp:
        yield tmp


def _read_csv(path: Path) -> list[dict[str, Any]]:
    """A records file as rows of numbers, booleans and strings ([] if there is none)."""
    import csv

    if not path.exists():
        return []

    def typed(v: str) -> Any:
        if v in ("True", "False"):
            return v == "True"
        for kind in (int, float):
            try:
                return kind(v)
            except ValueError:
                pass
        return v

    with path.open(newline="") as f:
        return [{k: typed(v) for k, v in row.items()} for row in csv.DictReader(f)]


@contextmanager
def _env(key: str, value: str) -> Iterator[None]:
    """``$key`` set to ``value`` meanwhile (the nodes of an in-process run read it)."""
    before = os.environ.get(key)
    os.environ[key] = value
    try:
        yield
    finally:
        if before is None:
            del os.environ[key]
        else:
            os.environ[key] = before


@contextmanager
def _node_failure_alone() -> Iterator[None]:
    """A node's kernel or quantum process that failed ends a deterministic run with
    ``NodeFailure`` (naming the node and the exception), raised as itself: not inside
    the exception groups of the nurseries it went through, beside what it caused (apps
    told that the node stopped), as a real run names the node whose process died."""
    try:
        yield
    except BaseExceptionGroup as group:
        failure = first_node_failure(group)
        if failure is None:
            raise
        failure.__suppress_context__ = True  # its cause (the kernel's exception) stays
        raise failure  # noqa: B904 (the group is what we take it out of)


def first_node_failure(exc: BaseException) -> NodeFailure | None:
    """The first NodeFailure in ``exc`` or its (nested) exception groups, if any."""
    if isinstance(exc, NodeFailure):
        return exc
    if isinstance(exc, BaseExceptionGroup):
        for sub in exc.exceptions:
            found = first_node_failure(sub)
            if found is not None:
                return found
    return None


def _clock() -> trio.testing.MockClock:
    """A clock that jumps over idle time at once (seeded: trio draws its offset)."""
    trio._core._run._r.seed(0)
    random.seed(0)
    return trio.testing.MockClock(autojump_threshold=0)


_LOCK = threading.Lock()


def _deterministic(call: Callable[[], T]) -> T:
    """``call()`` with trio's scheduler in its deterministic mode: runnable tasks in
    creation order, shuffled by its seeded generator (what pytest-trio does under
    Hypothesis), not in an order that depends on memory addresses."""
    run = trio._core._run
    with _LOCK:
        before = run._ALLOW_DETERMINISTIC_SCHEDULING
        run._ALLOW_DETERMINISTIC_SCHEDULING = True  # type: ignore[misc]
        try:
            return call()
        finally:
            run._ALLOW_DETERMINISTIC_SCHEDULING = before  # type: ignore[misc]


def _sync(call: Callable[[], T]) -> T:
    """``call()``, in a worker thread if this thread runs an asyncio loop (Jupyter)."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        loop = False
    else:
        loop = True
    if not loop:  # (called out of the except: its errors are not "during" that one)
        return call()
    box: list[Any] = []

    def work() -> None:
        try:
            box.append((True, call()))
        except BaseException as exc:  # handed to the caller
            box.append((False, exc))

    t = threading.Thread(target=work, name="qnodeos-run")
    t.start()
    t.join()
    ok, value = box[0]
    if not ok:
        raise value
    result: T = value
    return result
