"""CPU time of every process of a bench run, read from /proc, and CPU per unit of work.

A bench starts some processes (nodes, each with its quantum process as a child) and
drives them from its own process (the SDK apps). ``Meter(roots)`` sums user + system
time of those roots, every descendant they have at the moment of reading, and this
process itself. ``per_unit`` runs a workload at two sizes and divides the difference in
CPU by the difference in units, so what every run pays once (connecting, a request's
set-up, the first round) falls out, as start-up does:

    cpu/unit = (cpu(n2) - cpu(n1)) / (n2 - n1)

Linux only (``/proc``); elsewhere ``Meter.read`` raises ``OSError``.
"""

from __future__ import annotations

import os
import resource
from collections.abc import Callable, Iterable
from pathlib import Path

TICK_S = 1 / os.sysconf("SC_CLK_TCK")


def _stat(pid: int) -> tuple[int, float] | None:
    """(parent pid, user + system seconds) of ``pid``, or None if it is gone."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return None
    fields = raw[raw.rindex(")") + 2 :].split()  # the name may hold spaces and ')'
    return int(fields[1]), (int(fields[11]) + int(fields[12])) * TICK_S


def descendants(roots: Iterable[int]) -> set[int]:
    """``roots`` and every live process below them."""
    parent: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit() and (st := _stat(int(entry))) is not None:
            parent[int(entry)] = st[0]
    found = {r for r in roots if r in parent}
    grew = True
    while grew:
        more = {pid for pid, pp in parent.items() if pp in found and pid not in found}
        found |= more
        grew = bool(more)
    return found


def below(pid: int) -> list[int]:
    """Every live process below ``pid`` (not ``pid`` itself)."""
    return sorted(descendants([pid]) - {pid})


def cpu_s(pid: int) -> float:
    """User + system seconds of ``pid`` so far (0 if it is gone)."""
    st = _stat(pid)
    return 0.0 if st is None else st[1]


def title(pid: int) -> str:
    """``pid``'s command line, shortened (empty if it is gone)."""
    try:
        return Path(f"/proc/{pid}/cmdline").read_text().replace("\0", " ").strip()[:60]
    except OSError:
        return ""


def own_cpu() -> float:
    """This process's user + system seconds (all its threads)."""
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return ru.ru_utime + ru.ru_stime


class Meter:
    """CPU seconds used so far by ``roots``, their descendants and this process."""

    def __init__(self, roots: Iterable[int]) -> None:
        self.roots = list(roots)

    def read(self) -> float:
        if not Path("/proc/self/stat").exists():
            raise OSError("CPU per unit needs /proc (Linux)")
        total = own_cpu()
        me = os.getpid()
        for pid in descendants(self.roots):
            if pid != me and (st := _stat(pid)) is not None:
                total += st[1]
        return total


def per_unit(meter: Meter, work: Callable[[int], object], n1: int, n2: int) -> float:
    """CPU seconds per unit: ``work(n)`` run at sizes ``n1`` then ``n2`` (``n2 > n1``)."""
    if not 0 < n1 < n2:
        raise ValueError(f"need 0 < n1 < n2, got {n1}, {n2}")
    c0 = meter.read()
    work(n1)
    c1 = meter.read()
    work(n2)
    c2 = meter.read()
    return ((c2 - c1) - (c1 - c0)) / (n2 - n1)
