"""``qnodeos sweep``: run a network at every point of a parameter grid and collect one
table, one row per point.

    qnodeos sweep NET.toml --set links.0.fidelity=0.7:0.99:8 [--set KEY=a,b,c]
                  [--set KEY=VALUE] [--repeat N] [--jobs J] [--deterministic]
                  [--lean] [--retry] [--out DIR]

A swept setting is ``KEY=LO:HI:N`` (N evenly spaced values, both ends included) or
``KEY=a,b,c`` (those values); any other ``KEY=VALUE`` holds for every point. The grid
is every combination of the swept settings, each run ``--repeat`` times (run r > 0
with every seed in the network shifted by 1000 r, so repeats are independent). Before
any run starts, every point's network is built and checked as ``qnodeos run`` would
check it (keys, values, app modules and their ``main``'s arguments): a bad key is one
error, not N failed runs.

Each run is one ``qnodeos run --json`` (or ``--deterministic``) in its own process
(``run_point``), up to ``--jobs`` at once. Every finished run is appended to
``DIR/sweep.jsonl`` at once, tagged with a fingerprint of the network's content and the
fixed settings: a sweep started again runs only what is missing for *this* network
(edit the file, and every point runs again). A failed run is recorded as failed, with
its error; started again, the sweep shows it with its failure count and runs it again
only with ``--retry``. ``DIR/sweep.csv`` is the table, a row per run, rewritten at the
end. A row holds the swept values, the repeat, ``failures`` (earlier failed runs of
that point) and each app's scalar results as ``APP.FIELD`` (``error`` when an app or the
run failed). The printed table gives each point's mean ± standard error over its
repeats. ``--lean`` keeps each run's results and logs but not its timeline and
per-pair/per-block records (about 1.4 MB a point on the CHSH network; 8 kB lean).
"""

from __future__ import annotations

import csv
import hashlib
import itertools
import json
import math
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import FIRST_COMPLETED, Executor, Future, ThreadPoolExecutor, wait
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..config import overrides
from ..config.network import parse_network, parse_toml
from ..errors import ConfigError
from .pointrun import RunHandle, launcher

MAX_POINTS = 10_000
# what --lean removes from a run's directory once the run has ended: the timeline and
# the per-pair, per-block and progress records (results.json keeps the utilization)
BULKY = ("timeline*.json*", "pairs.csv", "blocks.csv", "progress-*.jsonl")


@dataclass(frozen=True)
class Point:
    values: tuple[tuple[str, Any], ...]  # (key, value) of each swept setting
    repeat: int

    @property
    def key(self) -> str:
        return json.dumps([list(self.values), self.repeat])

    def settings(self) -> list[str]:
        """The swept values as ``KEY=VALUE`` settings."""
        return [f"{k}={json.dumps(v)}" for k, v in self.values]


def axis(setting: str) -> tuple[str, list[Any]] | None:
    """``KEY=LO:HI:N`` or ``KEY=a,b,c`` as (key, values); None for a fixed setting."""
    key, eq, text = setting.partition("=")
    key, text = key.strip(), text.strip()
    if not eq or not key:
        raise ConfigError(f"--set {setting!r}: expected KEY=VALUE, KEY=LO:HI:N or KEY=a,b,c")
    if text.count(":") == 2 and not text.startswith(("{", "[", '"')):
        lo, hi, n = (part.strip() for part in text.split(":"))
        try:
            a, b, count = float(lo), float(hi), int(n)
        except ValueError:
            raise ConfigError(f"--set {key}: {text!r} is not LO:HI:N (numbers, N whole)") from None
        if not 1 <= count <= MAX_POINTS:
            raise ConfigError(f"--set {key}: N = {count} not in 1..{MAX_POINTS}")
        step = (b - a) / (count - 1) if count > 1 else 0.0
        return key, [round(a + i * step, 12) for i in range(count)]
    if "," in text and not text.startswith(("{", "[", '"')):
        return key, [overrides.value(v.strip()) for v in text.split(",")]
    return None


def grid(settings: list[str], repeat: int) -> tuple[list[str], list[Point]]:
    """The fixed settings, and every point of the swept ones (times ``repeat``)."""
    fixed: list[str] = []
    axes: list[tuple[str, list[Any]]] = []
    for s in settings:
        ax = axis(s)
        if ax is None:
            fixed.append(s)
        else:
            axes.append(ax)
    if not axes:
        raise ConfigError("nothing to sweep: give at least one --set KEY=LO:HI:N or KEY=a,b")
    if not 1 <= repeat <= MAX_POINTS:
        raise ConfigError(f"--repeat {repeat}: not in 1..{MAX_POINTS}")
    combos = list(itertools.product(*(vals for _, vals in axes)))
    if len(combos) * repeat > MAX_POINTS:
        raise ConfigError(f"{len(combos) * repeat} runs: more than {MAX_POINTS}; sweep less")
    keys = [k for k, _ in axes]
    points = [
        Point(tuple(zip(keys, combo, strict=True)), r) for combo in combos for r in range(repeat)
    ]
    return fixed, points


def fingerprint(text: str, fixed: list[str], deterministic: bool) -> str:
    """What a run's results depend on besides its point: the network's content, the
    fixed settings and the mode (a resumed sweep reuses only runs with the same)."""
    blob = json.dumps([text, fixed, deterministic]).encode()
    return hashlib.sha256(blob).hexdigest()[:16]


def _seed_shifts(text: str, repeat: int, given: list[str] | None = None) -> list[str]:
    """Settings that shift every seed of the network by 1000 * ``repeat``: those of
    ``[nodes.X]``, ``[[links]]``, apps' args and a ``[chain]``'s node and link tables
    (each of its nodes and links takes that seed plus its index, so all move), as the
    file has them once the ``given`` settings (the sweep's and the point's) are applied.

    >>> text = 'chain = { nodes = 3, node = { seed = 1 }, link = { seed = 11 } }'
    >>> _seed_shifts(text, 2)
    ['chain.node.seed=2001', 'chain.link.seed=2011']
    >>> _seed_shifts(text, 1, ["chain.link.seed=5"])
    ['chain.node.seed=1001', 'chain.link.seed=1005']
    """
    if repeat == 0:
        return []
    data = parse_toml(text, "network")
    overrides.apply(data, given or [])
    shift = 1000 * repeat
    out = []
    for name, node in data.get("nodes", {}).items():
        if _seed(node) is not None:
            out.append(f"nodes.{name}.seed={node['seed'] + shift}")
    for i, link in enumerate(data.get("links", [])):
        if _seed(link) is not None:
            out.append(f"links.{i}.seed={link['seed'] + shift}")
    for i, app in enumerate(data.get("apps", [])):
        args = app.get("args", {}) if isinstance(app, dict) else {}
        if _seed(args) is not None:
            out.append(f"apps.{i}.args.seed={args['seed'] + shift}")
    chain = data.get("chain")
    for key in ("node", "link"):
        table = chain.get(key) if isinstance(chain, dict) else None
        seed = _seed(table)
        if seed is not None:
            out.append(f"chain.{key}.seed={seed + shift}")
    return out


def _seed(table: Any) -> int | None:
    """``table``'s whole-number seed, if it is a table with one."""
    seed = table.get("seed") if isinstance(table, dict) else None
    return seed if isinstance(seed, int) and not isinstance(seed, bool) else None


def check_points(
    text: str, source: str, path: str | None, fixed: list[str], points: list[Point]
) -> None:
    """Build every point's network and check it as ``qnodeos run`` would (keys, values,
    app modules and their ``main``'s arguments): a ConfigError naming the point and
    what is wrong, before any run starts. Repeats share their point's keys and values
    (only seeds move), so each combination is checked once."""
    from ..testbed.launcher import app_imports, check_modules

    seen: set[tuple[tuple[str, Any], ...]] = set()
    with app_imports(path):
        for p in points:
            if p.values in seen:
                continue
            seen.add(p.values)
            where = ", ".join(f"{k}={v}" for k, v in p.values)
            try:
                net = overrides.applied(text, source, path, [*fixed, *p.settings()])
                check_modules(parse_network(net, source))
            except ConfigError as exc:
                raise ConfigError(f"sweep point {where}: {exc}") from None


def row(point: Point, results: dict[str, Any], failures: int = 0) -> dict[str, Any]:
    """One table row: the swept values, the repeat, how often this point failed
    before, each app's scalar results."""
    out: dict[str, Any] = dict(point.values)
    out["repeat"] = point.repeat
    out["failures"] = failures
    if "_error" in results:
        out["error"] = results["_error"]
    for app, entry in results.items():
        if app.startswith("_") or not isinstance(entry, dict):
            continue
        if "error" in entry:
            out[f"{app}.error"] = entry["error"]
        prev = None
        for k, v in (entry.get("result") or {}).items():
            if isinstance(v, int | float | str | bool) or v is None:
                out[f"{app}.{k}"] = v
                if k == "stderr" and prev is not None:  # the error of the figure before
                    out[f"{app}.{prev}_stderr"] = v
            prev = k if isinstance(v, int | float) and not isinstance(v, bool) else None
    return out


def failed(r: dict[str, Any]) -> str | None:
    """A row's error (the run's, else the first failed app's), or None."""
    if "error" in r:
        return str(r["error"])
    return next((f"{k}: {v}" for k, v in r.items() if k.endswith(".error")), None)


# runs under way in this process, stopped with it (see ``_stopping``)
_LIVE: set[RunHandle] = set()
_LIVE_LOCK = threading.Lock()


def run_point(
    network: str,
    settings: list[str],
    *,
    deterministic: bool = False,
    run_dir: Path | None = None,
    timeout: float = 600.0,
    lean: bool = False,
    launch: Callable[[list[str]], RunHandle] | None = None,
) -> dict[str, Any]:
    """Run the network once with ``settings`` (``KEY=VALUE``), as one ``qnodeos run
    --json`` in a process of its own; its results (results.json's dict). A run that
    gave no results gives ``{"_error": ...}`` with its exit status and last line.

    This is the one place a sweep runs a point: it blocks until the run has ended and
    needs nothing from the sweep but its arguments. ``run_dir`` gets the run's
    directory; with ``lean``, only its results and logs are kept. ``launch`` starts the
    command line (``pointrun.launcher``: a child process here, or a task on an
    executor such as a Dask cluster's)."""
    argv = [sys.executable, "-m", "qnodeos", "run", network, "--json", "--quiet"]
    argv += ["--timeout", str(timeout)]
    if deterministic:
        argv.append("--deterministic")
    argv += [a for s in settings for a in ("--set", s)]
    if run_dir is not None:
        shutil.rmtree(run_dir, ignore_errors=True)  # left by a stopped sweep
        argv += ["--run-dir", str(run_dir)]
    proc = (launch or launcher(None))(argv)
    with _LIVE_LOCK:
        _LIVE.add(proc)
    try:
        stdout, stderr = proc.communicate()
    finally:
        with _LIVE_LOCK:
            _LIVE.discard(proc)
    if lean and run_dir is not None:
        for pattern in BULKY:
            for f in run_dir.glob(pattern):
                f.unlink()
    try:
        results: dict[str, Any] = json.loads(stdout)
    except ValueError:
        tail = stderr.strip().splitlines()[-1:] or ["no output"]
        return {"_error": f"run exited with {proc.returncode}: {tail[0]}"}
    return results


@dataclass
class _Log:
    """What ``sweep.jsonl`` holds for this network: finished rows, failure counts."""

    done: dict[str, dict[str, Any]]
    failures: dict[str, int]
    last_failed: dict[str, dict[str, Any]]
    other: int  # runs recorded for another network content or settings


def _read_log(log: Path, fp: str) -> _Log:
    out = _Log({}, {}, {}, 0)
    if not log.exists():
        return out
    for line in log.read_text().splitlines():
        try:
            rec = json.loads(line)
            key, r = rec["point"], rec["row"]
            if rec.get("network") != fp:
                out.other += 1
            elif rec.get("failed"):
                out.failures[key] = out.failures.get(key, 0) + 1
                out.last_failed[key] = r
            else:
                out.done[key] = r
        except (ValueError, KeyError, TypeError):
            continue  # a line cut short when the sweep was stopped
    return out


def run_sweep(
    network: str | None,
    settings: list[str],
    *,
    repeat: int = 1,
    jobs: int = 1,
    deterministic: bool = False,
    out_dir: str | Path = "sweep",
    timeout: float = 600.0,
    retry: bool = False,
    lean: bool = False,
    say: Callable[[str], None] = lambda s: print(s, file=sys.stderr, flush=True),
    executor: Executor | None = None,
) -> list[dict[str, Any]]:
    """Run the sweep (resuming from ``out_dir``); the table's rows, a row per run, in
    grid order. Points that failed before are run again only with ``retry``. With
    ``executor`` (any ``concurrent.futures.Executor``, e.g. a Dask client's) each run
    is a task on it, still at most ``jobs`` at once (see ``pointrun``)."""
    from ..config.defaults import network_text

    if not 1 <= jobs <= 64:
        raise ConfigError(f"--jobs {jobs}: not in 1..64")
    fixed, points = grid(settings, repeat)
    text, source, path = network_text(network)
    parse_network(text, source)  # a bad file: one clear error, not N runs
    check_points(text, source, path, fixed, points)
    fp = fingerprint(text, fixed, deterministic)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    log = out / "sweep.jsonl"
    known = _read_log(log, fp)
    todo = [p for p in points if p.key not in known.done and (retry or p.key not in known.failures)]
    kept = [p for p in points if p.key in known.failures and p not in todo]
    for p in kept:
        known.done[p.key] = {**known.last_failed[p.key], "failures": known.failures[p.key]}
    note = f", {known.other} of another network or settings" if known.other else ""
    note += f"; {len(kept)} failed before, not rerun (--retry reruns them)" if kept else ""
    say(
        f"sweep: {len(points)} run(s), {len(points) - len(todo) - len(kept)} already in "
        f"{log}{note}, {len(todo)} to go, {jobs} at a time"
    )
    index = {p.key: i for i, p in enumerate(points)}
    launch = launcher(executor)
    start = time.monotonic()

    def one(p: Point) -> tuple[dict[str, Any], float]:
        t0 = time.monotonic()
        given = [*fixed, *p.settings()]
        sets = [*given, *_seed_shifts(text, p.repeat, given)]  # the seeds as given, shifted
        where = out / f"run-{index[p.key]:05d}"
        results = run_point(
            network or "default",
            sets,
            deterministic=deterministic,
            run_dir=where,
            timeout=timeout,
            lean=lean,
            launch=launch,
        )
        return row(p, results, known.failures.get(p.key, 0)), time.monotonic() - t0

    pool = ThreadPoolExecutor(max_workers=jobs, thread_name_prefix="sweep")
    with log.open("a") as sink, _stopping(pool):
        started = {pool.submit(one, p): p for p in todo}
        pending: set[Future[tuple[dict[str, Any], float]]] = set(started)
        while pending:
            finished, pending = wait(pending, timeout=0.5, return_when=FIRST_COMPLETED)
            for fut in finished:
                p = started[fut]
                r, took = fut.result()
                error = failed(r)
                if error is not None:
                    r["failures"] += 1
                known.done[p.key] = r
                rec = {"point": p.key, "network": fp, "failed": error is not None, "row": r}
                sink.write(json.dumps(rec) + "\n")
                sink.flush()
                what = ", ".join(f"{k}={v}" for k, v in p.values) + f", repeat {p.repeat}"
                state = f"failed: {error}" if error is not None else "done"
                say(
                    f"sweep: [{time.monotonic() - start:6.1f} s] {len(known.done)}/"
                    f"{len(points)} {what}: {state} ({took:.1f} s)"
                )
    rows = [known.done[p.key] for p in points]
    _write_csv(out / "sweep.csv", rows)
    return rows


@contextmanager
def _stopping(pool: ThreadPoolExecutor) -> Iterator[None]:
    """Stopped (Ctrl-C) or failed: stop the runs under way too (they are lost, and not
    recorded: the next start runs them again)."""
    try:
        yield
    finally:
        pool.shutdown(wait=False, cancel_futures=True)
        with _LIVE_LOCK:
            live = list(_LIVE)
        for proc in live:
            proc.send_signal(signal.SIGINT)  # as Ctrl-C: each run cleans up after itself
        for proc in live:
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
        pool.shutdown(wait=True)


def _write_csv(path: Path, rows: list[dict[str, Any]]) -> None:
    cols: list[str] = []
    for r in rows:
        cols += [c for c in r if c not in cols]
    with path.open("w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=cols)
        w.writeheader()
        w.writerows(rows)


def _number(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool)


def aggregate(rows: list[dict[str, Any]], swept: list[str]) -> list[dict[str, Any]]:
    """One row per point: each numeric result's mean over the point's repeats that did
    not fail, with ``FIELD_stderr`` its standard error (the sample standard deviation
    over √n; with one repeat, the app's own error bar if it gives one); ``runs`` and
    ``failed`` count the repeats, ``failures`` sums the failed runs, ``error`` is the
    last failed repeat's error.

    >>> rows = [{"f": 0.9, "repeat": r, "failures": 0, "a.S": s} for r, s in
    ...         enumerate([2.0, 2.5, 3.0])]
    >>> (point,) = aggregate(rows, ["f"])
    >>> point["a.S"], round(point["a.S_stderr"], 4), point["runs"]
    (2.5, 0.2887, 3)
    """
    groups: dict[tuple[Any, ...], list[dict[str, Any]]] = {}
    for r in rows:
        groups.setdefault(tuple(r.get(k) for k in swept), []).append(r)
    out = []
    for key, group in groups.items():
        good = [r for r in group if failed(r) is None]
        agg: dict[str, Any] = dict(zip(swept, key, strict=True))
        agg["runs"] = len(group)
        agg["failed"] = len(group) - len(good)
        agg["failures"] = sum(r.get("failures", 0) for r in group)
        cols = [c for r in good for c, v in r.items() if _number(v)]
        for c in dict.fromkeys(cols):
            if c in swept or c in ("repeat", "failures") or c.endswith("stderr"):
                continue
            vals = [float(r[c]) for r in good if _number(r.get(c))]
            mean = sum(vals) / len(vals)
            agg[c] = mean
            if len(vals) > 1 and len(set(vals)) > 1:  # a constant needs no error bar
                var = sum((v - mean) ** 2 for v in vals) / (len(vals) - 1)
                agg[f"{c}_stderr"] = math.sqrt(var / len(vals))
            elif len(vals) == 1 and _number(good[0].get(f"{c}_stderr")):
                agg[f"{c}_stderr"] = float(good[0][f"{c}_stderr"])
        bad = [failed(r) for r in group if failed(r) is not None]
        if bad:
            agg["error"] = bad[-1]
        out.append(agg)
    return out


def table(rows: list[dict[str, Any]], swept: list[str]) -> str:
    """The sweep as aligned text, a line per point: swept values, then each numeric
    result as mean ± standard error over the point's repeats (see ``aggregate``), the
    repeats and failures when there are any, and a failed point's error."""
    points = aggregate(rows, swept)
    cols: list[str] = []
    for r in points:
        for c, v in r.items():
            if c in swept or c in cols or c in ("runs", "failed", "failures"):
                continue
            if _number(v) and not c.endswith("stderr"):
                cols.append(c)
    extra = []
    if any(r["runs"] > 1 for r in points):
        extra.append("runs")
    if any(r["failures"] for r in points):
        extra.append("failures")
    errors = ["error"] if any("error" in r for r in points) else []
    head = [*swept, *extra, *cols, *errors]
    lines = [head]
    for r in points:
        cells = [str(r.get(k, "")) for k in swept]
        cells += [
            str(r["runs"] - r["failed"]) + "/" + str(r["runs"])
            if c == "runs"
            else str(r["failures"])
            for c in extra
        ]
        for c in cols:
            v, e = r.get(c), r.get(f"{c}_stderr")
            cells.append(
                "" if v is None else f"{v:.4g}" + (f" ± {e:.2g}" if isinstance(e, float) else "")
            )
        if errors:
            cells.append(r.get("error", ""))
        lines.append(cells)
    widths = [max(len(x[i]) for x in lines if i < len(x)) for i in range(len(head))]
    return "\n".join(
        "  ".join(c.ljust(w) for c, w in zip(x, widths, strict=False)).rstrip() for x in lines
    )
