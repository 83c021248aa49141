"""What qnodeos run shows of an app's progress (testbed/progress.py), and the SDK side
(qnodeos/sdk/progress.py), without processes."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from qnodeos.sdk import progress
from qnodeos.testbed.progress import AppLine, ProgressView


def test_a_line_reads_reports_and_gives_rate_and_eta(tmp_path: Path) -> None:
    f = tmp_path / "p.jsonl"
    line = AppLine("a", "apps.x on n", f)
    line.read()  # no file yet: nothing
    assert line.text() == "running"
    rows = [{"t": 100.0, "done": 10, "total": 110, "unit": "pairs"}]
    f.write_text(json.dumps(rows[0]) + "\nnot json\n" + '{"t": 102.0, "done": "many"}\n')
    line.read()
    assert line.text() == "10/110 pairs"  # one report: no rate yet; garbage ignored
    with f.open("a") as out:
        out.write(json.dumps({"t": 104.0, "done": 50, "total": 110, "unit": "pairs"}) + "\n")
        out.write('{"t": 105.0, "do')  # half a line: read when it is whole
    line.read()
    assert line.text() == "50/110 pairs, 10/s, ETA 6 s"
    with f.open("a") as out:
        out.write('ne": 60, "total": 110, "unit": "pairs"}\n')
    line.read()
    assert line.done == 60
    line.ended = "done"
    assert line.state() == "done (60/110 pairs, 10/s)"  # no ETA once it ended


def test_plain_mode_prints_changes_and_ends(tmp_path: Path) -> None:
    f = tmp_path / "p.jsonl"
    f.write_text(json.dumps({"t": 1.0, "done": 3, "total": None, "unit": ""}) + "\n")
    out = io.StringIO()
    view = ProgressView([AppLine("a", "m on n", f), AppLine("b", "m on n", tmp_path / "x")], out)
    assert not view.tty
    view.quiet_at -= 60
    view._plain()
    view.ended("b", "failed: ValueError: bad; see run/app-b.log")
    text = out.getvalue()
    assert "] a: 3\n" in text
    assert "still running: b (no progress reported)" in text
    assert "] b: failed: ValueError: bad; see run/app-b.log" in text


def test_the_sdk_writes_reports_only_when_asked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    progress.Reporter(None).report(1, 2, "x")  # no $QNODEOS_PROGRESS: nothing, no error
    path = tmp_path / "p.jsonl"
    r = progress.Reporter(str(path))
    for i in range(1000):
        r.report(i, 1000, "pairs")  # at most every 0.2 s...
    r.report(1000, 1000, "pairs")  # ...and always the last one
    rows = [json.loads(x) for x in path.read_text().splitlines()]
    assert rows[0]["done"] == 0 and rows[-1]["done"] == 1000 and len(rows) < 10


def test_an_app_writing_megabytes_of_reports_costs_a_bounded_read(tmp_path: Path) -> None:
    f = tmp_path / "p.jsonl"
    row = json.dumps({"t": 1.0, "done": 1, "total": 9, "unit": "x" * 1000}) + "\n"
    f.write_text(row * 5000 + json.dumps({"t": 2.0, "done": 7, "total": 9}) + "\n")
    line = AppLine("a", "m on n", f)
    line.read()
    assert line.done == 7 and line.unit == "" and len(line.recent) < 100


def test_a_view_driven_by_ticks_draws_its_table_and_the_simulated_time(tmp_path: Path) -> None:
    """A deterministic run ticks the view from trio's loop (open, tick, close), with
    its simulated clock shown next to the wall time."""
    f = tmp_path / "p.jsonl"
    f.write_text(json.dumps({"t": 1.0, "done": 3, "total": 9, "unit": "pairs"}) + "\n")
    out = io.StringIO()
    view = ProgressView([AppLine("a", "m on n", f)], out, tty=True, simulated=lambda: 12.5)
    view.open()
    view.tick()
    view.ended("a", "done")
    view.close()
    text = out.getvalue()
    assert "12.5 s simulated" in text and "done (3/9 pairs)" in text and "m on n" in text
    plain = io.StringIO()
    view = ProgressView([AppLine("a", "m on n", f)], plain, simulated=lambda: 4.0)
    view.tick()
    assert ", 4.0 s simulated] a: 3/9 pairs" in plain.getvalue()
