"""The device clock the quantum process's adapters share (trio-free, so the real-time
process does not import an event loop).

Device time is wall time since start times ``speed``; with ``speed = inf`` ops run back
to back and nothing sleeps.
"""

from __future__ import annotations

import math
from collections.abc import Callable


class DeviceClock:
    """Device ns from a wall clock ``now()`` in seconds: (now - t0) * 1e9 * speed.
    With ``speed = inf`` device time is only the sum of op durations (now_ns is 0).
    ``epoch_ns`` is the wall time of device time 0, in ns."""

    def __init__(self, speed: float, now: Callable[[], float]) -> None:
        self.speed = speed
        self.now = now
        self.t0 = now()
        self.epoch_ns = round(self.t0 * 1e9)
        self.realtime = not math.isinf(speed)

    def now_ns(self) -> float:
        return (self.now() - self.t0) * 1e9 * self.speed if self.realtime else 0.0

    def wall_at(self, device_ns: float) -> float:
        return self.t0 + device_ns / (1e9 * self.speed)
