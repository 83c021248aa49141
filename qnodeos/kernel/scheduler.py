"""Scheduler: which waiting block runs next on the device. Policies are key functions
over queue entries, so adding one is one line in ``POLICIES``.

- ``fcfs``: first come, first served.
- ``priority``: highest app priority first, FCFS among equals.
- ``edf``: earliest deadline first (blocks without a deadline last), FCFS among equals.

A chosen block runs to completion on the device without interleaving.

No policy starves a block: one that has waited ``starvation_s`` or longer (wall time)
goes before any that has waited less, oldest first. So behind busy higher-priority apps
a block waits at most about ``starvation_s`` plus the blocks already running or
starving ahead of it.

>>> s = Scheduler("priority")
>>> s.push(Entry(seq=1, app_id=1, priority=0, deadline=0.0, payload=None))
>>> s.push(Entry(seq=2, app_id=2, priority=5, deadline=0.0, payload=None))
>>> s.pop().app_id
2
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ..errors import ConfigError


@dataclass(frozen=True, kw_only=True)
class Entry:
    seq: int
    app_id: int
    priority: int
    deadline: float
    payload: Any
    queued_at: float = 0.0


POLICIES: dict[str, Callable[[Entry], tuple[float, ...]]] = {
    "fcfs": lambda e: (e.seq,),
    "priority": lambda e: (-e.priority, e.seq),
    "edf": lambda e: (e.deadline, e.seq),
}


class Scheduler:
    def __init__(self, policy: str = "fcfs", starvation_s: float = math.inf) -> None:
        if policy not in POLICIES:
            raise ConfigError(f"unknown scheduling policy {policy!r}; known: {', '.join(POLICIES)}")
        self.policy = policy
        self.starvation_s = starvation_s
        self._key = POLICIES[policy]
        self._queue: list[Entry] = []
        self.starved = 0  # blocks that went first because they had waited too long

    def __len__(self) -> int:
        return len(self._queue)

    def push(self, entry: Entry) -> None:
        self._queue.append(entry)

    def pop(self, now: float = -math.inf) -> Entry | None:
        """The next block to run at wall time ``now`` (None if nothing waits)."""
        if not self._queue:
            return None
        best = min(self._queue, key=self._key)
        oldest = min(self._queue, key=lambda e: (e.queued_at, e.seq))
        if oldest is not best and now - oldest.queued_at >= self.starvation_s:
            best = oldest
            self.starved += 1
        self._queue.remove(best)
        return best

    def starving(self, now: float) -> bool:
        """Whether a block has waited ``starvation_s`` or longer (it goes before any
        other work, the network's included)."""
        return any(now - e.queued_at >= self.starvation_s for e in self._queue)

    def drop_app(self, app_id: int) -> list[Entry]:
        gone = [e for e in self._queue if e.app_id == app_id]
        self._queue = [e for e in self._queue if e.app_id != app_id]
        return gone
