"""How late the real-time quantum process acts against its device clock (sans-IO).

In real time a reply is due at the wall time when the device finishes the work, a
message to a peer when the link's classical delay has passed, a timer when it is set.
On a busy machine the process gets a core late and acts late: device time (wall time x
speed) has moved on meanwhile, so qubits idle for longer than the program asked, and
the physics reflects the host's load as well as the device. ``LagMeter`` keeps how
late each of those acts was (seconds of wall time) and reports the median, the 99th
percentile and the maximum, per window of ``window_s`` and for the whole run.

Percentiles come from a log-scale histogram (``PER_DECADE`` bins per factor of ten,
from 1 us to 1,000 s: a bin's upper edge is within 12 % of every sample in it), so a
sample costs O(1) and memory is fixed; the maximum is exact.

>>> meter = LagMeter(window_s=10.0)
>>> for i in range(100):
...     _ = meter.add(1e-5 if i < 98 else 0.2, now=float(i) / 100)
>>> s = meter.summary()
>>> s["n"], round(s["p50_us"], -1), s["p99_us"] > 1e5, s["max_us"]
(100, 10.0, True, 200000.0)

A pause of the whole process (SIGSTOP, then SIGCONT) shows without any act on a
clock: the loop says when it starts to wait and whether work is under way then
(``waits``); told of the SIGCONT (``continued``), the meter gives the time since, to count as
one act that late, when work was under way (its peers' and its classical process's
messages would have woken it within moments: a streaming process waits milliseconds),
and nothing when the process was idle (nothing was due, so nothing was late):

>>> meter = LagMeter()
>>> meter.waits(10.0, busy=True)
>>> meter.continued(11.0)
1.0
>>> meter.waits(20.0, busy=False)
>>> meter.continued(25.0) is None
True
>>> meter.waits(30.0, busy=False); meter.waits(30.01, busy=False)  # it streams
>>> meter.continued(31.01)
1.0
"""

from __future__ import annotations

import math
from typing import Any

PER_DECADE = 20
LOW_S = 1e-6  # lags below this count in the first bin
DECADES = 9  # 1 us .. 1000 s
BINS = PER_DECADE * DECADES + 1
STREAMING_S = 0.05  # a loop that waits again within this streams (``waits``)


class _Histogram:
    def __init__(self) -> None:
        self.counts = [0] * BINS
        self.n = 0
        self.max_s = 0.0

    def add(self, lag_s: float) -> None:
        if lag_s <= LOW_S:
            i = 0
        else:
            i = min(BINS - 1, 1 + int(math.log10(lag_s / LOW_S) * PER_DECADE))
        self.counts[i] += 1
        self.n += 1
        self.max_s = max(self.max_s, lag_s)

    def quantile(self, q: float) -> float:
        """Upper edge of the bin holding the ``q`` quantile (s), capped at the max."""
        if self.n == 0:
            return 0.0
        rank = q * self.n
        seen = 0
        for i, c in enumerate(self.counts):
            seen += c
            if seen >= rank and c:
                return min(self.max_s, LOW_S * 10 ** (i / PER_DECADE))
        return self.max_s

    def row(self) -> dict[str, Any]:
        return {
            "n": self.n,
            "p50_us": self.quantile(0.5) * 1e6,
            "p99_us": self.quantile(0.99) * 1e6,
            "max_us": self.max_s * 1e6,
        }


class LagMeter:
    def __init__(self, window_s: float = 1.0) -> None:
        self.window_s = window_s
        self.total = _Histogram()
        self._window = _Histogram()
        self._window_end = -math.inf
        self._waits_since: float | None = None  # the loop waits, with work under way
        self._last_wait = -math.inf

    def waits(self, now: float, busy: bool) -> None:
        """The loop starts to wait at ``now``; ``busy``: work is under way (a reply
        or a timer is due, or a peer is waited on). A loop that last began to wait
        less than ``STREAMING_S`` ago is busy too: it streams, so its next message is
        moments away even in a gap between two rounds with nothing due."""
        last, self._last_wait = self._last_wait, now
        self._waits_since = now if busy or now - last < STREAMING_S else None

    def continued(self, now: float) -> float | None:
        """The process was stopped and continued (SIGCONT) and runs again at ``now``:
        if it waited with work under way, the stop delayed that work by the time since
        it began to wait (see the module's docstring): that lag, to ``add``; None if it
        waited idle."""
        since, self._waits_since = self._waits_since, None
        return None if since is None else now - since

    def add(self, lag_s: float, now: float) -> dict[str, Any] | None:
        """One act ``lag_s`` late (negative: on time) at wall time ``now``; returns
        the window just closed (with ``wall``, its end), if this sample closed one.
        A lag that is not finite (a deadline of minus infinity: "at once") is ignored."""
        if not math.isfinite(lag_s):
            return None
        lag_s = max(0.0, lag_s)
        closed = None
        if now >= self._window_end:
            if self._window.n:
                closed = {"wall": self._window_end, **self._window.row()}
            self._window = _Histogram()
            self._window_end = now + self.window_s
        self._window.add(lag_s)
        self.total.add(lag_s)
        return closed

    def summary(self) -> dict[str, Any]:
        """The whole run: n, p50_us, p99_us, max_us."""
        return self.total.row()
