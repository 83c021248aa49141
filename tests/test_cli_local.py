"""The command line: qnodeos plot (skipped where matplotlib is not installed), help,
--version."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from qnodeos.facade.cli import main
from qnodeos.testbed.trace import merge


def fake_run(tmp_path: Path) -> Path:
    run = tmp_path / "run"
    run.mkdir()
    device = [
        {"kind": "batch", "seq": 1, "start": 0, "end": 400, "ops": {"h": 1}},
        {"kind": "round", "seq": 2, "peer": "b", "start": 400, "end": 900, "attempts": 5,
         "pairs": 1, "reason": ""},
    ]  # fmt: skip
    kernel = [{"kind": "use", "seq": 1, "what": "block", "app": "x"}]
    (run / "timeline-a-device.jsonl").write_text("".join(json.dumps(r) + "\n" for r in device))
    (run / "timeline-a-kernel.jsonl").write_text("".join(json.dumps(r) + "\n" for r in kernel))
    util = merge(run, ["a"])
    assert util["a"]["busy_ns"] == 900 and util["a"]["per_app"] == {"x": 400}
    (run / "results.json").write_text(json.dumps({"_nodes": {"a": {"utilization": util["a"]}}}))
    return run


def test_plot_writes_the_figure(tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    run = fake_run(tmp_path)
    out = tmp_path / "t.svg"
    assert main(["plot", str(run), "--out", str(out)]) == 0
    assert out.read_text().startswith("<?xml")


def test_plot_of_a_directory_without_a_run_names_the_problem(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pytest.importorskip("matplotlib")
    assert main(["plot", str(tmp_path)]) == 2
    assert "is not a run directory (no results.json)" in capsys.readouterr().err


def test_cli_conventions(capsys: pytest.CaptureFixture[str]) -> None:
    """No arguments: help, exit 0; --version; every command has help text."""
    assert main([]) == 0
    out = capsys.readouterr().out
    assert "usage: qnodeos" in out and "``" not in out
    for cmd in ("node", "qdevice", "keys", "run", "plot"):
        assert cmd in out
    with pytest.raises(SystemExit) as done:
        main(["--version"])
    assert done.value.code == 0 and capsys.readouterr().out.startswith("qnodeos ")


def test_a_run_dir_holding_an_earlier_run_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Its logs and timeline would mix with the new run's: refused before any node
    starts, naming the option; an empty directory is fine."""
    old = tmp_path / "old"
    old.mkdir()
    (old / "node-alice.log").write_text("an earlier run\n")
    assert main(["run", "--run-dir", str(old)]) == 2
    assert f"--run-dir {old}: holds an earlier run" in capsys.readouterr().err
    assert (old / "node-alice.log").read_text() == "an earlier run\n"  # left alone


def test_json_log_lines() -> None:
    import logging

    from qnodeos.runtime.command import JsonLines

    rec = logging.LogRecord(
        "qnodeos.kernel", logging.INFO, "x", 1, "app %r connected", ("a",), None
    )
    row = json.loads(JsonLines().format(rec))
    assert row["level"] == "info" and row["logger"] == "qnodeos.kernel"
    assert row["message"] == "app 'a' connected" and row["t"][:2] == "20"


def test_plot_of_a_sweep(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("matplotlib")
    (tmp_path / "sweep.csv").write_text(
        "links.0.fidelity,repeat,a.S,a.stderr,a.S_stderr\n"
        "0.8,0,2.0,0.1,0.1\n0.9,0,2.4,0.1,0.1\n"
    )
    assert main(["plot", str(tmp_path), "--y", "a.S", "--out", str(tmp_path / "s.svg")]) == 0
    assert (tmp_path / "s.svg").read_text().startswith("<?xml")
    assert main(["plot", str(tmp_path), "--y", "a.T"]) == 2
    assert "'a.T' is not a result of this sweep; use one of a.S" in capsys.readouterr().err


def test_plot_of_a_sweep_picks_what_varies_and_draws_the_apps_theory(tmp_path: Path) -> None:
    matplotlib = pytest.importorskip("matplotlib")
    (tmp_path / "sweep.csv").write_text(
        "nodes.a.speed,links.0.fidelity,repeat,failures,b.rounds,a.S,a.S_stderr,a.S_theory\n"
        "1.0,0.8,0,0,400,2.0,0.1,2.07\n1.0,0.9,0,0,400,2.4,0.1,2.45\n"
    )  # a constant swept key and a constant result come first: neither is plotted
    out = tmp_path / "s.svg"
    with matplotlib.rc_context({"svg.fonttype": "none"}):  # text stays text
        assert main(["plot", str(tmp_path), "--out", str(out)]) == 0
    svg = out.read_text()
    assert "links.0.fidelity" in svg and "nodes.a.speed" not in svg  # x: what varies
    assert "a.S: theory" in svg and "b.rounds" not in svg  # y, and the app's prediction


def test_keys_hint_names_the_folder_as_the_network_file_reads_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Run from elsewhere, ``qnodeos keys sub/net.toml`` puts keys in sub/keys and says
    ``keys = "keys"``: the file reads it relative to its own folder."""
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "net.toml").write_text(
        'name = "k"\n[nodes.a]\ndevice = "generic"\n[[apps]]\nnode = "a"\n'
        'module = "qnodeos.apps.ramsey"\n'
    )
    monkeypatch.chdir(tmp_path)
    assert main(["keys", "sub/net.toml"]) == 0
    out = capsys.readouterr().out
    assert 'add  keys = "keys"  at the top' in out
    assert (tmp_path / "sub" / "keys").is_dir()
    assert any(p.name.startswith("ramsey-0") for p in (tmp_path / "sub" / "keys").rglob("*"))


def test_run_deterministic_shows_progress_and_the_simulated_time(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """As a real run: each app's progress on stderr (unless --quiet), results on
    stdout; then how much simulated time the run covered, in how long."""
    short = ["--set", "apps.qkd-2.args.pairs=200", "--set", "apps.teleport-0.args.rounds=4"]
    assert main(["run", "--deterministic", "--run-dir", str(tmp_path / "a"), *short]) == 0
    out, err = capsys.readouterr()
    assert "QKD alice: 200 pairs" in out
    assert "qkd-2: done (200/200 pairs" in err and "teleport-0: done (4/4 teleports" in err
    assert re.search(r"qnodeos: \d+\.\d\d s of simulated time in \d+\.\d\d s", err)
    assert (tmp_path / "a" / "progress-qkd-2.jsonl").exists()
    quiet = ["run", "--deterministic", "--quiet", "--run-dir", str(tmp_path / "b"), *short]
    assert main(quiet) == 0
    assert capsys.readouterr().err == ""


def test_run_deterministic_keeps_its_logs_in_the_run_dir_too(tmp_path: Path) -> None:
    """``-v``: the log lines on stderr, and in the run directory's run.log (a real
    run's nodes keep theirs in node-NAME.log)."""
    import subprocess
    import sys

    where = tmp_path / "run"
    argv = ["-m", "qnodeos", "-v", "run", "chsh", "--deterministic", "--quiet"]
    argv += ["--set", "apps.a.args.rounds=8", "--run-dir", str(where)]
    done = subprocess.run(
        [sys.executable, *argv], capture_output=True, text=True, timeout=120, check=True
    )
    line = "qnodeos.kernel INFO: app 'a' connected"
    assert line in done.stderr and line in (where / "run.log").read_text()
