"""Command line: ``qnodeos node``, ``qnodeos qdevice``, ``qnodeos run``.

- ``qnodeos node NAME [--network FILE]`` runs node NAME: this process is the classical
  process; it starts the quantum process as a child and stops it on exit.
- ``qnodeos qdevice NAME [--network FILE]`` runs only the quantum process (the node
  starts it; run it by hand only to place it elsewhere).
- ``qnodeos run [FILE] [--json] [--run-dir DIR]`` starts every node of a network, runs
  its apps, prints their results and tears everything down. No FILE: the embedded default.
- ``qnodeos keys [FILE] [--dir DIR] [--app NAME]`` makes CURVE key pairs for every node
  and app name of a network (see ``qnodeos.security``).
"""

from __future__ import annotations

import argparse
import logging
import os
import secrets
import signal
import sys
from collections.abc import Sequence
from functools import partial
from pathlib import Path

import trio

from .config import NetworkConfig, load_network, parse_network
from .defaults import default_network_text
from .errors import QNodeOSError

READY = "READY"
TOKEN_ENV = "QNODEOS_QDEVICE_TOKEN"


def _network(path: str | None) -> NetworkConfig:
    return load_network(path) if path else parse_network(default_network_text(), "<default>")


async def _until_signal(scope: trio.CancelScope) -> None:
    with trio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:
        async for _ in signals:
            scope.cancel()
            return


async def _stop_child(proc: trio.Process) -> None:
    """Closing its stdin ends the quantum process's loop; signals only if that fails."""
    if proc.stdin is not None:
        await proc.stdin.aclose()
    with trio.move_on_after(2):
        await proc.wait()
        return
    proc.terminate()
    with trio.move_on_after(2):
        await proc.wait()
        return
    proc.kill()


async def node_main(name: str, network: str | None) -> int:
    from .kernel.service import NodeService

    net = _network(network)
    cfg = net.node(name)
    cmd = [sys.executable, "-m", "qnodeos", "qdevice", name, "--parent-pipe"]
    if network:
        cmd += ["--network", network]
    # The quantum process serves only the classical process that knows this secret.
    token = secrets.token_hex(16)
    env = {**os.environ, TOKEN_ENV: token}
    lost: list[int] = []
    async with trio.open_nursery() as nursery:
        nursery.start_soon(_until_signal, nursery.cancel_scope)
        proc = await nursery.start(
            partial(
                trio.run_process, cmd, check=False, stdin=-1, env=env, deliver_cancel=_stop_child
            )
        )

        delays = {n: net.delay(name, n) for n in net.nodes if n != name}
        svc = NodeService(
            cfg, cfg.peers_of(net), links=net.links_of(name), delays=delays, token=token
        )

        async def watch() -> None:
            lost.append(await proc.wait())
            svc.stop_reason = f"its quantum process exited ({_exit_text(proc.returncode)})"
            print(f"qnodeos: node {name} stops: {svc.stop_reason}", file=sys.stderr, flush=True)
            nursery.cancel_scope.cancel()

        nursery.start_soon(watch)
        with trio.fail_after(30):
            await nursery.start(svc.serve)
        print(
            f"{READY} node {name}: {cfg.device.name} device with {cfg.device.num_qubits} "
            f"qubits; apps connect at {cfg.app_endpoint}",
            flush=True,
        )
    return 1 if lost else 0


def _exit_text(code: int | None) -> str:
    if code is not None and code < 0:
        try:
            return f"killed by {signal.Signals(-code).name}"
        except ValueError:
            pass
    return f"code {code}"


def qdevice_main(name: str, network: str | None, parent_pipe: bool) -> int:
    from .qdevice.realtime import serve_forever

    # With --parent-pipe the node holds the write end of our stdin; it closes when the
    # node exits, even on SIGKILL, so the quantum process never outlives its node.
    net = _network(network)
    cfg = net.node(name)
    links = net.links_of(name)
    serve_forever(
        cfg,
        sys.stdin.fileno() if parent_pipe else None,
        links=links,
        # any quantum process may have to send a state group to any other
        peers={n: c.qpeer_endpoint for n, c in net.nodes.items() if n != name and net.links},
        delays={n: net.delay(name, n) for n in net.nodes if n != name},
        token=os.environ.pop(TOKEN_ENV, ""),
    )
    return 0


def keys_main(network: str | None, folder: str | None, apps: list[str]) -> int:
    """``qnodeos keys``: make the CURVE key pairs a network needs."""
    from .security import make_keys

    net = _network(network)
    if folder is not None:
        root = Path(folder)
    elif net.keys is not None:
        root = net.keys.root
    else:
        base = Path(network).parent if network else Path.cwd()
        root = base / "keys"
    names = set(apps)
    for app in net.apps:  # the example apps register under args.me
        me = app.args.get("me")
        if isinstance(me, str):
            names.add(me)
    made = make_keys(root, net.nodes, sorted(names))
    for path in made:
        print(f"made {path} (secret: {path}_secret)")
    print(f"{len(made)} new key pair(s) in {root}")
    if net.keys is None or net.keys.root != root.resolve():
        print(f'add  keys = "{root}"  at the top of the network file to use them')
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="qnodeos", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="cmd", required=True)
    for cmd in ("node", "qdevice"):
        p = sub.add_parser(cmd)
        p.add_argument("name")
        p.add_argument("--network", help="network file (default: the embedded default)")
        if cmd == "qdevice":
            p.add_argument(
                "--parent-pipe",
                action="store_true",
                help="exit when standard input closes (used by `qnodeos node`)",
            )
    p = sub.add_parser("keys", help="make CURVE key pairs for a network's nodes and apps")
    p.add_argument("network", nargs="?", help="network file (default: the embedded default)")
    p.add_argument("--dir", help="where to put them (default: the file's `keys`, or ./keys)")
    p.add_argument(
        "--app", action="append", default=[], help="also make a key for this app name"
    )
    p = sub.add_parser("run", help="run a whole network and its apps")
    p.add_argument("network", nargs="?", help="network file (default: the embedded default)")
    p.add_argument("--json", action="store_true", help="print results as JSON")
    p.add_argument("--run-dir", help="where results and logs go (default: ./qnodeos-runs/...)")
    p.add_argument("--timeout", type=float, default=600.0, help="give up after this many s")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(name)s: %(message)s")
    try:
        if args.cmd == "node":
            return trio.run(node_main, args.name, args.network)
        if args.cmd == "qdevice":
            return qdevice_main(args.name, args.network, args.parent_pipe)
        if args.cmd == "keys":
            return keys_main(args.network, args.dir, args.app)
        from testbed.launcher import run_network

        return trio.run(run_network, args.network, args.json, args.run_dir, args.timeout)
    except QNodeOSError as exc:
        print(f"qnodeos: error: {exc}", file=sys.stderr)
        return 2
    except BaseExceptionGroup as group:  # from a nursery: one of ours, or a real bug
        found = _first(group, QNodeOSError)
        if found is None:
            raise
        print(f"qnodeos: error: {found}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


def _first(group: BaseExceptionGroup[BaseException], kind: type[Exception]) -> Exception | None:
    for exc in group.exceptions:
        if isinstance(exc, kind):
            return exc
        if isinstance(exc, BaseExceptionGroup):
            inner = _first(exc, kind)
            if inner is not None:
                return inner
    return None
