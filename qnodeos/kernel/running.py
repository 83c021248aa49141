"""What the kernel keeps about the block on the device (or waiting to go on), and its
counters."""

from __future__ import annotations

from dataclasses import dataclass, field

from ..lang import messages as m
from .interpreter import Run
from .processes import App


@dataclass
class Current:
    app: App
    block: int
    run: Run
    seq: int
    started_ns: int | None = None
    paused: bool = False
    paused_ns: int | None = None  # device time when it paused
    planned_ns: float = 0.0  # device time of the ops sent so far
    reqs: dict[int, int] = field(default_factory=dict)  # its EPR request index -> req
    waits: tuple[int, int] | None = None  # waiting for (request index, pairs)
    qubit_since: float | None = None  # waiting (since this wall time) for a readout qubit
    failed: m.EprFailed | None = None  # a request of it failed while it waited
    queued_at: float = 0.0  # wall time the app submitted it

    @property
    def on_device(self) -> bool:
        """Whether a request of this block is on the device (its reply not yet in)."""
        return self.seq != 0 and not self.paused


@dataclass
class Counters:
    bad_messages: int = 0
    blocks_done: int = 0
    blocks_failed: int = 0
    stale_replies: int = 0
    apps_expired: int = 0
    spoofed: int = 0  # messages whose claimed sender is not the one their key proves
    device_ns: int = 0
    by_code: dict[str, int] = field(default_factory=dict)
