"""How a qnodeos command's process begins and ends, whoever starts it (the command line,
or the launcher forking a node): its log handler on stderr (text, or JSON lines for
machines) and its exit status (``guarded``: our own errors print one line,
``qnodeos: error: ...``, and exit 2; Ctrl-C exits 130).
"""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Callable

from ..errors import QNodeOSError


class JsonLines(logging.Formatter):
    """One JSON object per log record: t (ISO time), level, logger, message (and the
    exception's traceback, if any)."""

    def format(self, record: logging.LogRecord) -> str:
        row = {
            "t": self.formatTime(record, "%Y-%m-%dT%H:%M:%S") + f".{int(record.msecs):03d}",
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info:
            row["error"] = self.formatException(record.exc_info)
        return json.dumps(row)


def configure_logging(verbose: int = 0, as_json: bool = False, level: str | None = None) -> None:
    """Log to stderr at ``level`` (default: warning; info with ``verbose`` 1, debug
    with 2), as text or JSON lines. Logging already configured (a forked child of a
    command that did this) is left as it is."""
    level = level or ["warning", "info", "debug"][min(verbose, 2)]
    handler = logging.StreamHandler()
    handler.setFormatter(
        JsonLines()
        if as_json
        else logging.Formatter("%(asctime)s %(name)s %(levelname)s: %(message)s")
    )
    logging.basicConfig(level=level.upper(), handlers=[handler])


def guarded(command: Callable[[], int]) -> int:
    """Run a command; our own errors print one line and exit 2, Ctrl-C exits 130."""
    try:
        return command()
    except QNodeOSError as exc:
        print(f"qnodeos: error: {exc}", file=sys.stderr)
        return 2
    except BaseExceptionGroup as group:  # from a nursery: one of ours, or a real bug
        found = _first(group, QNodeOSError)
        if found is None:
            raise
        print(f"qnodeos: error: {found}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


def _first(group: BaseExceptionGroup[BaseException], kind: type[Exception]) -> Exception | None:
    for exc in group.exceptions:
        if isinstance(exc, kind):
            return exc
        if isinstance(exc, BaseExceptionGroup):
            inner = _first(exc, kind)
            if inner is not None:
                return inner
    return None
