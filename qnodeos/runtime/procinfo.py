"""Which process is it, and what does the OS say of it? (Linux ``/proc``.)

A busy machine makes a process slow, not dead, and silence cannot tell the two apart:
a peer that has said nothing for two seconds may be paused, killed, or merely waiting
for a core. On one machine the OS knows. Each process of a network says who it is
(``me()``, a ``ProcId``: its pid, its start time, and the machine and pid namespace it
runs in), and whoever judges its silence asks the OS (``look``):

- ``"gone"``: no such process any more (its pid is free, or reused by another process:
  the start time differs), or a zombie;
- ``"stopped"``: stopped by a signal (SIGSTOP, Ctrl-Z) or a debugger;
- ``"alive"``: running, waiting for a core, or waiting for input;
- ``None``: not a process we can see (another host, another container's pid
  namespace, or no ``/proc``): silence alone decides.

A pid alone is not an identity (the OS reuses pids); pid and start time together are.
An id is only a claim: a peer that names a process other than its own gains nothing
(it is judged alive only while that process is, as its own pings would make it anyway).

>>> me() == me() and look(me())
'alive'
>>> import msgspec
>>> look(msgspec.structs.replace(me(), start=me().start + 1))  # same pid, another process
'gone'
>>> look(msgspec.structs.replace(me(), host="elsewhere")) is None
True
"""

from __future__ import annotations

import functools
import os
from pathlib import Path

from ..lang.messages import ProcId

__all__ = ["ProcId", "look", "me", "stat"]

_STOPPED = {"T", "t"}
_GONE = {"Z", "X", "x"}


@functools.cache
def host() -> str:
    """This machine (boot id) and pid namespace: where our pids mean something."""
    try:
        boot = Path("/proc/sys/kernel/random/boot_id").read_text().strip()
        ns = os.stat("/proc/self/ns/pid").st_ino
    except OSError:
        return ""  # no /proc: nothing can be looked up
    return f"{boot}/{ns}"


def stat(pid: int) -> tuple[str, int] | None:
    """(state letter, start time in clock ticks after boot) of process ``pid``, or None
    if there is none."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except (OSError, ValueError):
        return None
    # "pid (comm) state ppid ...": comm may hold spaces and parentheses
    fields = text.rsplit(")", 1)[-1].split()
    try:
        return fields[0], int(fields[19])
    except (IndexError, ValueError):
        return None


def me() -> ProcId:
    """This process (not cached: a forked child is another process)."""
    pid = os.getpid()
    st = stat(pid)
    return ProcId(pid=pid, start=st[1] if st else 0, host=host())


def look(proc: ProcId) -> str | None:
    """What the OS says of ``proc``: "gone", "stopped", "alive", or None (cannot see)."""
    here = host()
    if not here or proc.host != here:
        return None
    st = stat(proc.pid)
    if st is None or st[1] != proc.start or st[0] in _GONE:
        return "gone"
    return "stopped" if st[0] in _STOPPED else "alive"
