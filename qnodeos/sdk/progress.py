"""An app's progress, for whoever runs it: ``node.progress(done, total)``.

Under ``qnodeos run`` each app's ``$QNODEOS_PROGRESS`` names a file; a call appends one
JSON line to it (at most every ``EVERY_S``, and always the last one, done == total),
and the launcher shows every app's progress while the run works. Anywhere else the
call does nothing, at the cost of one attribute test.
"""

from __future__ import annotations

import json
import os
import time

ENV = "QNODEOS_PROGRESS"
EVERY_S = 0.2


class Reporter:
    def __init__(self, path: str | None) -> None:
        self.fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600) if path else None
        self.last = 0.0

    def report(self, done: float, total: float | None, unit: str) -> None:
        if self.fd is None:
            return
        now = time.monotonic()
        if now - self.last < EVERY_S and done != total:
            return
        self.last = now
        row = {"t": time.time(), "done": done, "total": total, "unit": unit}
        os.write(self.fd, (json.dumps(row) + "\n").encode())


_reporter: Reporter | None = None


def report(done: float, total: float | None = None, unit: str = "") -> None:
    """Record that ``done`` of ``total`` (None: unknown) ``unit`` are done."""
    global _reporter
    if _reporter is None:
        _reporter = Reporter(os.environ.get(ENV))
    _reporter.report(done, total, unit)
