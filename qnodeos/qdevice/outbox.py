"""What the quantum process has to send, and when (sans-IO, shared by both adapters).

Replies to the classical process are due when the device has finished the work (device
time converted to wall time); messages to other quantum processes after the link's
classical delay. Entries come out earliest first, equal times in the order they went
in. A reply tagged with its request's sequence number can be withdrawn (the block it
answers was abandoned, so nothing waits for it).

>>> box = Outbox()
>>> box.push(2.0, "kernel", [b"late"], tag=7)
>>> box.push(1.0, "peer", [b"early"])
>>> box.cancel(7)
>>> box.pop_due(5.0)
[('peer', [b'early'])]
"""

from __future__ import annotations

import heapq
import itertools
import math
from collections.abc import Callable
from typing import Generic, TypeVar

D = TypeVar("D")


class Outbox(Generic[D]):
    """``on_late(seconds, now)`` hears how late each entry left: after its due time, or
    after it was pushed if it was due already (``pushed_at``: the lateness is then this
    process's, not the protocol's)."""

    def __init__(self, on_late: Callable[[float, float], object] | None = None) -> None:
        self._heap: list[tuple[float, int, int | None, D, list[bytes], float]] = []
        self._order = itertools.count()
        self.on_late = on_late

    def __len__(self) -> int:
        return len(self._heap)

    def push(
        self,
        due: float,
        dest: D,
        frames: list[bytes],
        tag: int | None = None,
        pushed_at: float = -math.inf,
    ) -> None:
        entry = (due, next(self._order), tag, dest, frames, max(due, pushed_at))
        heapq.heappush(self._heap, entry)

    def cancel(self, tag: int) -> None:
        """Withdraw every entry tagged ``tag``."""
        kept = [e for e in self._heap if e[2] != tag]
        if len(kept) != len(self._heap):
            heapq.heapify(kept)
            self._heap = kept

    def next_due(self) -> float:
        return self._heap[0][0] if self._heap else math.inf

    def pop_due(self, now: float) -> list[tuple[D, list[bytes]]]:
        out = []
        while self._heap and self._heap[0][0] <= now:
            _, _, _, dest, frames, start = heapq.heappop(self._heap)
            out.append((dest, frames))
            if self.on_late is not None:
                self.on_late(now - start, now)
        return out
