"""``qnodeos sweep``: run a network at every point of a parameter grid and collect one
table, one row per run.

    qnodeos sweep NET.toml --set links.0.fidelity=0.7:0.99:8 [--set KEY=a,b,c]
                  [--set KEY=VALUE] [--repeat N] [--jobs J] [--deterministic] [--out DIR]

A swept setting is ``KEY=LO:HI:N`` (N evenly spaced values, both ends included) or
``KEY=a,b,c`` (those values); any other ``KEY=VALUE`` holds for every point. The grid
is every combination of the swept settings, each run ``--repeat`` times (run r > 0
with every seed in the network shifted by 1000 r, so repeats are independent). Each
run is one ``qnodeos run --json`` (or ``--deterministic``) in its own process, up to
``--jobs`` at once. Every finished run is appended to ``DIR/sweep.jsonl`` at once, so a
sweep that is stopped and started again with the same arguments runs only what is
missing; ``DIR/sweep.csv`` is the table, rewritten at the end. A row holds the swept
values, the repeat, and each app's scalar results as ``APP.FIELD`` (``error`` when an
app or the run failed).
"""

from __future__ import annotations

import csv
import itertools
import json
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Executor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..config import overrides
from ..config.network import parse_network, parse_toml
from ..errors import ConfigError
from .pointrun import RunHandle, launcher

MAX_POINTS = 10_000


@dataclass(frozen=True)
class Point:
    values: tuple[tuple[str, Any], ...]  # (key, value) of each swept setting
    repeat: int

    @property
    def key(self) -> str:
        return json.dumps([list(self.values), self.repeat])


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


def _seed_shifts(text: str, repeat: int) -> list[str]:
    """Settings that shift every seed of the network by 1000 * ``repeat``."""
    if repeat == 0:
        return []
    data = parse_toml(text, "network")
    out = []
    for name, node in data.get("nodes", {}).items():
        if isinstance(node, dict) and isinstance(node.get("seed"), int):
            out.append(f"nodes.{name}.seed={node['seed'] + 1000 * repeat}")
    for i, link in enumerate(data.get("links", [])):
        if isinstance(link, dict) and isinstance(link.get("seed"), int):
            out.append(f"links.{i}.seed={link['seed'] + 1000 * repeat}")
    for i, app in enumerate(data.get("apps", [])):
        args = app.get("args", {}) if isinstance(app, dict) else {}
        if isinstance(args, dict) and isinstance(args.get("seed"), int):
            out.append(f"apps.{i}.args.seed={args['seed'] + 1000 * repeat}")
    return out


def row(point: Point, results: dict[str, Any]) -> dict[str, Any]:
    """One table row: the swept values, the repeat, each app's scalar results."""
    out: dict[str, Any] = dict(point.values)
    out["repeat"] = point.repeat
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


def run_sweep(
    network: str | None,
    settings: list[str],
    *,
    repeat: int = 1,
    jobs: int = 1,
    deterministic: bool = False,
    out_dir: str | Path = "sweep",
    timeout: float = 600.0,
    say: Callable[[str], None] = lambda s: print(s, file=sys.stderr, flush=True),
    executor: Executor | None = None,
) -> list[dict[str, Any]]:
    """Run the sweep (resuming from ``out_dir``); the table's rows, in grid order.
    With ``executor`` (any ``concurrent.futures.Executor``, e.g. a Dask client's) each
    run is a task on it, still at most ``jobs`` at once (see ``pointrun``)."""
    from ..config.defaults import network_text

    if not 1 <= jobs <= 64:
        raise ConfigError(f"--jobs {jobs}: not in 1..64")
    fixed, points = grid(settings, repeat)
    text, source, _ = network_text(network)
    parse_network(text, source)  # a bad file: one clear error, not N runs
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    log = out / "sweep.jsonl"
    done: dict[str, dict[str, Any]] = {}
    if log.exists():
        for line in log.read_text().splitlines():
            try:
                rec = json.loads(line)
                done[rec["point"]] = rec["row"]
            except (ValueError, KeyError, TypeError):
                continue  # a line cut short when the sweep was stopped
    todo = [p for p in points if p.key not in done]
    say(
        f"sweep: {len(points)} run(s), {len(points) - len(todo)} already in {log}, "
        f"{len(todo)} to go, {jobs} at a time"
    )
    base = [sys.executable, "-m", "qnodeos", "run", network or "default", "--json", "--quiet"]
    base += ["--timeout", str(timeout)]
    if deterministic:
        base.append("--deterministic")
    launch = launcher(executor)
    running: list[tuple[Point, RunHandle, float]] = []
    queue = list(todo)
    start = time.monotonic()
    with log.open("a") as sink, _stopping(running):
        while queue or running:
            while queue and len(running) < jobs:
                p = queue.pop(0)
                sets = [*fixed, *_seed_shifts(text, p.repeat)]
                sets += [f"{k}={json.dumps(v)}" for k, v in p.values]
                argv = [*base, *(a for s in sets for a in ("--set", s))]
                if not deterministic:
                    where = out / f"run-{points.index(p):05d}"
                    shutil.rmtree(where, ignore_errors=True)  # left by a stopped sweep
                    argv += ["--run-dir", str(where)]
                proc = launch(argv)
                running.append((p, proc, time.monotonic()))
            time.sleep(0.05)
            for item in [r for r in running if r[1].poll() is not None]:
                running.remove(item)
                p, proc, t0 = item
                stdout, stderr = proc.communicate()
                try:
                    results = json.loads(stdout)
                except ValueError:
                    tail = stderr.strip().splitlines()[-1:] or ["no output"]
                    results = {"_error": f"run exited with {proc.returncode}: {tail[0]}"}
                r = row(p, results)
                done[p.key] = r
                sink.write(json.dumps({"point": p.key, "row": r}) + "\n")
                sink.flush()
                what = ", ".join(f"{k}={v}" for k, v in p.values) + f", repeat {p.repeat}"
                state = "failed: " + r["error"] if "error" in r else "done"
                say(
                    f"sweep: [{time.monotonic() - start:6.1f} s] {len(done)}/{len(points)} "
                    f"{what}: {state} ({time.monotonic() - t0:.1f} s)"
                )
    rows = [done[p.key] for p in points]
    _write_csv(out / "sweep.csv", rows)
    return rows


@contextmanager
def _stopping(running: list[tuple[Point, RunHandle, float]]) -> Iterator[None]:
    """Stopped (Ctrl-C) or failed: stop the runs under way too (they are lost; the next
    start runs them again)."""
    try:
        yield
    finally:
        for _, proc, _ in running:
            proc.send_signal(signal.SIGINT)  # as Ctrl-C: each run cleans up after itself
        for _, proc, _ in running:
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()


def _write_csv(path: Path, rows: list[dict[str, Any]]) -> None:
    cols: list[str] = []
    for r in rows:
        cols += [c for c in r if c not in cols]
    with path.open("w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=cols)
        w.writeheader()
        w.writerows(rows)


def table(rows: list[dict[str, Any]], swept: list[str]) -> str:
    """The rows as aligned text: swept values, then each numeric result (± its stderr
    when the app gives ``FIELD_stderr`` or ``stderr`` beside one figure)."""
    cols: list[str] = []
    for r in rows:
        for c, v in r.items():
            if c in swept or c == "repeat" or c in cols:
                continue
            if isinstance(v, int | float) and not isinstance(v, bool) and "stderr" not in c:
                cols.append(c)

    def err(r: dict[str, Any], c: str) -> Any:
        return r.get(f"{c}_stderr")

    head = [*swept, "repeat", *cols]
    lines = [head]
    for r in rows:
        cells = [str(r.get(k, "")) for k in swept] + [str(r["repeat"])]
        for c in cols:
            v, e = r.get(c), err(r, c)
            cells.append(
                "" if v is None else f"{v:.4g}" + (f" ± {e:.2g}" if isinstance(e, float) else "")
            )
        if "error" in r:
            cells.append(f"error: {r['error']}")
        lines.append(cells)
    widths = [max(len(x[i]) for x in lines if i < len(x)) for i in range(len(head))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(x, widths, strict=False)) for x in lines)
