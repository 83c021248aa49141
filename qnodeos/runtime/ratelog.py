"""Bad input is counted, and logged without flooding the log.

Every message a process cannot use is counted (by source). The first ``burst`` in each
``window_s`` are logged in full; the rest are only counted, and one summary line per
window says how many were suppressed. So a peer sending 100,000 bad frames costs a few
log lines, not megabytes, and nothing is lost from the counts. Sans-IO: the caller
passes the current time.

>>> import logging
>>> bad = BadInput(logging.getLogger("demo"), burst=2, window_s=10.0)
>>> for i in range(5):
...     bad.report("peer x", f"junk {i}", now=float(i))
>>> bad.total, bad.by_source["peer x"], bad.suppressed
(5, 5, 3)
"""

from __future__ import annotations

import logging
import math


class BadInput:
    """``kind`` names what is counted in the log lines ("bad input", "late heralds")."""

    def __init__(
        self,
        log: logging.Logger,
        *,
        burst: int = 5,
        window_s: float = 10.0,
        kind: str = "bad input",
    ) -> None:
        self.log = log
        self.kind = kind
        self.burst = burst
        self.window_s = window_s
        self.total = 0
        self.by_source: dict[str, int] = {}
        self.suppressed = 0  # in the current window
        self._window_start = -float("inf")
        self._logged = 0

    def report(self, source: str, problem: str, *, now: float) -> None:
        """Count one bad message from ``source``; log it unless the window is full."""
        self.total += 1
        if len(self.by_source) < 1024 or source in self.by_source:
            self.by_source[source] = self.by_source.get(source, 0) + 1
        self.tick(now)
        if self._logged < self.burst:
            self._logged += 1
            self.log.warning("%s #%d from %s: %s", self.kind, self.total, source, problem)
        else:
            self.suppressed += 1

    def next_deadline(self) -> float:
        """When ``tick`` has a summary to log (inf: nothing was hidden)."""
        return self._window_start + self.window_s if self.suppressed else math.inf

    def tick(self, now: float) -> None:
        """Start a new window if the current one is over, summarising what it hid."""
        if now - self._window_start < self.window_s:
            return
        if self.suppressed:
            self.log.warning(
                "%d more (%s) in the last %.0f s not logged (%d in all; by source: %s)",
                self.suppressed,
                self.kind,
                self.window_s,
                self.total,
                ", ".join(f"{k}: {v}" for k, v in sorted(self.by_source.items())[:8]),
            )
        self._window_start = now
        self._logged = 0
        self.suppressed = 0
