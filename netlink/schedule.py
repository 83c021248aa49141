"""A link's network schedule (sans-IO): entanglement attempts only in its time bins.

Device time is cut into bins of ``bin_ns``; the pattern repeats every ``period`` bins,
and the link may attempt in the bins whose index modulo ``period`` is in ``bins``
(QNodeOS's and Qoala's time-bin network schedule). Outside them its nodes' devices are
free for other work. The heralding station applies it: a round's attempts start at the
link's next bin and stop when that bin ends.

In real time the two ends' devices started at different moments, so bins are counted
from a time both share, the wall clock's epoch (times speed): ``aligned`` gives the
schedule in one device's own time, from the wall time of its device time 0.

>>> s = TimeBins(bin_ns=100, period=4, bins=(1, 3))
>>> s.window(0), s.window(150), s.window(200)
((100, 200), (150, 200), (300, 400))
>>> s.fraction
0.5
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from fractions import Fraction


@dataclass(frozen=True)
class TimeBins:
    bin_ns: float
    period: int
    bins: tuple[int, ...]
    offset_ns: float = 0  # where this device's time 0 falls in the pattern

    def aligned(self, epoch_ns: int, speed: float) -> TimeBins:
        """This schedule in the time of a device whose time 0 was wall time
        ``epoch_ns`` (ns since the epoch), running at ``speed``; unchanged at speed
        inf (no shared clock: the station's device time counts)."""
        if math.isinf(speed):
            return self
        span = Fraction(self.bin_ns) * self.period
        return replace(self, offset_ns=float((Fraction(epoch_ns) * Fraction(speed)) % span))

    @property
    def fraction(self) -> float:
        """The share of time that is this link's."""
        return len(self.bins) / self.period

    def window(self, t: float, room: float = 0.0) -> tuple[float, float]:
        """The first stretch of this link's time at or after device time ``t`` with at
        least ``room`` ns of it left (one attempt cycle, say): (start, end); ``start``
        is ``t`` when ``t`` is inside one of its bins with that much left."""
        off = self.offset_ns
        k = int((t + off) // self.bin_ns)
        for step in range(2 * self.period + 1):
            if (k + step) % self.period in self.bins:
                start = max(t, (k + step) * self.bin_ns - off)
                end = (k + step + 1) * self.bin_ns - off
                if end - start >= room:
                    return start, end
        raise AssertionError("a schedule has a bin longer than one cycle")  # checked when parsed

    def describe(self) -> str:
        """One line both ends of a link compare: the same text, the same bins."""
        return f"bins {list(self.bins)} of {self.period} x {self.bin_ns:g} ns"
