"""How ``qnodeos run`` starts its processes: import once, then fork each node and app.

A fresh interpreter per process (64 of them for 32 nodes, each importing numpy, trio,
zmq and qnodeos: ~0.5 s of CPU each) made start-up slow on a small machine. Instead the
launcher imports those modules once (``preload``), then, before ``trio.run`` (no event
loop, no zmq context yet), forks every node and every app (``qnodeos.runtime.forking``). Nodes
start at once and all together; each then forks its own quantum process, so a node is
still two OS processes and an app one. An app's process waits, before it imports or
connects anything, until the launcher lets it go (``Proc.go``: once every node is up).

Each child is what ``qnodeos node NAME`` or ``python -m qnodeos.testbed.app_runner ...`` would
be: it runs that ``main`` with those arguments and environment, shows that command
line in ps, and exits with that ``main``'s code (-N if signal N killed it). A node's
output comes to the launcher through a pipe (the launcher waits for its READY line and
copies everything into the node's log); an app writes its own log.

Children die with the launcher: each asks the kernel for SIGTERM when its parent exits
(``PR_SET_PDEATHSIG``; checked against a parent that died before it asked), and a
waiting app also ends when its lifeline closes. A node stops its quantum process on
SIGTERM as on any stop.

Why not ``multiprocessing``'s forkserver with ``set_forkserver_preload``: it is a second
fresh interpreter that imports everything again (measured: the first fork came 1.1 s
after start instead of ~0.5 s, the two imports competing for 2 cores), every child
re-imports the launcher's ``__main__`` and unpickles its arguments, and the children
are the server's, not ours, so exit codes come second-hand and "die with the launcher"
goes through the server's exit.
"""

from __future__ import annotations

import os
import signal
import sys
from collections.abc import Sequence
from functools import partial
from pathlib import Path

import trio

from qnodeos.runtime.forking import Child, die_with_parent, fork, hold, unhold


def preload() -> None:
    """Import what every node and app needs, once, before forking them."""
    import qnodeos.sdk  # noqa: F401

    from . import app_runner  # noqa: F401
    from .node import preload_node

    preload_node()


class Proc:
    """A forked node or app: ``child`` is the process; ``output`` a node's stdout and
    stderr once ``open_output`` made it a trio stream."""

    def __init__(self, child: Child, output_fd: int | None = None) -> None:
        self.child = child
        self.pid = child.pid
        self.output: trio.lowlevel.FdStream | None = None
        self._output_fd = output_fd

    @property
    def returncode(self) -> int | None:
        return self.child.poll()

    async def wait(self) -> int:
        return await self.child.wait()

    def terminate(self) -> None:
        self.child.terminate()

    def kill(self) -> None:
        self.child.kill()

    def go(self) -> None:
        """Let a waiting app start."""
        self.child.send(b"g")

    def open_output(self) -> trio.lowlevel.FdStream | None:
        """The output as a trio stream (call inside ``trio.run``)."""
        if self._output_fd is not None:
            self.output = trio.lowlevel.FdStream(unhold(self._output_fd))
            self._output_fd = None
        return self.output


def title(module: str, argv: Sequence[str]) -> str:
    """The command line a child shows: the one it would have as a fresh process."""
    return " ".join([sys.executable, "-m", module, *argv])


def fork_node(name: str, net_file: Path, env: dict[str, str]) -> Proc:
    """Fork ``qnodeos node NAME --network NET_FILE``; its output in ``Proc.output``."""
    argv = ["node", name, "--network", str(net_file)]
    read_end, write_end = os.pipe()
    hold(read_end)  # ours: the node (and every later child) closes it
    child = fork(
        partial(_node_child, name, str(net_file), env, write_end, os.getpid()),
        title=title("qnodeos", argv),
    )
    os.close(write_end)
    return Proc(child, read_end)


def fork_app(argv: Sequence[str], env: dict[str, str], log: Path) -> Proc:
    """Fork ``python -m qnodeos.testbed.app_runner ARGV`` writing to ``log``; it waits for
    ``Proc.go`` before it does anything."""
    child = fork(
        partial(_app_child, list(argv), env, log, os.getpid()),
        title=title("qnodeos.testbed.app_runner", argv),
    )
    return Proc(child)


def _become(parent: int, env: dict[str, str], out: int) -> None:
    """In a child: die with ``parent``, write to ``out``, take ``env``."""
    die_with_parent(signal.SIGTERM)
    if os.getppid() != parent:  # it died before we asked
        os._exit(1)
    os.dup2(out, 1)
    os.dup2(out, 2)
    os.close(out)
    # The parent's sys.stdout may not write to fd 1 (pytest's capture, a notebook's
    # stream): the child's must, or the launcher never sees the node's READY line.
    sys.stdout = open(1, "w", buffering=1, closefd=False)
    sys.stderr = open(2, "w", buffering=1, closefd=False)
    os.environ.clear()
    os.environ.update(env)


def _node_child(
    name: str, net_file: str, env: dict[str, str], out: int, parent: int, _: int
) -> int:
    _become(parent, env, out)
    from .node import node_command

    return node_command(name, net_file)


def _app_child(argv: list[str], env: dict[str, str], log: Path, parent: int, lifeline: int) -> int:
    out = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    _become(parent, env, out)
    if os.read(lifeline, 1) != b"g":  # the run ended before the apps' turn
        return 1
    from .app_runner import main

    return main(argv)
