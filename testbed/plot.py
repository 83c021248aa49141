"""``qnodeos plot RUN_DIR``: a run's device timeline and utilization as a figure.

One row per node: what its device did over device time, coloured by kind (each app's
blocks, entanglement rounds, moves; white is idle), and beside it the node's
utilization split the same way. Needs matplotlib (``pip install 'qnodeos[plot]'``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from qnodeos.errors import ConfigError

from .trace import node_spans, utilization

KIND_COLOURS = {"round": "#d62728", "move": "#7f7f7f"}
APP_COLOURS = ["#1f77b4", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf"]


def plot_run(run_dir: Path, out: Path | None = None) -> Path:
    """Draw ``run_dir``'s timeline; returns the file written (default: timeline.png
    in the run directory; .svg and .pdf work too)."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        from matplotlib.patches import Patch
    except ImportError:
        raise ConfigError("qnodeos plot needs matplotlib: pip install 'qnodeos[plot]'") from None
    results = run_dir / "results.json"
    if not results.exists():
        raise ConfigError(f"{run_dir} is not a run directory (no results.json)")
    nodes = [p.name.removeprefix("timeline-").removesuffix("-device.jsonl")
             for p in sorted(run_dir.glob("timeline-*-device.jsonl"))]  # fmt: skip
    if not nodes:
        raise ConfigError(
            f"{run_dir} has no timeline (qnodeos run records one in every run directory)"
        )
    fig, (ax, bars) = plt.subplots(
        1, 2, figsize=(12, 1.2 + 0.8 * len(nodes)), width_ratios=[4, 1], squeeze=True
    )
    apps: dict[str, str] = {}
    shares: list[dict[str, Any]] = []
    for row, node in enumerate(nodes):
        spans, _ = node_spans(run_dir, node)
        for s in spans:
            colour = KIND_COLOURS.get(s["what"])
            if colour is None:
                colour = apps.setdefault(s["app"], APP_COLOURS[len(apps) % len(APP_COLOURS)])
            width = max(s["end"] - s["start"], 0.0) / 1e6
            ax.broken_barh([(s["start"] / 1e6, width)], (row - 0.4, 0.8), color=colour)
        shares.append(utilization(spans))
    ax.set_yticks(range(len(nodes)), nodes)
    ax.set_xlabel("device time (ms)")
    ax.set_title(f"device timeline: {run_dir.name}")
    left = [0.0] * len(nodes)
    parts = [("local_blocks_ns", "blocks", APP_COLOURS[0]), ("entanglement_ns", "entanglement",
             KIND_COLOURS["round"]), ("moves_ns", "moves", KIND_COLOURS["move"])]  # fmt: skip
    for key, label, colour in parts:
        vals = [100 * u[key] / u["elapsed_ns"] if u["elapsed_ns"] else 0.0 for u in shares]
        bars.barh(range(len(nodes)), vals, left=left, color=colour, label=label)
        left = [a + b for a, b in zip(left, vals, strict=True)]
    bars.set_yticks(range(len(nodes)), nodes)
    bars.set_xlim(0, 100)
    bars.set_xlabel("device busy (%)")
    bars.legend(loc="lower right", fontsize="small")
    handles = [Patch(color=c) for c in [*apps.values(), *KIND_COLOURS.values()]]
    ax.legend(handles, [f"app {a}" for a in apps] + ["entanglement", "moves"],
              loc="upper right", fontsize="small")  # fmt: skip
    fig.tight_layout()
    target = out or run_dir / "timeline.png"
    fig.savefig(target)
    plt.close(fig)
    return target


def plot_sweep(sweep_dir: Path, x: str | None, y: list[str], out: Path | None = None) -> Path:
    """Draw result columns ``y`` of a sweep (``sweep.csv``) against swept key ``x``,
    with error bars from ``Y_stderr`` columns; one line per value of the other swept
    keys (averaged over repeats). Defaults: the first swept key that varies, and the
    first result that varies. Where the app gives ``Y_theory`` (its prediction for the
    point), it is drawn as a dashed line beside the points. The legend sits beside the
    axes, off the data. Returns the file written (default sweep.png)."""
    import csv
    import statistics

    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise ConfigError("qnodeos plot needs matplotlib: pip install 'qnodeos[plot]'") from None
    with (sweep_dir / "sweep.csv").open() as f:
        rows = list(csv.DictReader(f))
    if not rows:
        raise ConfigError(f"{sweep_dir}/sweep.csv has no rows")
    cols = list(rows[0])
    swept = cols[: cols.index("repeat")]
    numeric = [
        c
        for c in cols[cols.index("repeat") + 1 :]
        if _numbers(rows, c) and "stderr" not in c and c != "failures"
        and not c.endswith("_theory")
    ]  # fmt: skip
    # default x: a swept key that takes more than one value; default y: the results that
    # vary (a constant such as the rounds asked for is no plot)
    x = x or next((k for k in swept if len({r[k] for r in rows}) > 1), swept[0])
    for key, known, what in ((x, swept, "swept key"), *((c, numeric, "result") for c in y)):
        if key not in known:
            raise ConfigError(
                f"{key!r} is not a {what} of this sweep; use one of {', '.join(known)}"
            )
    varying = [c for c in numeric if len({r[c] for r in rows if r[c] != ""}) > 1]
    y = y or varying[:1] or numeric[:1]
    # a line per value of the other swept keys that vary
    others = [k for k in swept if k != x and len({r[k] for r in rows}) > 1]
    fig, axes = plt.subplots(len(y), 1, figsize=(7.5, 3.2 * len(y)), squeeze=False)
    for ax, col in zip(axes[:, 0], y, strict=True):
        groups: dict[tuple[str, ...], dict[float, list[tuple[float, float]]]] = {}
        theory: dict[tuple[str, ...], dict[float, float]] = {}
        for r in rows:
            if r.get(col, "") == "":
                continue
            label = tuple(r[k] for k in others)
            g = groups.setdefault(label, {})
            err = float(r[f"{col}_stderr"]) if r.get(f"{col}_stderr") else 0.0
            g.setdefault(float(r[x]), []).append((float(r[col]), err))
            if r.get(f"{col}_theory"):  # the app's own prediction for this point
                theory.setdefault(label, {})[float(r[x])] = float(r[f"{col}_theory"])
        for label, pts in groups.items():
            xs = sorted(pts)
            means = [statistics.fmean(v for v, _ in pts[k]) for k in xs]
            errs = [
                (sum(e * e for _, e in pts[k]) ** 0.5) / len(pts[k]) if len(pts[k]) else 0.0
                for k in xs
            ]
            name = ", ".join(f"{k}={v}" for k, v in zip(others, label, strict=True)) or col
            line = ax.errorbar(xs, means, yerr=errs, marker="o", capsize=3, label=name)
            if label in theory:
                tx = sorted(theory[label])
                ax.plot(
                    tx,
                    [theory[label][k] for k in tx],
                    linestyle="--",
                    color=line[0].get_color(),
                    label=f"{name}: theory",
                )
        ax.set_xlabel(x)
        ax.set_ylabel(col)
        if others or theory:  # beside the axes, never over the points
            ax.legend(fontsize="small", loc="upper left", bbox_to_anchor=(1.01, 1.0))
    fig.tight_layout()
    target = out or sweep_dir / "sweep.png"
    fig.savefig(target, bbox_inches="tight")  # the legend beside the axes included
    plt.close(fig)
    return target


def _numbers(rows: list[dict[str, str]], col: str) -> bool:
    try:
        return any(r[col] != "" for r in rows) and all(
            r[col] == "" or float(r[col]) == float(r[col]) for r in rows
        )
    except ValueError:
        return False
