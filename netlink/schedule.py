"""A link's network schedule (sans-IO): entanglement attempts only in its time bins.

Device time is cut into bins of ``bin_ns``; the pattern repeats every ``period`` bins,
and the link may attempt in the bins whose index modulo ``period`` is in ``bins``
(QNodeOS's and Qoala's time-bin network schedule). Outside them its nodes' devices are
free for other work. The heralding station applies it: a round's attempts start at the
link's next bin and stop when that bin ends; bins that follow each other are one
stretch of the link's time (a round is not cut between them).

In real time the two ends' devices started at different moments, so bins are counted
from a time both share, the wall clock's epoch (times speed): ``aligned`` gives the
schedule in one device's own time, from the wall time of its device time 0.

Getting a round to the device takes wall time (the node's timer wakes late by up to a
millisecond, then a message goes to the quantum process), so in real time a node hands
its device a round ``LEAD_S`` before the bin (``lead_ns``), and the station holds a
round that came early until its bin begins. A round that came after its bin ended
would hold the device until the next bin: it ends at once instead if that is more than
``2 * LEAD_S`` away (the node sends it again before that bin), so blocks can use the
device meanwhile.

>>> s = TimeBins(bin_ns=100, period=4, bins=(1, 3))
>>> s.window(0), s.window(150), s.window(200)
((100, 200), (150, 200), (300, 400))
>>> s.fraction
0.5
>>> TimeBins(bin_ns=100, period=4, bins=(0, 1)).window(50)  # bins 0 and 1: one stretch
(50, 200)
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from fractions import Fraction

LEAD_S = 0.002  # wall s before its bin that a node hands its device a round (real time)


def lead_ns(speed: float) -> float:
    """``LEAD_S`` in the device time of a device running at ``speed`` (0 at speed inf:
    device time is not wall time, and waiting for a bin costs no wall time)."""
    return 0.0 if math.isinf(speed) else LEAD_S * 1e9 * speed


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
        is ``t`` when ``t`` is inside one of its bins with that much left. A stretch
        runs over consecutive bins of the link (at most one period)."""
        off = self.offset_ns
        k = int((t + off) // self.bin_ns)
        for step in range(2 * self.period + 1):
            j = k + step
            if j % self.period in self.bins:
                n = 1
                while n < self.period and (j + n) % self.period in self.bins:
                    n += 1
                start = max(t, j * self.bin_ns - off)
                end = (j + n) * self.bin_ns - off
                if end - start >= room:
                    return start, end
        raise AssertionError("a schedule has a bin longer than one cycle")  # checked when parsed

    def time_in(self, t0: float, t1: float) -> float:
        """How much of device time ``t0`` to ``t1`` is this link's.

        >>> TimeBins(bin_ns=100, period=4, bins=(1, 3)).time_in(50, 350)
        150.0
        """
        return max(0.0, self._upto(t1) - self._upto(t0))

    def _upto(self, t: float) -> float:
        """The link's time from the pattern's origin to device time ``t``."""
        k, rem = divmod(t + self.offset_ns, self.bin_ns)
        full, part = divmod(int(k), self.period)
        whole = full * len(self.bins) + sum(1 for b in self.bins if b < part)
        return whole * self.bin_ns + (rem if part in self.bins else 0.0)

    def describe(self) -> str:
        """One line both ends of a link compare: the same text, the same bins."""
        return f"bins {list(self.bins)} of {self.period} x {self.bin_ns:g} ns"
