"""``qnodeos up NET`` keeps a network's nodes up for apps started elsewhere (other
terminals, notebooks, scripts); ``qnodeos down NAME`` stops them.

``up`` starts every node as ``qnodeos run`` does, in the default runtime directory
($QNODEOS_RUNTIME_DIR or /tmp/qnodeos-UID) so that any app of the same user finds them
through the network file (``QNODEOS_NETWORK=FILE``, or ``sdk.connect(...,
network=FILE)``), prints each node's app endpoint, and waits. Ctrl-C, SIGTERM or
``qnodeos down NAME`` stop every node cleanly (their sockets and lock files go with
them); a node that dies stops the others and ``up`` exits 1, naming it. While it runs,
``RUNTIME_DIR/up-NAME.json`` says where it is (its pid, network file, endpoints).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import sys
import time
from pathlib import Path
from typing import Any

import msgspec
import trio

from qnodeos.config.network import NetworkConfig, runtime_dir
from qnodeos.errors import ConfigError
from qnodeos.lang.messages import ProcId
from qnodeos.runtime import procinfo

from . import forks
from .forks import Proc
from .launcher import Apps, RunError, app_imports, prepare, start_nodes, stop_all


def _state_file(name: str) -> Path:
    return runtime_dir() / f"up-{name}.json"


def up(path: str | None, run_dir_arg: str | None, settings: list[str] | None = None) -> int:
    with app_imports(path):  # its apps are checked, though others run them
        cfg, run_dir, net_file, env = prepare(path, run_dir_arg, settings)
    shutil.rmtree(env["QNODEOS_RUNTIME_DIR"], ignore_errors=True)  # not a private one:
    env["QNODEOS_RUNTIME_DIR"] = str(runtime_dir())  # apps elsewhere must find the nodes
    state = _state_file(cfg.name)
    if state.exists():
        other = _recorded(state)
        if other is not None and procinfo.look(other) in ("alive", "stopped"):
            raise ConfigError(
                f"network {cfg.name!r} is up already (pid {other.pid}); `qnodeos down {cfg.name}`"
            )
    forks.preload()
    nodes: dict[str, Proc] = {}
    try:
        for name in cfg.nodes:
            nodes[name] = forks.fork_node(name, net_file, env)
    except BaseException:
        for proc in nodes.values():
            proc.kill()
        raise
    return trio.run(_serve, cfg, run_dir, net_file, nodes, state)


async def _serve(
    cfg: NetworkConfig, run_dir: Path, net_file: Path, nodes: dict[str, Proc], state: Path
) -> int:
    errors: list[str] = []
    why = ""
    try:
        async with trio.open_nursery() as nursery:
            await start_nodes(nursery, nodes, run_dir, errors, Apps())
            endpoints = {n: c.app_endpoint for n, c in cfg.nodes.items()}
            me = procinfo.me()
            info: dict[str, Any] = {
                "pid": me.pid,
                "proc": msgspec.to_builtins(me),  # pid + start time: a reused pid is not us
                "network": str(net_file),
                "run_dir": str(run_dir),
                "endpoints": endpoints,
            }
            await trio.Path(state).write_text(json.dumps(info, indent=2))
            print(f"qnodeos: network {cfg.name!r} is up ({len(nodes)} node(s)); logs in {run_dir}")
            for n, ep in endpoints.items():
                print(f"  {n}: {ep}")
            print(
                f"apps find them with QNODEOS_NETWORK={net_file} (or sdk.connect(..., "
                f"network=...)); stop with Ctrl-C or `qnodeos down {cfg.name}`",
                flush=True,
            )
            with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
                async for sig in signals:
                    why = signal.Signals(sig).name
                    break
            nursery.cancel_scope.cancel()
    except* RunError as group:
        errors.extend(str(e) for e in group.exceptions)
    finally:
        await stop_all(list(nodes.values()))
        await trio.Path(state).unlink(missing_ok=True)
    for e in errors:
        print(f"qnodeos: error: {e}", file=sys.stderr)
    print(f"qnodeos: network {cfg.name!r} is down" + (f" ({why})" if why else ""), flush=True)
    return 1 if errors else 0


def _recorded(state: Path) -> ProcId | None:
    """The ``up`` process that wrote ``state`` (None if the file does not say, e.g. one
    written by an older qnodeos that recorded a bare pid)."""
    try:
        return msgspec.convert(json.loads(state.read_text())["proc"], ProcId)
    except (OSError, ValueError, KeyError, TypeError, msgspec.ValidationError):
        return None


def down(name: str, timeout: float = 15.0) -> int:
    """Stop the network ``name`` that ``qnodeos up`` keeps up, and wait until it is.

    Only the process that wrote the state file is signalled: it is named by pid and
    start time, and signalled through a pidfd opened before the start time is checked,
    so a pid the OS has since given to another process is never signalled."""
    state = _state_file(name)
    if not state.exists():
        ups = sorted(p.name[3:-5] for p in runtime_dir().glob("up-*.json"))
        known = f"; up now: {', '.join(ups)}" if ups else ""
        raise ConfigError(f"no network {name!r} is up (no {state}){known}")
    proc = _recorded(state)
    if proc is None:
        raise ConfigError(
            f"{state} does not identify the process that keeps network {name!r} up "
            f"(pid and start time); nothing was signalled: stop it by hand, then remove "
            f"the file"
        )
    try:
        fd = os.pidfd_open(proc.pid)
    except ProcessLookupError:
        fd = -1
    try:
        seen = procinfo.look(proc) if fd >= 0 else "gone"
        if seen is None:
            raise ConfigError(
                f"network {name!r} was brought up on another host or pid namespace "
                f"({state}); run `qnodeos down` there"
            )
        if seen == "gone":
            state.unlink(missing_ok=True)
            raise ConfigError(
                f"network {name!r} is not up (its process {proc.pid} is gone; the stale "
                f"{state.name} was removed and nothing was signalled)"
            )
        signal.pidfd_send_signal(fd, signal.SIGTERM)
        if seen == "stopped":
            signal.pidfd_send_signal(fd, signal.SIGCONT)
        end = time.monotonic() + timeout
        while procinfo.look(proc) != "gone" and time.monotonic() < end:
            time.sleep(0.05)
    finally:
        if fd >= 0:
            os.close(fd)
    if procinfo.look(proc) != "gone":
        raise ConfigError(f"network {name!r} (pid {proc.pid}) did not stop within {timeout:g} s")
    print(f"qnodeos: network {name!r} is down")
    return 0
