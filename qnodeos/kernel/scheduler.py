"""Scheduler: which waiting block runs next on the device. Policies are key functions
over queue entries, so adding one is one line in ``POLICIES``.

- ``fcfs``: first come, first served.
- ``priority``: highest app priority first, FCFS among equals.
- ``edf``: earliest deadline first (blocks without a deadline last), FCFS among equals.

A chosen block runs to completion on the device without interleaving.

>>> s = Scheduler("priority")
>>> s.push(Entry(seq=1, app_id=1, priority=0, deadline=0.0, payload=None))
>>> s.push(Entry(seq=2, app_id=2, priority=5, deadline=0.0, payload=None))
>>> s.pop().app_id
2
"""

from __future__ import annotations

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


POLICIES: dict[str, Callable[[Entry], tuple[float, ...]]] = {
    "fcfs": lambda e: (e.seq,),
    "priority": lambda e: (-e.priority, e.seq),
    "edf": lambda e: (e.deadline, e.seq),
}


class Scheduler:
    def __init__(self, policy: str = "fcfs") -> None:
        if policy not in POLICIES:
            raise ConfigError(f"unknown scheduling policy {policy!r}; known: {', '.join(POLICIES)}")
        self.policy = policy
        self._key = POLICIES[policy]
        self._queue: list[Entry] = []

    def __len__(self) -> int:
        return len(self._queue)

    def push(self, entry: Entry) -> None:
        self._queue.append(entry)

    def pop(self) -> Entry | None:
        if not self._queue:
            return None
        best = min(self._queue, key=self._key)
        self._queue.remove(best)
        return best

    def drop_app(self, app_id: int) -> list[Entry]:
        gone = [e for e in self._queue if e.app_id == app_id]
        self._queue = [e for e in self._queue if e.app_id != app_id]
        return gone
