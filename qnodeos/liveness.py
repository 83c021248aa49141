"""Is the other side still there? Heartbeats and silence, sans-IO.

Both the classical process (about other nodes' classical processes) and the quantum
process (about linked nodes' quantum processes) keep one ``Liveness``: every message
from a peer counts as a sign of life; ``tick`` says which peers are due a ping (every
``interval_s``) and which have just gone silent for ``timeout_s`` (down). A peer never
heard from is not declared down (it may not have started yet). A peer that speaks again
is up again.

If ``tick`` itself comes much later than it should (this process was paused: SIGSTOP, a
laptop sleep, a long GC), silence during the pause says nothing about the peers: every
peer's clock restarts instead of all being declared down at once.

>>> live = Liveness(["b"], interval_s=0.25, timeout_s=1.5)
>>> live.heard("b", 0.0)
False
>>> live.tick(0.05)
(['b'], [])
>>> [t for t in (0.1 * i for i in range(1, 20)) if live.tick(t)[1]]  # b says nothing
[1.6]
>>> live.is_down("b"), live.heard("b", 2.0), live.is_down("b")
(True, True, False)
"""

from __future__ import annotations

import math
from collections.abc import Iterable


class Liveness:
    def __init__(
        self, peers: Iterable[str], *, interval_s: float = 0.25, timeout_s: float = 1.5
    ) -> None:
        self.interval_s = interval_s
        self.timeout_s = timeout_s
        self.last_heard: dict[str, float] = {p: -math.inf for p in peers}
        self.last_ping: dict[str, float] = dict.fromkeys(self.last_heard, -math.inf)
        self.down: set[str] = set()
        self._last_tick = -math.inf
        self.pauses = 0  # times this process found it had been paused

    def heard(self, peer: str, now: float) -> bool:
        """A message from ``peer`` arrived; True if it was down and is back."""
        if peer not in self.last_heard:
            return False
        self.last_heard[peer] = now
        if peer in self.down:
            self.down.discard(peer)
            return True
        return False

    def is_down(self, peer: str) -> bool:
        return peer in self.down

    def paused(self, now: float) -> bool:
        """Whether this process was just paused (the last tick is far behind)."""
        if self._last_tick == -math.inf:
            return False
        return now - self._last_tick > max(self.timeout_s / 2, 4 * self.interval_s)

    def tick(self, now: float) -> tuple[list[str], list[str]]:
        """(peers due a ping now, peers that just went down)."""
        if self.paused(now):
            self.pauses += 1
            for p, t in self.last_heard.items():
                if t > -math.inf:
                    self.last_heard[p] = now
        self._last_tick = now
        ping = [p for p, t in self.last_ping.items() if now - t >= self.interval_s]
        for p in ping:
            self.last_ping[p] = now
        gone = [
            p
            for p, t in self.last_heard.items()
            if p not in self.down and t > -math.inf and now - t > self.timeout_s
        ]
        self.down.update(gone)
        return ping, gone

    def next_deadline(self) -> float:
        """When ``tick`` next has something to do."""
        return min(
            [t + self.interval_s for t in self.last_ping.values()]
            + [
                t + self.timeout_s
                for p, t in self.last_heard.items()
                if p not in self.down and t > -math.inf
            ],
            default=math.inf,
        )
