"""Every bench in one go; results (next to the floors each measured) as one JSON file,
and a comparison with an earlier file.

    python bench/run.py [--out results.json] [--compare OLD.json] [--quick]
                        [--markdown docs/performance.md] [--keep] [--render FILE]

Runs roundtrip.py, pairs.py, teleport.py, device_instr.py, idle.py, e2e.py (end-to-end
measured pairs over 2, 4 and 8 hops) and distil_cpu.py (distilled pairs, deterministic
mode), each with ``--json``, in its own process, one after another, and writes
``{"commit", "host", "benches": {name: {figure: value}}}``. ``--compare OLD.json``
prints each figure next to the old one and their ratio, so two commits can be compared:
run it on each, then compare. Both end with a table of each unit of work (a measured
pair, a kept pair, a teleportation, a block, an end-to-end pair, a distilled pair): its
rate and its CPU per unit summed over every process of the run (bench/cpu.py; e2e.py
from the run's child processes; a distilled pair in deterministic mode: the one
process's CPU, and no rate, since its clock is simulated).
``--markdown FILE`` rewrites the part of FILE between ``<!-- bench:start -->`` and
``<!-- bench:end -->`` with this run's figures (docs/performance.md's latest table).
``--keep`` also saves the run in bench/history/; the part of FILE between
``<!-- history:start -->`` and ``<!-- history:end -->`` is then rewritten as a table of
every kept run, so the history is bench output, not prose. ``--render FILE`` rewrites
both sections from the kept runs without running anything.
"""

from __future__ import annotations

import argparse
import json
import platform
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
BENCHES: dict[str, tuple[list[str], list[str]]] = {  # name -> (full args, quick args)
    "roundtrip": (["--blocks", "3000"], ["--blocks", "500"]),
    "pairs": (["--pairs", "20000"], ["--pairs", "4000"]),
    "teleport": (["--states", "3000"], ["--states", "600"]),
    "device_instr": ([], ["--quick"]),
    "idle": (["--nodes", "16", "--runs", "1"], ["--nodes", "4", "--runs", "1", "--seconds", "5"]),
    "e2e": (
        ["--hops", "2", "4", "8", "--pairs", "3000"],
        ["--hops", "2", "4", "8", "--pairs", "600"],
    ),
    "distil_cpu": (
        ["--case", "e2e-dejmps", "link-kept", "--pairs", "300", "--runs", "3"],
        ["--case", "e2e-dejmps", "link-kept", "--pairs", "100", "--runs", "1"],
    ),
}


def run_one(name: str, args: list[str]) -> dict[str, float]:
    cmd = [sys.executable, str(HERE / f"{name}.py"), *args, "--json"]
    out = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if out.returncode != 0:
        raise SystemExit(f"{name} failed ({out.returncode}):\n{out.stderr[-2000:]}")
    result: dict[str, float] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def commit() -> str:
    git = ["git", "-C", str(HERE.parent), "describe", "--always", "--dirty"]
    return subprocess.run(git, capture_output=True, text=True, check=False).stdout.strip()


def compare(new: dict, old: dict) -> None:
    print(f"{'bench':14} {'figure':28} {'old':>12} {'new':>12} {'new/old':>8}")
    for bench, figures in new["benches"].items():
        for key, value in figures.items():
            before = old.get("benches", {}).get(bench, {}).get(key)
            ratio = f"{value / before:8.2f}" if isinstance(before, int | float) and before else ""
            shown = f"{before:12.4g}" if isinstance(before, int | float) else f"{'-':>12}"
            print(f"{bench:14} {key:28} {shown} {value:12.4g} {ratio}")


# Units of work: (label, bench, rate figure or "", CPU-per-unit figure in us). The
# rate says how fast on this machine now; the CPU per unit (every process of the run,
# from /proc, start-up excluded) says what the work costs, which load barely moves.
UNITS = [
    ("measure-directly pair (M)", "pairs", "m_pairs_per_s", "m_cpu_us_per_pair"),
    ("create-and-keep pair (K)", "pairs", "k_pairs_per_s", "k_cpu_us_per_pair"),
    ("teleportation", "teleport", "teleports_per_s", "cpu_us_per_teleport"),
    ("one-gate block", "roundtrip", "", "block_cpu_us"),
    ("idle node, one second", "idle", "", "idle_cpu_us_per_node_s"),
    ("end-to-end M pair, 2 hops", "e2e", "h2_pairs_per_s", "h2_cpu_us_per_pair"),
    ("end-to-end M pair, 4 hops", "e2e", "h4_pairs_per_s", "h4_cpu_us_per_pair"),
    ("end-to-end M pair, 8 hops", "e2e", "h8_pairs_per_s", "h8_cpu_us_per_pair"),
    # deterministic mode (one process, a mock clock): CPU only, no rate
    ("distilled M pair, e2e DEJMPS (det.)", "distil_cpu", "", "e2e_dejmps_cpu_us_per_pair"),
    ("distilled K pair, link DEJMPS (det.)", "distil_cpu", "", "link_kept_cpu_us_per_pair"),
]


def _num(x: object) -> str:
    return f"{x:.4g}" if isinstance(x, int | float) else "-"


def unit_rows(new: dict, old: dict | None = None) -> list[list[str]]:
    """One row per unit of work: its rate and CPU per unit (old and new with --compare)."""
    rows = []
    for label, bench, rate, cpu in UNITS:
        got = new["benches"].get(bench)
        if got is None:
            continue
        row = [label, _num(got.get(rate)) if rate else "-", _num(got.get(cpu))]
        if old is not None:
            was = old.get("benches", {}).get(bench, {})
            row[1:1] = [_num(was.get(rate)) if rate else "-"]
            row[3:3] = [_num(was.get(cpu))]
        rows.append(row)
    return rows


def print_units(new: dict, old: dict | None = None) -> None:
    head = ["work", "per s", "CPU us/unit"]
    if old is not None:
        head = ["work", "per s (old)", "per s (new)", "CPU us (old)", "CPU us (new)"]
    rows = unit_rows(new, old)
    if not rows:
        return
    widths = [max(len(r[i]) for r in [head, *rows]) for i in range(len(head))]
    print()
    for r in [head, *rows]:
        rest = [c.rjust(w) for c, w in zip(r[1:], widths[1:], strict=True)]
        print("  ".join([r[0].ljust(widths[0]), *rest]))


START, END = "<!-- bench:start -->", "<!-- bench:end -->"
HISTORY = ("<!-- history:start -->", "<!-- history:end -->")
KEPT = HERE / "history"  # every run saved with --keep, one JSON file each


def markdown(results: dict, quick: bool) -> str:
    """This run's figures as a Markdown table, with what it ran on and how."""
    how = "python bench/run.py" + (" --quick" if quick else "")
    lines = [
        f"`{how}` at `{results['commit']}`, {results['started']}, on {results['host']} "
        f"(Python {results['python']}):",
        "",
        "| bench | figure | value |",
        "|---|---|---|",
    ]
    for bench, figures in results["benches"].items():
        for key, value in figures.items():
            lines.append(f"| {bench} | {key} | {value:.4g} |")
    units = unit_rows(results)
    if units:
        lines += ["", "Per unit of work (CPU summed over every process of the run):", ""]
        lines += ["| work | per s | CPU µs per unit |", "|---|---|---|"]
        lines += [f"| {' | '.join(r)} |" for r in units]
    return "\n".join(lines)


def history(runs: list[dict]) -> str:
    """One row per kept run, oldest first: each unit of work's rate and CPU per unit."""
    head = ["started", "commit", "how"]
    for label, _, rate, _ in UNITS:
        head += [f"{label} per s"] if rate else []
        head += [f"{label} CPU µs"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for run in sorted(runs, key=lambda r: r["started"]):
        row = [run["started"][:16].replace("T", " "), f"`{run['commit']}`"]
        row.append("--quick" if run.get("quick") else "full")
        for _, bench, rate, cpu in UNITS:
            got = run["benches"].get(bench, {})
            row += [_num(got.get(rate))] if rate else []
            row += [_num(got.get(cpu))]
        lines.append("| " + " | ".join(row) + " |")
    return "\n".join(lines)


def fill(text: str, marks: tuple[str, str], body: str, where: Path) -> str:
    start, end = marks
    if start not in text or end not in text:
        raise SystemExit(f"{where}: no {start} ... {end} section to fill")
    head, rest = text.split(start, 1)
    _, tail = rest.split(end, 1)
    return f"{head}{start}\n{body}\n{end}{tail}"


def write_markdown(path: Path, latest: dict, kept: Path) -> None:
    """Rewrite FILE's latest-run section from ``latest`` and, if FILE has one, its
    history section from every run kept in ``kept``."""
    text = fill(path.read_text(), (START, END), markdown(latest, latest.get("quick", False)), path)
    if HISTORY[0] in text:
        runs = [json.loads(f.read_text()) for f in sorted(kept.glob("*.json"))]
        text = fill(text, HISTORY, history(runs), path)
    path.write_text(text)


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--out", default="bench-results.json")
    p.add_argument("--compare", help="an earlier results file")
    p.add_argument("--quick", action="store_true", help="shorter runs (less precise)")
    p.add_argument("--only", nargs="*", choices=sorted(BENCHES), help="run only these")
    p.add_argument("--markdown", help="a Markdown file whose bench section to rewrite")
    p.add_argument(
        "--keep", action="store_true", help=f"also save the results in {KEPT} (the history)"
    )
    p.add_argument(
        "--render",
        metavar="FILE",
        help="run nothing: rewrite FILE's sections from the newest kept run and the history",
    )
    a = p.parse_args()
    if a.render:
        kept = sorted(KEPT.glob("*.json"))
        if not kept:
            raise SystemExit(f"no kept runs in {KEPT} (run with --keep first)")
        latest = max((json.loads(f.read_text()) for f in kept), key=lambda r: r["started"])
        write_markdown(Path(a.render), latest, KEPT)
        print(f"updated {a.render} from {len(kept)} kept runs", file=sys.stderr)
        return
    results: dict = {
        "commit": commit(),
        "host": platform.node(),
        "python": platform.python_version(),
        "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "quick": a.quick,
        "benches": {},
    }
    for name, (full, quick) in BENCHES.items():
        if a.only and name not in a.only:
            continue
        print(f"running {name} ...", file=sys.stderr, flush=True)
        results["benches"][name] = run_one(name, quick if a.quick else full)
    Path(a.out).write_text(json.dumps(results, indent=2))
    print(f"wrote {a.out}", file=sys.stderr)
    if a.keep:
        KEPT.mkdir(exist_ok=True)
        stamp = results["started"][:19].replace(":", "")
        (KEPT / f"{stamp}-{results['commit']}.json").write_text(json.dumps(results, indent=2))
    if a.markdown:
        write_markdown(Path(a.markdown), results, KEPT)
        print(f"updated {a.markdown}", file=sys.stderr)
    if a.compare:
        old = json.loads(Path(a.compare).read_text())
        compare(results, old)
        print_units(results, old)
    else:
        for bench, figures in results["benches"].items():
            for key, value in figures.items():
                print(f"{bench:14} {key:28} {value:12.4g}")
        print_units(results)


if __name__ == "__main__":
    main()
