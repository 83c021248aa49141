"""bench/cpu.py's CPU meter against CPU that is known: a child that burns a measured
amount of CPU (it reports its own process time), and a workload of known cost per unit."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "bench"))
from cpu import Meter, per_unit  # noqa: E402

BURN = """
import os, sys, time
while time.process_time() < float(sys.argv[1]):
    pass
print(time.process_time(), flush=True)
sys.stdin.read()  # stay alive until told, so the meter can read it
"""

pytestmark = pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs /proc")


def test_meter_counts_a_child_and_its_child() -> None:
    # A parent shell whose child burns 0.4 s: the meter, given only the parent, sees it.
    p = subprocess.Popen(
        ["sh", "-c", f'{sys.executable} -c "$0" 0.4', BURN],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    meter = Meter([p.pid])
    try:
        assert p.stdout is not None
        told = float(p.stdout.readline())  # the child's own process time
        seen = meter.read()
        mine = Meter([]).read()  # this process alone
    finally:
        assert p.stdin is not None
        p.stdin.close()
        p.wait()
    # The child's start-up (interpreter import) adds some; clock ticks are 10 ms.
    assert told - 0.02 <= seen - mine <= told + 0.5


def test_per_unit_cancels_fixed_costs() -> None:
    spent = [0.0]

    class Fake(Meter):
        def read(self) -> float:
            return spent[0]

    def work(n: int) -> None:
        spent[0] += 0.25 + n * 1e-4  # a fixed set-up cost plus 100 us per unit

    assert per_unit(Fake([]), work, 1000, 3000) == pytest.approx(1e-4)
    with pytest.raises(ValueError, match="0 < n1 < n2"):
        per_unit(Fake([]), work, 5, 5)


def test_run_py_renders_latest_and_history(tmp_path: Path) -> None:
    import run

    def result(started: str, commit: str, m: float, cpu: float) -> dict:
        pairs = {"m_pairs_per_s": m, "m_cpu_us_per_pair": cpu}
        return {
            "commit": commit,
            "host": "h",
            "python": "3",
            "started": started,
            "quick": True,
            "benches": {"pairs": pairs},
        }

    kept = tmp_path / "kept"
    kept.mkdir()
    for r in (
        result("2026-01-02T00:00:00", "bbb", 200.0, 20.0),
        result("2026-01-01T00:00:00", "aaa", 100.0, 93.0),
    ):
        (kept / f"{r['commit']}.json").write_text(json.dumps(r))
    doc = tmp_path / "perf.md"
    doc.write_text(
        "x\n<!-- bench:start -->\nold\n<!-- bench:end -->\n"
        "<!-- history:start -->\n<!-- history:end -->\ny\n"
    )
    run.write_markdown(doc, result("2026-01-02T00:00:00", "bbb", 200.0, 20.0), kept)
    text = doc.read_text()
    assert "old" not in text and text.startswith("x\n") and text.endswith("y\n")
    assert "| measure-directly pair (M) | 200 | 20 |" in text  # the latest run's units
    history = text.split("<!-- history:start -->")[1]
    assert history.index("`aaa`") < history.index("`bbb`")  # oldest first
    assert "| 100 | 93 |" in history
