"""`qnodeos down` signals only the process that `qnodeos up` recorded: after an `up`
killed with SIGKILL, its state file stays, and the OS may give its pid to another
process; that process must never be signalled."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import msgspec
import pytest

from qnodeos.errors import ConfigError
from qnodeos.lang.messages import ProcId
from qnodeos.runtime import procinfo
from qnodeos.testbed import up


@pytest.fixture
def bystander(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> subprocess.Popen[bytes]:
    monkeypatch.setenv("QNODEOS_RUNTIME_DIR", str(tmp_path))
    proc = subprocess.Popen(["sleep", "60"])
    yield proc  # type: ignore[misc]
    proc.kill()
    proc.wait()


def _state(tmp_path: Path, info: dict[str, object]) -> Path:
    path = tmp_path / "up-lab.json"
    path.write_text(json.dumps(info))
    return path


def test_a_reused_pid_is_not_signalled(tmp_path: Path, bystander: subprocess.Popen[bytes]) -> None:
    real = ProcId(
        pid=bystander.pid,
        start=procinfo.stat(bystander.pid)[1] - 1,
        host=procinfo.host(),  # type: ignore[index]
    )  # the pid of a process that has gone, now the bystander's
    state = _state(tmp_path, {"pid": bystander.pid, "proc": msgspec.to_builtins(real)})
    with pytest.raises(ConfigError, match="is gone; the stale up-lab.json was removed"):
        up.down("lab", timeout=1.0)
    assert bystander.poll() is None and not state.exists()


def test_a_state_file_without_start_time_signals_nothing(
    tmp_path: Path, bystander: subprocess.Popen[bytes]
) -> None:
    _state(tmp_path, {"pid": bystander.pid})  # as older versions wrote it
    with pytest.raises(ConfigError, match="nothing was signalled"):
        up.down("lab", timeout=1.0)
    assert bystander.poll() is None


def test_the_recorded_process_is_stopped(
    tmp_path: Path, bystander: subprocess.Popen[bytes]
) -> None:
    proc = ProcId(
        pid=bystander.pid,
        start=procinfo.stat(bystander.pid)[1],
        host=procinfo.host(),  # type: ignore[index]
    )
    _state(tmp_path, {"pid": bystander.pid, "proc": msgspec.to_builtins(proc)})
    assert up.down("lab", timeout=5.0) == 0  # our child: done once it is a zombie
    assert bystander.wait(timeout=5) == -15  # SIGTERM
