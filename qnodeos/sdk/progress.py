"""An app's progress, for whoever runs it: ``node.progress(done, total)``.

Under ``qnodeos run`` each app's ``$QNODEOS_PROGRESS`` names a file; a call appends one
JSON line to it (at most every ``EVERY_S``, and always the last one, done == total),
and the launcher shows every app's progress while the run works. Apps that share a
process (a deterministic run) each report to their own file: the runner wraps each
app's ``main`` in ``reporting_to(file)``. Anywhere else the call does nothing, at the
cost of a lookup or two.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

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

    def close(self) -> None:
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None


_reporter: Reporter | None = None
# an app's own reporter, in a process that runs several apps (its tasks inherit it)
_this_app: ContextVar[Reporter | None] = ContextVar("qnodeos_progress", default=None)


@contextmanager
def reporting_to(path: str | None) -> Iterator[None]:
    """Meanwhile, ``report`` calls of this task and of the tasks it starts go to
    ``path`` (None: nowhere), not to ``$QNODEOS_PROGRESS``."""
    reporter = Reporter(path)
    token = _this_app.set(reporter)
    try:
        yield
    finally:
        _this_app.reset(token)
        reporter.close()


def report(done: float, total: float | None = None, unit: str = "") -> None:
    """Record that ``done`` of ``total`` (None: unknown) ``unit`` are done."""
    global _reporter
    own = _this_app.get()
    if own is not None:
        own.report(done, total, unit)
        return
    if _reporter is None:
        _reporter = Reporter(os.environ.get(ENV))
    _reporter.report(done, total, unit)
