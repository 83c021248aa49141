"""How ``qnodeos sweep`` starts one point's run: a local process, or a task on an executor.

Locally each point is ``python -m qnodeos run ...`` as a child process (``subprocess``).
With an executor (``Network.sweep(executor=...)``, ``qnodeos sweep --cluster``) the same
command line becomes a task, ``run_command``, that runs it as a child process of the
worker and returns its exit status, stdout and stderr; ``TaskRun`` gives the sweep the
face of a ``subprocess.Popen`` (``poll``, ``communicate``, ``send_signal``, ``wait``,
``kill``) over the task's future, so the sweep's loop is the same either way.

Any ``concurrent.futures.Executor`` works: a local ``ProcessPoolExecutor``, or a Dask
client's (``client.get_executor(resources=...)``, which is how a point reserves its
cores). On a worker the run is tied to the worker: it gets SIGTERM if the worker dies
(``PR_SET_PDEATHSIG``), and the run's own children die with it the same way, so a lost
worker leaves no process behind; Dask then runs the point again elsewhere. A Dask sweep
also has a *stop event* (a ``distributed.Event`` named per sweep): stopping the sweep
(Ctrl-C) cancels the tasks not started and sets the event, and every task under way
stops its run as Ctrl-C would (SIGINT) and returns. Nothing here imports dask unless
the executor is a Dask client's.
"""

from __future__ import annotations

import shutil
import signal
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Callable
from concurrent.futures import CancelledError, Executor, Future
from concurrent.futures import TimeoutError as FutureTimeout
from pathlib import Path
from typing import Any, Protocol

from qnodeos.testbed.daskclient import distributed

from ..runtime.forking import die_with_parent

POLL_S = 0.5  # how often a task looks at its run and at the stop event
STOP_GRACE_S = 30.0  # a stopped run's time to clean up before it is killed


class RunHandle(Protocol):
    """What the sweep needs of one point's run (``subprocess.Popen[str]`` has it)."""

    @property
    def returncode(self) -> int | Any: ...

    def poll(self) -> int | None: ...

    def communicate(self) -> tuple[str, str]: ...

    def send_signal(self, sig: int) -> None: ...

    def wait(self, timeout: float | None = None) -> int: ...

    def kill(self) -> None: ...


def _popen(argv: list[str]) -> RunHandle:
    return subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def launcher(executor: Executor | None) -> Callable[[list[str]], RunHandle]:
    """How to start one point's command line ``argv``: a child process here (no
    executor), else a task on ``executor``."""
    if executor is None:
        return _popen
    stop = _stop_event(executor)

    def submit(argv: list[str]) -> RunHandle:
        return TaskRun(executor, argv, stop)

    return submit


def _stop_event(executor: Executor) -> Any:
    """A fresh stop event (``distributed.Event``) on the client of ``executor`` when
    it is a Dask client's, else None."""
    cfexecutor = sys.modules.get("distributed.cfexecutor")
    if cfexecutor is None or not isinstance(executor, cfexecutor.ClientExecutor):
        return None
    # ClientExecutor keeps its client as ``_client`` and offers no public accessor;
    # the event must be made on that client (it need not be the default one)
    client = executor._client
    return distributed().Event(f"qnodeos-sweep-stop-{uuid.uuid4().hex}", client=client)


class TaskRun:
    """One point's command line run as a task on ``executor`` (see the module doc)."""

    def __init__(self, executor: Executor, argv: list[str], stop: Any) -> None:
        self.stop = stop  # the sweep's stop event (Dask), or None
        self.returncode: int | None = None
        self._out = ("", "")
        self.future: Future[tuple[int, str, str]] = executor.submit(
            run_command, argv, _network_text(argv), None if stop is None else stop.name
        )

    def poll(self) -> int | None:
        if self.returncode is None and self.future.done():
            try:
                code, stdout, stderr = self.future.result()
            except CancelledError:
                code, stdout, stderr = -int(signal.SIGINT), "", "cancelled"
            except Exception as exc:  # the task failed: the point's row says why
                code, stdout, stderr = 1, "", f"task failed: {type(exc).__name__}: {exc}"
            self._out = (stdout, stderr)
            self.returncode = code
        return self.returncode

    def communicate(self) -> tuple[str, str]:
        self.wait()
        return self._out

    def wait(self, timeout: float | None = None) -> int:
        try:
            self.future.exception(timeout)  # waits; the outcome is read by poll
        except FutureTimeout:
            raise subprocess.TimeoutExpired("qnodeos run (task)", timeout or 0.0) from None
        except CancelledError:
            pass
        code = self.poll()
        assert code is not None
        return code

    def send_signal(self, sig: int) -> None:
        """Stop the run: a task not started is cancelled, one under way is told to stop
        (Dask executors: through the stop event; others cannot stop a running task)."""
        self.future.cancel()
        if self.stop is not None:
            self.stop.set()

    def kill(self) -> None:
        self.send_signal(signal.SIGKILL)


def _network_text(argv: list[str]) -> str | None:
    """The network file's text, sent with the task for a worker that cannot see the file
    (``argv`` is ``python -m qnodeos run NETWORK ...``)."""
    if argv[1:4] != ["-m", "qnodeos", "run"] or len(argv) < 5:
        raise ValueError(f"not a qnodeos run command line: {argv[:5]}")
    path = Path(argv[4])
    return path.read_text() if path.is_file() else None  # else an embedded network's name


def run_command(argv: list[str], network: str | None, stop: str | None) -> tuple[int, str, str]:
    """On a worker: run ``argv`` (a ``qnodeos run`` command line made by the sweep) with
    this worker's Python; (exit status, stdout, stderr). The network file is written to
    a temporary directory when this host cannot see it; a run directory left by an
    earlier attempt of the same point (a worker lost mid-run) is removed first."""
    argv = [sys.executable, *argv[1:]]
    with tempfile.TemporaryDirectory(prefix="qn-task-") as tmp:
        if network is not None and not Path(argv[4]).is_file():
            copy = Path(tmp) / Path(argv[4]).name
            copy.write_text(network)
            argv[4] = str(copy)
        if "--run-dir" in argv:
            shutil.rmtree(argv[argv.index("--run-dir") + 1], ignore_errors=True)
        proc = subprocess.Popen(
            argv,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            # dies with this worker; SIGINT as on a terminal (a worker may ignore it)
            preexec_fn=_child_setup,
        )
        event = _event(stop)
        try:
            if event is None:
                stdout, stderr = proc.communicate()
                return proc.returncode, stdout, stderr
            while True:
                try:
                    stdout, stderr = proc.communicate(timeout=POLL_S)
                    return proc.returncode, stdout, stderr
                except subprocess.TimeoutExpired:
                    pass
                if event.is_set():
                    proc.send_signal(signal.SIGINT)  # the run cleans up as on Ctrl-C
                    stdout, stderr = proc.communicate(timeout=STOP_GRACE_S)
                    return proc.returncode, stdout, stderr
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()


def _child_setup() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    die_with_parent(signal.SIGTERM)


def _event(stop: str | None) -> Any:
    """The sweep's stop event, when this task runs on a Dask worker and has one."""
    if stop is None:
        return None
    return distributed().Event(stop)
