"""Fork a child that runs a Python function, and wait for it from trio.

A fresh interpreter that imports numpy, trio, zmq and qnodeos takes about 0.5 s on a
2-core machine; a fork of a process that has already imported them takes a few ms and
shares their pages copy-on-write. So a node forks its quantum process instead of
starting ``python -m qnodeos qdevice``, and ``qnodeos run`` imports everything once and forks
every node and app (``testbed/forks.py``).

Fork only from a process with no other threads, no zmq context and outside
``trio.run``: the child inherits memory, not threads, and would share the parent's
event-loop and zmq file descriptors. ``fork`` flushes Python's output buffers first.

Every child gets a *lifeline*: the read end of a pipe whose write end only the parent
holds. The parent closes it (``Child.close_lifeline``) to ask the child to stop; it
also closes when the parent dies, even on SIGKILL, so a child that watches its lifeline
never outlives its parent.

Every child runs its BLAS on one thread (``qnodeos.runtime.blas``).

>>> import trio
>>> child = fork(lambda lifeline: len(os.read(lifeline, 1)))  # exits when we let go
>>> child.close_lifeline()
>>> trio.run(child.wait)
0
"""

from __future__ import annotations

import os
import signal
import sys
import traceback
from collections.abc import Callable

import trio

from .blas import in_the_child, one_thread_for_a_child


def set_title(title: str) -> None:
    """Show ``title`` as this process's command line in ps and /proc (best effort)."""
    try:
        import setproctitle
    except ImportError:  # optional: the process still works, ps shows the parent's line
        return
    setproctitle.setproctitle(title)


def die_with_parent(sig: int = signal.SIGTERM) -> None:
    """Ask the kernel to send ``sig`` to this process when its parent exits (Linux)."""
    if not sys.platform.startswith("linux"):
        return
    import ctypes

    PR_SET_PDEATHSIG = 1
    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, int(sig), 0, 0, 0)


# Descriptors this process holds for its children (lifelines, output pipes). A child
# forked later closes them all, so it cannot keep a sibling's lifeline open.
_HELD: set[int] = set()


def hold(fd: int) -> int:
    """Register ``fd`` as this process's end of a pipe to one child: later children
    close it. Returns ``fd``."""
    _HELD.add(fd)
    return fd


def release(fd: int) -> None:
    """Close a descriptor registered with ``hold``."""
    unhold(fd)
    os.close(fd)


def unhold(fd: int) -> int:
    """Stop tracking ``fd`` without closing it (something else owns it now)."""
    _HELD.discard(fd)
    return fd


class Child:
    """A forked child process: ``pid``, ``returncode`` (None while it runs; -N if a
    signal N ended it, as in ``subprocess``), and its lifeline's write end."""

    def __init__(self, pid: int, lifeline: int | None) -> None:
        self.pid = pid
        self.returncode: int | None = None
        self._lifeline = lifeline
        try:
            self._pidfd: int | None = os.pidfd_open(pid)
        except (AttributeError, OSError):  # not Linux >= 5.3: wait() polls instead
            self._pidfd = None
        self._watching = False
        self._lot = trio.lowlevel.ParkingLot()

    def close_lifeline(self) -> None:
        """Tell the child to stop (it sees end-of-file on its lifeline)."""
        if self._lifeline is not None:
            release(self._lifeline)
            self._lifeline = None

    def send(self, data: bytes) -> None:
        """Write ``data`` to the child's lifeline (e.g. a go signal it waits for)."""
        if self._lifeline is not None:
            os.write(self._lifeline, data)

    def poll(self) -> int | None:
        """The exit code if the child has ended (and reap it), else None."""
        if self.returncode is None:
            pid, status = os.waitpid(self.pid, os.WNOHANG)
            if pid:
                self.returncode = os.waitstatus_to_exitcode(status)
                if self._pidfd is not None:
                    os.close(self._pidfd)
                    self._pidfd = None
        return self.returncode

    async def wait(self) -> int:
        """Wait until the child has ended; its exit code. Any number of tasks may wait."""
        while (code := self.poll()) is None:
            if self._watching:  # trio allows one waiter per fd: the others park
                await self._lot.park()
                continue
            self._watching = True
            try:
                if self._pidfd is not None:
                    await trio.lowlevel.wait_readable(self._pidfd)
                else:
                    await trio.sleep(0.05)
            finally:
                self._watching = False
                self._lot.unpark_all()
        return code

    def send_signal(self, sig: int) -> None:
        if self.poll() is None:  # not reaped, so the pid is still this child's
            os.kill(self.pid, sig)

    def terminate(self) -> None:
        self.send_signal(signal.SIGTERM)

    def kill(self) -> None:
        self.send_signal(signal.SIGKILL)


def fork(main: Callable[[int], int | None], *, title: str | None = None) -> Child:
    """Fork a child that runs ``main(lifeline_fd)`` and exits with its return value
    (None is 0; an exception prints its traceback and exits 1)."""
    sys.stdout.flush()
    sys.stderr.flush()
    read_end, write_end = os.pipe()
    restore_blas = one_thread_for_a_child()  # the child keeps one BLAS thread (blas.py)
    try:
        pid = os.fork()
    except BaseException:
        restore_blas()
        raise
    if pid == 0:  # the child: never return into the parent's code
        code = 1
        try:
            in_the_child()
            os.close(write_end)
            for fd in _HELD:  # the parent's ends of pipes to other children
                os.close(fd)
            _HELD.clear()
            if title:
                set_title(title)
            result = main(read_end)
            code = 0 if result is None else result
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else 1
        except BaseException:
            traceback.print_exc()
        finally:
            try:
                sys.stdout.flush()
                sys.stderr.flush()
            finally:
                os._exit(code)
    restore_blas()
    os.close(read_end)
    return Child(pid, hold(write_end))
