"""What a node's device did, in device time: the recorder each process of a node keeps
when ``qnodeos run`` asks for a timeline (``$QNODEOS_TIMELINE`` names the directory).

The quantum process records every batch of physical ops it ran (request number,
start, end, how many ops of each kind) and every entanglement round (link, start, end,
attempts, heralds). The classical process records what each request number was for
(an app's block, a move of a qubit's state, a round) and every process-state change of
every app. ``testbed/trace.py`` joins them into one Chrome/Perfetto trace of the whole
network and each node's device utilization. Off (no recorder), nothing is recorded and
the hot paths pay one ``is None`` test.

Spans are JSON lines ``{"kind": ..., ...}``; a recorder keeps at most ``limit`` of them
(the rest are counted in a final ``{"kind": "dropped"}`` line).
"""

from __future__ import annotations

import json
import os
from collections import Counter
from pathlib import Path
from typing import Any

ENV = "QNODEOS_TIMELINE"
LIMIT = 1_000_000


class Recorder:
    def __init__(self, path: Path, limit: int = LIMIT) -> None:
        self.path = path
        self.limit = limit
        self.rows: list[dict[str, Any]] = []
        self.dropped = 0

    def add(self, **row: Any) -> None:
        if len(self.rows) < self.limit:
            self.rows.append(row)
        else:
            self.dropped += 1

    def batch(
        self, seq: int, start: float, end: float, ops: Counter[str], transfer_ns: float = 0.0
    ) -> None:
        """A batch of ops from ``start`` to ``end`` (back to back: its work), and how
        long it waited for states held by other processes (``waits.transfer``)."""
        self.add(
            kind="batch", seq=seq, start=start, end=end, ops=dict(ops),
            waits={"transfer": transfer_ns},
        )  # fmt: skip

    def write(self) -> None:
        """Write what was recorded (once, at exit)."""
        tail = [{"kind": "dropped", "count": self.dropped}] if self.dropped else []
        with self.path.open("w") as f:
            for row in [*self.rows, *tail]:
                f.write(json.dumps(row) + "\n")


def recorder(node: str, part: str) -> Recorder | None:
    """The recorder for ``part`` ("device" or "kernel") of ``node``, if a timeline was
    asked for ($QNODEOS_TIMELINE), else None."""
    where = os.environ.get(ENV)
    if not where:
        return None
    return Recorder(Path(where) / f"timeline-{node}-{part}.jsonl")
