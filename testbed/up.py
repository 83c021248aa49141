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

import trio

from qnodeos.config.network import NetworkConfig, runtime_dir
from qnodeos.errors import ConfigError

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
        other = json.loads(state.read_text()).get("pid")
        if other and _alive(other):
            raise ConfigError(
                f"network {cfg.name!r} is up already (pid {other}); `qnodeos down {cfg.name}`"
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
            info: dict[str, Any] = {
                "pid": os.getpid(),
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


def down(name: str, timeout: float = 15.0) -> int:
    """Stop the network ``name`` that ``qnodeos up`` keeps up, and wait until it is."""
    state = _state_file(name)
    try:
        pid = int(json.loads(state.read_text())["pid"])
    except (OSError, ValueError, KeyError, TypeError):
        ups = sorted(p.name[3:-5] for p in runtime_dir().glob("up-*.json"))
        known = f"; up now: {', '.join(ups)}" if ups else ""
        raise ConfigError(f"no network {name!r} is up (no {state}){known}") from None
    if not _alive(pid):
        state.unlink(missing_ok=True)
        raise ConfigError(f"network {name!r} is not up (its process {pid} is gone)")
    os.kill(pid, signal.SIGTERM)
    end = time.monotonic() + timeout
    while _alive(pid) and time.monotonic() < end:
        time.sleep(0.05)
    if _alive(pid):
        raise ConfigError(f"network {name!r} (pid {pid}) did not stop within {timeout:g} s")
    print(f"qnodeos: network {name!r} is down")
    return 0


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # a zombie child of ours counts as gone
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        return stat.rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return True
