"""``qnodeos run``: start every node of a network, run its apps, collect, tear down.

Each node is ``qnodeos node NAME`` (which forks its own quantum process); each app is
``python -m qnodeos.testbed.app_runner``. The launcher imports what they need once and forks
them all before it starts trio (``testbed/forks.py``): the nodes start at once, the
apps wait until every node is up. Everything then runs in one trio nursery: on
success, on an error, on Ctrl-C or when a node dies, leaving the nursery stops every
child process.
The run directory keeps the network file used, every process's log, and results.json.
"""

from __future__ import annotations

import difflib
import importlib
import importlib.util
import json
import logging
import os
import pkgutil
import shutil
import signal
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from functools import partial
from pathlib import Path
from typing import Any

import trio

from qnodeos.config import overrides
from qnodeos.config.defaults import network_text
from qnodeos.config.network import NetworkConfig, parse_network
from qnodeos.errors import ConfigError, QNodeOSError
from qnodeos.runtime.timeline import ENV
from qnodeos.sdk.apps import check_main
from qnodeos.sdk.progress import ENV as PROGRESS_ENV
from qnodeos.testbed.trace import lag_warnings, summarize

from . import forks
from .forks import Proc
from .node import READY
from .progress import AppLine, ProgressView


class RunError(QNodeOSError):
    """A node or app failed during ``qnodeos run``; the run directory has the logs."""


async def _pump_log(
    stream: trio.abc.ReceiveStream, log: Path, ready: trio.Event | None, echo: str = ""
) -> None:
    """Copy a node's output to its log file (and, with ``echo``, to stderr, each line
    after that prefix); set ``ready`` once its READY line has come."""
    buf = b""
    line = b""
    with log.open("ab") as f:
        async for chunk in stream:
            f.write(chunk)
            f.flush()
            if echo:
                *whole, line = (line + chunk).split(b"\n")
                for ln in whole:
                    print(echo + ln.decode(errors="replace"), file=sys.stderr, flush=True)
            buf += chunk
            if ready is not None and READY.encode() in buf:
                ready.set()
                ready = None
                buf = b""
            buf = buf[-256:]


async def _start_node(
    nursery: trio.Nursery,
    name: str,
    run_dir: Path,
    proc: Proc,
    timeout: float,
) -> None:
    """Wait until node ``name`` (forked already) is READY."""
    ready = trio.Event()
    log = run_dir / f"node-{name}.log"
    output = proc.open_output()
    assert output is not None
    # -v / -vv: the node's log lines on the terminal too, as they come
    echo = f"[{name}] " if logging.getLogger().isEnabledFor(logging.INFO) else ""
    nursery.start_soon(_pump_log, output, log, ready, echo)
    async with trio.open_nursery() as waiting:  # until READY, the node's exit, or timeout

        async def exited() -> None:
            await proc.wait()
            waiting.cancel_scope.cancel()

        waiting.start_soon(exited)
        with trio.move_on_after(timeout):
            await ready.wait()
        waiting.cancel_scope.cancel()
    if proc.returncode is not None:
        await trio.sleep(0.05)  # let its last words reach the log
        said = _last_words(log, lines=3)  # e.g. its quantum process's error, then its own
        raise RunError(
            f"node {name} exited with {proc.returncode} before it was ready{said}; see {log}"
        )
    if not ready.is_set():
        raise RunError(f"node {name} was not ready within {timeout} s; see {log}")


async def start_nodes(
    nursery: trio.Nursery,
    nodes: dict[str, Proc],
    run_dir: Path,
    errors: list[str],
    apps: Apps,
) -> None:
    """Wait for every node at once (they were forked together and find each other
    whenever they come up); the first that fails ends the wait, naming itself and its
    log."""

    async def one(name: str, proc: Proc) -> None:
        await _start_node(nursery, name, run_dir, proc, 30.0)
        log = run_dir / f"node-{name}.log"
        nursery.start_soon(_watch_node, name, proc, log, errors, apps)

    async with trio.open_nursery() as starting:
        for name, proc in nodes.items():
            starting.start_soon(one, name, proc)


def _leaves(group: BaseExceptionGroup[BaseException]) -> list[BaseException]:
    """The exceptions in ``group`` and the groups nested in it (one per nursery)."""
    found: list[BaseException] = []
    for exc in group.exceptions:
        found += _leaves(exc) if isinstance(exc, BaseExceptionGroup) else [exc]
    return found


def _last_words(log: Path, lines: int = 1) -> str:
    """The node's last ``lines`` ``qnodeos:`` lines, as ``" (...; ...)"``, or ``""``."""
    try:
        text = log.read_text(errors="replace")
    except OSError:
        return ""
    said = [ln.removeprefix("qnodeos: ") for ln in text.splitlines() if ln.startswith("qnodeos:")]
    return f" ({'; '.join(said[-lines:])})" if said else ""


async def _watch_node(name: str, proc: Proc, log: Path, errors: list[str], apps: Apps) -> None:
    """A node that dies while apps run fails the run; its apps find out at once (their
    sessions end), the others soon (their requests fail), and all get ``APP_GRACE_S``
    to say so before they are stopped."""
    code = await proc.wait()
    await trio.sleep(0.05)  # let its last words reach the log
    why = _last_words(log)
    what = f"was killed by {signal.Signals(-code).name}" if code < 0 else f"exited with {code}"
    errors.append(f"node {name} {what} during the run{why}; see {log}")
    apps.stop_later(f"node {name} died")


def _formatter(module: str) -> Callable[[dict[str, Any]], str] | None:
    try:
        fmt = getattr(importlib.import_module(module), "format_result", None)
    except ImportError:
        return None
    return fmt if callable(fmt) else None


@contextmanager
def app_imports(path: str | None, home: Path | None = None) -> Iterator[None]:
    """Meanwhile, app modules import from the current directory and from the directory
    of the network file ``path`` (none for an embedded network) or ``home``, ahead of
    the rest of ``sys.path``, as with ``python -m`` from there: a researcher's own
    ``apps/`` beside the network file needs no ``PYTHONPATH``. Apps are checked
    (``check_modules``) and forked (they inherit ``sys.path``, then import their
    module) inside; the entries are taken out again after."""
    dirs = [os.getcwd()]
    if path and Path(path).is_file():  # not an embedded network's name
        dirs.append(str(Path(path).resolve().parent))
    if home is not None:
        dirs.append(str(home))
    added = [d for d in dict.fromkeys(dirs) if d not in sys.path]
    sys.path[:0] = added
    try:
        yield
    finally:
        for d in added:
            if d in sys.path:
                sys.path.remove(d)


def check_modules(cfg: NetworkConfig) -> None:
    """Every app's module can be found and its ``main`` called with the app's args
    (before any node starts): else a ConfigError naming the app and what is wrong (the
    nearest module name; the keyword ``main`` does not take, or its wrong type)."""
    for i, app in enumerate(cfg.apps):
        try:
            found = importlib.util.find_spec(app.module) is not None
        except (ImportError, ValueError):
            found = False
        if found:
            _check_main(cfg, i)
            continue
        parent, _, _ = app.module.rpartition(".")
        try:
            where = importlib.import_module(parent).__path__ if parent else None
            names = [
                f"{parent}.{m.name}" if parent else m.name for m in pkgutil.iter_modules(where)
            ]
        except (ImportError, AttributeError):
            names = []
        near = difflib.get_close_matches(app.module, names, n=1)
        hint = f" (did you mean {near[0]!r}?)" if near else ""
        raise ConfigError(f"{cfg.source}: apps[{i}].module: no module named {app.module!r}{hint}")


def _check_main(cfg: NetworkConfig, i: int) -> None:
    """App ``i``'s module imports and its ``main`` takes the app's args."""
    app = cfg.apps[i]
    where = f"{cfg.source}: apps[{i}] ({app.name}: {app.module})"
    try:
        main = getattr(importlib.import_module(app.module), "main", None)
    except Exception as exc:  # the user's module failed to import: say so, start nothing
        raise ConfigError(f"{where}: importing it failed: {type(exc).__name__}: {exc}") from None
    if main is None:
        raise ConfigError(f"{where}: the module has no `main`")
    try:
        check_main(main, app.args)
    except TypeError as exc:
        raise ConfigError(f"{where}: {exc}") from None


def make_run_dir(name: str, run_dir_arg: str | Path | None) -> Path:
    """The run directory, made: ``run_dir_arg``, or ./qnodeos-runs/NAME-TIME-PID. One
    that holds an earlier run is refused (its logs and timeline would mix with this
    run's)."""
    stamp = time.strftime("%Y%m%d-%H%M%S")
    run_dir = Path(run_dir_arg or Path("qnodeos-runs") / f"{name}-{stamp}-{os.getpid()}")
    if run_dir.is_dir() and any(run_dir.iterdir()):
        raise ConfigError(
            f"--run-dir {run_dir}: holds an earlier run; name a new directory (or remove it)"
        )
    run_dir.mkdir(parents=True, exist_ok=True)
    return run_dir


def prepare(
    path: str | None, run_dir_arg: str | None, settings: list[str] | None = None
) -> tuple[NetworkConfig, Path, Path, dict[str, str]]:
    """Parse the network (with ``settings``, ``--set KEY=VALUE``, applied), make the
    run directory (with a copy of the network file), and the environment for children:
    (network, run dir, network file to use, env). Nodes read the original file, so
    paths in it (``keys``) mean what they meant there; with settings they read the
    copy, whose ``keys`` is made absolute."""
    text, source, path = network_text(path)
    if settings:
        text = overrides.applied(text, source, path, settings)
        path, source = None, f"{source} with --set"
    cfg = parse_network(text, source)
    check_modules(cfg)
    run_dir = make_run_dir(cfg.name, run_dir_arg)
    copy = run_dir / "network.toml"
    copy.write_text(text)
    net_file = Path(path).resolve() if path else copy.resolve()
    sock_dir = tempfile.mkdtemp(prefix="qn-")  # short: ipc paths are limited to ~100 chars
    env = {
        **os.environ,
        "QNODEOS_NETWORK": str(net_file),
        "QNODEOS_RUNTIME_DIR": sock_dir,
        ENV: str(run_dir.resolve()),  # each node records its device's timeline there
    }
    return cfg, run_dir, net_file, env


def run(
    path: str | None,
    as_json: bool,
    run_dir_arg: str | None,
    timeout: float,
    settings: list[str] | None = None,
    quiet: bool = False,
    show: bool = True,
) -> int:
    """``qnodeos run``: prepare the run, fork every node and app, run them under trio."""
    with app_imports(path):
        cfg, run_dir, net_file, env = prepare(path, run_dir_arg, settings)
        for node in cfg.nodes.values():
            plain = node.plaintext_warning()
            if plain is not None and not quiet:
                print(f"qnodeos: warning: {plain}", file=sys.stderr)
        forks.preload()
        nodes: dict[str, Proc] = {}
        app_procs: dict[str, Proc] = {}
        try:
            for name in cfg.nodes:
                nodes[name] = forks.fork_node(name, net_file, env)
            for a in cfg.apps:
                argv = [a.module, a.node, "--name", a.name, "--args", json.dumps(a.args)]
                argv += ["--result", str(run_dir / f"app-{a.name}.json")]
                app_env = {**env, PROGRESS_ENV: str(progress_file(run_dir, a.name))}
                app_procs[a.name] = forks.fork_app(argv, app_env, run_dir / f"app-{a.name}.log")
        except BaseException:
            for proc in (*nodes.values(), *app_procs.values()):
                proc.kill()
            shutil.rmtree(env["QNODEOS_RUNTIME_DIR"], ignore_errors=True)
            raise
        return trio.run(
            run_network, cfg, run_dir, env, nodes, app_procs, as_json, timeout, quiet, show
        )


def progress_file(run_dir: Path, app: str) -> Path:
    """Where app ``app`` reports its progress ($QNODEOS_PROGRESS) and the launcher reads it."""
    return run_dir / f"progress-{app}.jsonl"


async def run_network(
    cfg: NetworkConfig,
    run_dir: Path,
    env: dict[str, str],
    nodes: dict[str, Proc],
    app_procs: dict[str, Proc],
    as_json: bool,
    timeout: float,
    quiet: bool = False,
    show: bool = True,
) -> int:
    """Run forked ``nodes`` and (waiting) ``app_procs`` to the end; the exit status.
    Unless ``quiet``, each app's progress is shown on stderr meanwhile; unless not
    ``show``, the results are printed (they are in the run dir's results.json)."""
    results: dict[str, Any] = {}
    meta = run_meta(cfg, (run_dir / "network.toml").read_bytes())
    procs = list(nodes.values())
    errors: list[str] = []
    apps = Apps()
    interrupted = False
    try:
        async with trio.open_nursery() as nursery:
            with trio.fail_after(timeout):
                await start_nodes(nursery, nodes, run_dir, errors, apps)
                if not as_json and show:
                    print(
                        f"qnodeos: network {cfg.name!r}: {len(cfg.nodes)} node(s) up; "
                        f"running {len(cfg.apps)} app(s); run dir {run_dir}",
                        flush=True,
                    )
                lines = [
                    AppLine(a.name, f"{a.module} on {a.node}", progress_file(run_dir, a.name))
                    for a in cfg.apps
                ]
                view = ProgressView(lines, None if quiet else sys.stderr)
                if not quiet:
                    nursery.start_soon(view.run)
                run_app = partial(_run_app, run_dir=run_dir, results=results, apps=apps, view=view)
                await apps.run(
                    [
                        partial(run_app, a.name, a.module, a.node, app_procs[a.name])
                        for a in cfg.apps
                    ]
                )
            nursery.cancel_scope.cancel()
    except* KeyboardInterrupt:
        errors.append("interrupted (Ctrl-C)")
        interrupted = True
    except* trio.TooSlowError:
        errors.append(f"run did not finish within {timeout} s")
    except* RunError as group:
        errors.extend(str(e) for e in _leaves(group))
    finally:
        await stop_all([*app_procs.values(), *procs])
        shutil.rmtree(env["QNODEOS_RUNTIME_DIR"], ignore_errors=True)
        if errors:
            results["_error"] = "; ".join(errors)
        nodes_util, counts = summarize(run_dir, list(cfg.nodes))
        if nodes_util:
            results["_nodes"] = nodes_util
        warnings = lag_warnings(cfg, nodes_util)
        results["_meta"] = {**meta, "ended": _now(), "records": counts, "warnings": warnings}
        (run_dir / "results.json").write_text(json.dumps(results, indent=2))
    status = 1 if errors or any("error" in r for k, r in results.items() if k != "_error") else 0
    if interrupted:
        status = 130
    if not show:
        return status
    if as_json:
        print(json.dumps(results, indent=2))
    else:
        print_results(cfg, results)
    for warning in results["_meta"]["warnings"]:
        print(f"qnodeos: warning: {warning}", file=sys.stderr)
    if "_error" in results:
        print(f"qnodeos: error: {results['_error']}", file=sys.stderr)
    return status


async def stop_all(procs: list[Proc]) -> None:
    """SIGTERM every process left (a node stops its own quantum process), SIGKILL
    after 5 s."""
    for proc in procs:
        if proc.returncode is None:
            proc.terminate()
    with trio.move_on_after(5) as cs:
        cs.shield = True
        for proc in procs:
            await proc.wait()
    for proc in procs:
        if proc.returncode is None:
            proc.kill()


APP_GRACE_S = 10.0  # after an app fails, the others get this long before they are stopped


class Apps:
    """The apps of a run. When one fails or a node dies, the others (often waiting for
    it) get ``APP_GRACE_S`` to finish before they are stopped; once every app has
    ended, no grace is waited for."""

    def __init__(self) -> None:
        self.scope = trio.CancelScope()
        self.reason: list[str] = []  # why the apps still running were stopped
        self._graces: trio.Nursery | None = None
        self._pending: list[str] = []

    def stop_later(self, why: str) -> None:
        if self._graces is None:
            self._pending.append(why)
        else:
            self._graces.start_soon(self._grace, why)

    async def _grace(self, why: str) -> None:
        await trio.sleep(APP_GRACE_S)
        self.reason.append(f"{why} and this one had not ended {APP_GRACE_S:.0f} s later")
        self.scope.cancel()

    async def run(self, starters: list[Callable[[], Awaitable[None]]]) -> None:
        async with trio.open_nursery() as graces:
            self._graces = graces
            for why in self._pending:
                graces.start_soon(self._grace, why)
            with self.scope:
                async with trio.open_nursery() as apps:
                    for start in starters:
                        apps.start_soon(start)
            graces.cancel_scope.cancel()


async def _run_app(
    name: str,
    module: str,
    node: str,
    proc: Proc,
    *,
    run_dir: Path,
    results: dict[str, Any],
    apps: Apps,
    view: ProgressView,
) -> None:
    """Run one app (forked, waiting) to its end; if it fails, the others get a grace
    period."""
    result_file = run_dir / f"app-{name}.json"
    log = run_dir / f"app-{name}.log"
    try:
        await _app_process(name, module, node, proc, result_file, log, results)
    finally:
        if name not in results:
            why = apps.reason[0] if apps.reason else "the run was stopped"
            results[name] = {"node": node, "module": module, "error": f"stopped: {why}; see {log}"}
    err = results[name].get("error")
    view.ended(
        name,
        "done" if err is None else f"failed: {err}" + ("" if "see " in err else f"; see {log}"),
    )
    if err is not None:
        apps.stop_later(f"app {name} failed")


async def _app_process(
    name: str,
    module: str,
    node: str,
    proc: Proc,
    result_file: Path,
    log: Path,
    results: dict[str, Any],
) -> None:
    proc.go()
    try:
        await proc.wait()
    finally:
        if proc.returncode is None:  # the run is being stopped: so is the app
            proc.terminate()
            with trio.CancelScope(shield=True), trio.move_on_after(5):
                await proc.wait()
            proc.kill()
    try:
        text = await trio.Path(result_file).read_text()
        results[name] = {"node": node, "module": module, **json.loads(text)}
    except (OSError, ValueError):
        results[name] = {
            "node": node,
            "module": module,
            "error": f"app exited with {proc.returncode} and no result; see {log}",
        }


def run_meta(cfg: NetworkConfig, text: bytes) -> dict[str, Any]:
    """What a run was: qnodeos version, the network file's hash, every seed, when,
    where, and the command line."""
    import hashlib
    import platform

    from qnodeos.version import __version__

    return {
        "version": __version__,
        "network": cfg.name,
        "network_sha256": hashlib.sha256(text).hexdigest(),
        "seeds": {
            "nodes": {n: c.seed for n, c in cfg.nodes.items()},
            "links": {"-".join(lk.nodes): lk.seed for lk in cfg.links},
            "apps": {a.name: a.args.get("seed") for a in cfg.apps},
        },
        "started": _now(),
        "host": platform.node(),
        "python": platform.python_version(),
        "argv": sys.argv,
    }


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S%z")


def print_results(cfg: NetworkConfig, results: dict[str, Any]) -> None:
    for app in cfg.apps:
        r = results.get(app.name)
        if r is None:
            continue
        print(f"\n== {app.name} on {app.node} ({app.module})")
        if "error" in r:
            print(f"   FAILED: {r['error']}")
            continue
        fmt = _formatter(app.module)
        print(fmt(r["result"]) if fmt else json.dumps(r["result"], indent=2))
