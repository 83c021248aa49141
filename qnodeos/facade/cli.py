"""Command line: ``qnodeos node``, ``qnodeos qdevice``, ``qnodeos run``.

- ``qnodeos node NAME [--network FILE]`` runs node NAME: this process is the classical
  process; it forks the quantum process and stops it on exit (the node's entry point,
  which the launcher and ``qnodeos up`` use too: ``qnodeos.testbed.node``).
- ``qnodeos qdevice NAME [--network FILE]`` runs only the quantum process (the node
  starts it; run it by hand only to place it elsewhere).
- ``qnodeos run [FILE] [--json] [--run-dir DIR]`` starts every node of a network, runs
  its apps, prints their results and tears everything down. No FILE: the embedded default.
- ``qnodeos squidasm SCRIPT.py|FOLDER [ARGS]`` runs a SquidASM script unchanged
  (``qnodeos.squidasm``).
- ``qnodeos keys [FILE] [--dir DIR] [--app NAME]`` makes CURVE key pairs for every node
  and app name of a network (see ``qnodeos.runtime.security``).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import Executor
from contextlib import contextmanager
from pathlib import Path

from ..runtime.blas import before_numpy

if sys.argv[1:2] in (["node"], ["qdevice"]):  # a node's process (`qnodeos node` or
    before_numpy()  # `python -m qnodeos node`): one BLAS thread, set before numpy loads

from ..config.defaults import network_or_default  # noqa: E402
from ..runtime.command import configure_logging, guarded
from ..testbed.node import TOKEN_ENV, qdevice_main, run_node
from ..version import __version__


def keys_main(network: str | None, folder: str | None, apps: list[str]) -> int:
    """``qnodeos keys``: make the CURVE key pairs a network needs."""
    from ..runtime.security import make_keys

    net = network_or_default(network)
    if folder is not None:
        root = Path(folder)
    elif net.keys is not None:
        root = net.keys.root
    else:
        base = Path(network).parent if network else Path.cwd()
        root = base / "keys"
    names = set(apps)
    for app in net.apps:  # each app registers under its name (older files: args.me)
        names.add(app.name)
        me = app.args.get("me")
        if isinstance(me, str):
            names.add(me)
    made = make_keys(root, net.nodes, sorted(names))
    for path in made:
        print(f"made {path} (secret: {path}_secret)")
    print(f"{len(made)} new key pair(s) in {root}")
    if net.keys is None or net.keys.root != root.resolve():
        # the file reads `keys` relative to its own folder, not to where we run
        here = Path(network).resolve().parent if network else Path.cwd()
        shown = os.path.relpath(root.resolve(), here)
        print(f'add  keys = "{shown}"  at the top of the network file to use them')
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The command line: every command and option (README's commands are checked
    against it)."""
    parser = argparse.ArgumentParser(
        prog="qnodeos",
        description="Run quantum network nodes, whole networks and their apps.",
        epilog="Each command has its own help: qnodeos COMMAND --help.",
    )
    parser.add_argument("--version", action="version", version=f"qnodeos {__version__}")
    parser.add_argument(
        "-v", "--verbose", action="count", default=0, help="more log output (-v info, -vv debug)"
    )
    parser.add_argument(
        "--log-json",
        action="store_true",
        help="log as JSON lines (time, level, logger, message), for machines to read",
    )
    parser.add_argument(
        "--log-level", choices=["debug", "info", "warning", "error"], help="log level"
    )
    sub = parser.add_subparsers(dest="cmd")
    helps = {
        "node": "run one node: its classical process, which starts its quantum process",
        "qdevice": "run a node's quantum process alone (qnodeos node starts it for you)",
    }
    for cmd in ("node", "qdevice"):
        p = sub.add_parser(cmd, help=helps[cmd], description=helps[cmd])
        p.add_argument("name", help="the node's name in the network file")
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
    p.add_argument("--app", action="append", default=[], help="also make a key for this app name")
    p = sub.add_parser("run", help="run a whole network and its apps")
    p.add_argument("network", nargs="?", help="network file (default: the embedded default)")
    p.add_argument("--json", action="store_true", help="print results as JSON")
    p.add_argument("--run-dir", help="where results and logs go (default: ./qnodeos-runs/...)")
    p.add_argument("--timeout", type=float, default=600.0, help="give up after this many s")
    p.add_argument("--quiet", action="store_true", help="do not show the apps' progress")
    p.add_argument(
        "--cluster", metavar="ADDRESS", help="spread the nodes over the workers of the Dask "
        "scheduler at ADDRESS, e.g. tcp://head:8786 (docs/cluster.md)"
    )
    p.add_argument(
        "--deterministic",
        action="store_true",
        help="run every node and app in this process on a simulated clock: with the seeds "
        "in the network file, the same results every time (see qnodeos.Network)",
    )
    p.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="change one value of the network for this run, e.g. apps.client.args.k=1200 "
        "or links.0.fidelity=0.9 (repeatable; see qnodeos/config/overrides.py)",
    )
    p = sub.add_parser(
        "netqasm",
        help="run a NetQASM app folder (app_<party>.py, roles.yaml, <party>.yaml) unchanged",
        description="Run a NetQASM SDK app folder as `netqasm simulate --app-dir` would: each "
        "party in its own process on its node; prints each party's returned dict.",
    )
    p.add_argument("app_dir", help="folder with app_<party>.py files")
    p.add_argument(
        "--network",
        help="qnodeos network file for nodes and links (default: the folder's network.yaml, "
        "else one generic node per party and a link between every two)",
    )
    p.add_argument("--fidelity", type=float, help="default network: Werner links of this fidelity")
    p.add_argument("--num", type=int, default=1, help="run the app this many times")
    p.add_argument(
        "--input",
        action="append",
        default=[],
        metavar="PARTY.NAME=VALUE",
        help="an input of one party (over its <party>.yaml), e.g. sender.phi=0.5",
    )
    p.add_argument(
        "--role",
        action="append",
        default=[],
        metavar="PARTY=NODE",
        help="run a party on this node (over roles.yaml), e.g. sender=alice",
    )
    p.add_argument(
        "--states",
        action="store_true",
        help="add the state of each qubit a party still holds when its connection closes",
    )
    p.add_argument("--json", action="store_true", help="print results as JSON")
    p.add_argument("--run-dir", help="where results and logs go (default: ./qnodeos-runs/...)")
    p.add_argument("--timeout", type=float, default=600.0, help="give up after this many s")
    p.add_argument("--quiet", action="store_true", help="do not show the apps' progress")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="as for run")
    p = sub.add_parser(
        "squidasm",
        help="run a SquidASM script (or a folder with run_simulation.py) unchanged",
        description="Run a script written for SquidASM on qnodeos nodes, without NetSquid: "
        "its `import squidasm...` gets qnodeos's SquidASM layer (see docs/squidasm.md).",
    )
    p.add_argument("script", help="the script, or a folder holding run_simulation.py")
    p.add_argument("args", nargs=argparse.REMAINDER, help="arguments for the script")
    sub.add_parser("schema", help="print the network file's JSON Schema (for editors)")
    p = sub.add_parser("up", help="start a network's nodes and keep them up for apps")
    p.add_argument("network", nargs="?", help="network file or embedded name (default: default)")
    p.add_argument("--run-dir", help="where the nodes' logs go (default: ./qnodeos-runs/...)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="as for run")
    p = sub.add_parser("down", help="stop a network that `qnodeos up` keeps up")
    p.add_argument("name", help="the network's name (its `name` key)")
    p = sub.add_parser("sweep", help="run a network over a grid of settings; one table out")
    p.add_argument("network", nargs="?", help="network file or embedded name (default: default)")
    p.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=LO:HI:N|KEY=a,b|KEY=VALUE",
        help="sweep KEY over N values from LO to HI, or over a list; or fix it (repeatable)",
    )
    p.add_argument("--repeat", type=int, default=1, help="runs per point (seeds shifted)")
    p.add_argument(
        "--jobs", type=int, help="runs at once, each its own process (default 1; on a "
        "cluster, as many as its workers' cores allow, at most 64)"
    )
    p.add_argument("--deterministic", action="store_true", help="each run in one process")
    p.add_argument("--out", default="sweep", help="results dir; rerun to resume (default ./sweep)")
    p.add_argument("--timeout", type=float, default=600.0, help="per run, s")
    p.add_argument(
        "--cluster", metavar="ADDRESS", help="run each point as a task on the Dask scheduler "
        "at ADDRESS, e.g. tcp://head:8786 (docs/cluster.md)"
    )
    p.add_argument(
        "--cores", type=int, help="with --cluster: worker cores each run reserves (default: "
        "one per node, one for --deterministic)"
    )
    p.add_argument("--retry", action="store_true", help="run again the points that failed before")
    p.add_argument(
        "--lean",
        action="store_true",
        help="keep each run's results and logs, not its timeline and pair/block records",
    )
    p = sub.add_parser(
        "plot", help="draw a run's device timeline and utilization, or a sweep's results"
    )
    p.add_argument("run_dir", help="a run directory of qnodeos run, or a sweep's --out")
    p.add_argument("--out", help="file to write (.png, .svg, .pdf; default in the directory)")
    p.add_argument("--x", help="sweep: the swept key on the x axis (default: the first)")
    p.add_argument(
        "--y", action="append", default=[], help="sweep: a result column (APP.FIELD; repeatable)"
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.cmd is None:
        parser.print_help()
        return 0
    configure_logging(args.verbose, args.log_json, args.log_level)
    if args.cmd == "node":
        return guarded(lambda: run_node(args.name, args.network))
    if args.cmd == "qdevice":
        # With --parent-pipe whoever started us holds the write end of our stdin; it
        # closes when that process exits, even on SIGKILL.
        stop = sys.stdin.fileno() if args.parent_pipe else None
        token = os.environ.pop(TOKEN_ENV, "")
        return guarded(lambda: qdevice_main(args.name, args.network, stop, token))
    if args.cmd == "keys":
        return guarded(lambda: keys_main(args.network, args.dir, args.app))
    if args.cmd == "plot":
        from ..testbed.plot import plot_run, plot_sweep

        def plot() -> int:
            where, to = Path(args.run_dir), Path(args.out) if args.out else None
            if (where / "sweep.csv").exists():
                out = plot_sweep(where, args.x, args.y, to)
            else:
                out = plot_run(where, to)
            print(f"wrote {out}")
            return 0

        return guarded(plot)
    if args.cmd == "netqasm":
        return guarded(lambda: _netqasm(args))
    if args.cmd == "squidasm":
        from ..squidasm.script import run_script

        return guarded(lambda: run_script(args.script, args.args))
    if args.cmd == "schema":
        from ..config.schema import main as schema_main

        schema_main()
        return 0
    if args.cmd == "up":
        from ..testbed.up import up

        return guarded(lambda: up(args.network, args.run_dir, args.set))
    if args.cmd == "down":
        from ..testbed.up import down

        return guarded(lambda: down(args.name))
    if args.cmd == "sweep":
        from .sweep import run_sweep, table

        def sweep() -> int:
            with _sweep_executor(args) as (executor, jobs):
                rows = run_sweep(
                    args.network,
                    args.set,
                    repeat=args.repeat,
                    jobs=jobs,
                    deterministic=args.deterministic,
                    out_dir=args.out,
                    timeout=args.timeout,
                    retry=args.retry,
                    lean=args.lean,
                    executor=executor,
                )
            swept = [k for s in args.set if (ax := axis(s)) for k in [ax[0]]]
            print(table(rows, swept))
            bad = sum(failed(r) is not None for r in rows)
            print(
                f"\n{len(rows)} run(s), {bad} failed; table in {Path(args.out) / 'sweep.csv'}"
                + ("; --retry runs the failed ones again" if bad else "")
            )
            return 1 if bad else 0

        from .sweep import axis, failed

        return guarded(sweep)
    from ..testbed.launcher import run

    if args.deterministic and args.cluster:
        parser.error("--deterministic runs in one process: it cannot use --cluster")
    if args.deterministic:
        return guarded(
            lambda: _deterministic(
                args.network, args.json, args.timeout, args.set, args.run_dir, args.quiet
            )
        )
    if args.cluster:
        from ..testbed.cluster import run_cluster

        return guarded(
            lambda: run_cluster(
                args.network, args.cluster, args.json, args.run_dir, args.timeout, args.set
            )
        )
    return guarded(
        lambda: run(args.network, args.json, args.run_dir, args.timeout, args.set, args.quiet)
    )


@contextmanager
def _sweep_executor(args: argparse.Namespace) -> Iterator[tuple[Executor | None, int]]:
    """No executor and ``--jobs`` (default 1); with ``--cluster``, a Dask client's
    executor reserving ``--cores`` per run, and ``--jobs`` (default: what fits)."""
    if args.cluster is None:
        yield None, 1 if args.jobs is None else args.jobs
        return
    from ..config.defaults import network_text
    from ..config.network import parse_network
    from . import cluster

    cfg = parse_network(*network_text(args.network)[:2])
    cores = cluster.cores_needed(cfg, args.deterministic) if args.cores is None else args.cores
    with cluster.connect(args.cluster) as client:
        executor, slots = cluster.sweep_executor(client, cores)
        yield executor, min(slots, 64) if args.jobs is None else args.jobs


def _netqasm(args: argparse.Namespace) -> int:
    """``qnodeos netqasm APP_DIR``: the folder's network, run as ``qnodeos run`` runs."""
    import tempfile

    import tomli_w

    from ..netqasm.folder import network_for
    from ..testbed.launcher import run

    net = network_for(
        args.app_dir,
        args.network,
        fidelity=args.fidelity,
        num=args.num,
        states=args.states,
        given=args.input,
        placed=args.role,
    )
    with tempfile.TemporaryDirectory(prefix="qnodeos-netqasm-") as tmp:
        path = Path(tmp) / "network.toml"
        path.write_text(tomli_w.dumps(net))
        return run(str(path), args.json, args.run_dir, args.timeout, args.set, args.quiet)


def _deterministic(
    path: str | None,
    as_json: bool,
    timeout: float,
    settings: list[str] | None = None,
    run_dir: str | None = None,
    quiet: bool = False,
) -> int:
    """``qnodeos run --deterministic``: the network in this process on a simulated
    clock (``qnodeos.Network.run(deterministic=True)``), each app's progress shown as
    by ``run`` (unless ``quiet``), results printed as by ``run`` and kept in a run
    directory as by ``run`` (its logs, as shown on stderr, in ``run.log``); last, how
    much simulated time the run covered."""
    from ..testbed.launcher import app_imports, check_modules, make_run_dir, print_results
    from .api import Network

    net = Network.named(path)
    if settings:
        net = net.set(*settings)
    with app_imports(path):
        check_modules(net.config)
        where = make_run_dir(net.config.name, run_dir)
        if not as_json:
            print(f"qnodeos: network {net.config.name!r}, deterministic; run dir {where}")
        began = time.monotonic()
        with _logged_to(where / "run.log"):
            res = net.run(deterministic=True, timeout=timeout, run_dir=where, quiet=quiet)
        took = time.monotonic() - began
    if as_json:
        print(json.dumps(res.to_dict(), indent=2))
    else:
        print_results(net.config, res.to_dict())
    if not quiet:
        simulated = res.to_dict()["_meta"]["simulated_s"]
        print(
            f"qnodeos: {simulated:.2f} s of simulated time in {took:.2f} s "
            f"({simulated / max(took, 1e-9):.1f}x real time)",
            file=sys.stderr,
        )
    for name, why in res.errors.items():
        print(f"qnodeos: error: {name}: {why}", file=sys.stderr)
    return 0 if res.ok else 1


@contextmanager
def _logged_to(path: Path) -> Iterator[None]:
    """Meanwhile, what is logged (at the level and in the format stderr gets) is also
    written to ``path``, as a real run's nodes keep their logs in the run directory
    (the file is made only if something is logged)."""
    import logging

    root = logging.getLogger()
    handler = logging.FileHandler(path, delay=True)
    if root.handlers:
        handler.setFormatter(root.handlers[0].formatter)
    root.addHandler(handler)
    try:
        yield
    finally:
        root.removeHandler(handler)
        handler.close()
