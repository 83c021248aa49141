"""What ``qnodeos run`` shows while a run works: each app's progress (what it reported
with ``node.progress(done, total)``, with its rate and an ETA), how long it has run,
and how it ended (a failed app's line names its log file).

On a terminal it is a live table (rich), redrawn four times a second; otherwise (a
pipe, a CI log) plain lines on stderr: an app's line when its progress changed, at
most every ``PLAIN_EVERY_S``, a line for apps that report nothing every
``QUIET_EVERY_S``, and a line when an app ends. stdout is left alone (``--json``).
"""

from __future__ import annotations

import json
import sys
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

import trio

PLAIN_EVERY_S = 2.0
READ_MAX = 64 * 1024  # bytes of an app's reports read per look (it may write anything)
RATE_WINDOW_S = 5.0
QUIET_EVERY_S = 10.0


@dataclass
class AppLine:
    name: str
    where: str  # "module on node"
    file: Path  # where the app's reports go ($QNODEOS_PROGRESS)
    done: float | None = None
    total: float | None = None
    unit: str = ""
    # (time, done) of recent reports: the rate is over the last RATE_WINDOW_S of them
    recent: deque[tuple[float, float]] = field(default_factory=lambda: deque(maxlen=256))
    ended: str = ""  # "done", or why it failed
    shown: float = -1.0  # plain mode: the done it last printed
    shown_at: float = 0.0
    pos: int = field(default=0, repr=False)  # how far the file was read

    def read(self) -> None:
        """Take in the app's latest report, if any."""
        try:
            with self.file.open("rb") as f:
                size = f.seek(0, 2)
                if size - self.pos > READ_MAX:  # an app that writes too much: its latest
                    self.pos = size - READ_MAX  # reports only (the first line is cut)
                f.seek(self.pos)
                data = f.read(READ_MAX)
        except OSError:
            return
        lines = data.split(b"\n")
        self.pos += len(data) - len(lines[-1])  # a partial last line waits for its end
        for raw in lines[:-1]:
            try:
                row: dict[str, Any] = json.loads(raw)
                t, done = float(row["t"]), float(row["done"])
                total = None if row.get("total") is None else float(row["total"])
            except (ValueError, KeyError, TypeError):
                continue  # an app may write anything: show only what makes sense
            self.done, self.total = done, total
            self.unit = str(row.get("unit", ""))[:20]
            self.recent.append((t, done))

    def text(self) -> str:
        """e.g. '240/360 runs, 19.5/s, ETA 6 s'."""
        if self.done is None:
            return "running"
        unit = f" {self.unit}" if self.unit else ""
        amount = f"{self.done:g}" + (f"/{self.total:g}" if self.total else "") + unit
        rate = self.rate()
        if rate is None:
            return amount
        out = f"{amount}, {rate:.3g}/s"
        if self.total and rate > 0 and self.done < self.total and not self.ended:
            out += f", ETA {(self.total - self.done) / rate:.0f} s"
        return out

    def state(self) -> str:
        """What the app is doing, or how it ended (with what it last reported)."""
        if not self.ended:
            return self.text()
        return self.ended + (f" ({self.text()})" if self.done is not None else "")

    def rate(self) -> float | None:
        """Per second, over the reports of the last ``RATE_WINDOW_S`` (at least two)."""
        if len(self.recent) < 2:
            return None
        t1, d1 = self.recent[-1]
        t0, d0 = next(
            (s for s in self.recent if s[0] >= t1 - RATE_WINDOW_S and s[0] < t1), self.recent[-2]
        )
        return (d1 - d0) / (t1 - t0) if t1 > t0 else None


class ProgressView:
    def __init__(
        self,
        lines: list[AppLine],
        out: TextIO | None = sys.stderr,
        tty: bool | None = None,
        simulated: Callable[[], float] | None = None,
    ) -> None:
        """``out`` None: show nothing (``--quiet``). ``simulated``: the run's simulated
        clock (a deterministic run), shown next to the wall time it took."""
        self.lines = {a.name: a for a in lines}
        self.out = out
        self.tty = (out is not None and out.isatty()) if tty is None else tty
        self.simulated = simulated
        self.start = time.monotonic()
        self.quiet_at = self.start
        self._live: Any = None

    @property
    def every(self) -> float:
        """Seconds between two looks at the apps' reports."""
        return 0.25 if self.tty else 0.5

    def ended(self, name: str, how: str) -> None:
        """App ``name`` ended: "done", or a failure (naming its log)."""
        line = self.lines.get(name)
        if line is None:
            return
        line.read()
        line.ended = how
        if not self.tty:
            self._say(f"{name}: {line.state()}")

    async def run(self) -> None:
        """Show progress until cancelled."""
        self.open()
        try:
            while True:
                await trio.sleep(self.every)
                self.tick()
        finally:  # the run ended: show how each app ended
            self.close()

    def open(self) -> None:
        """Start showing (on a terminal, the live table)."""
        if not self.tty or self.out is None or self._live is not None:
            return
        try:
            from rich.live import Live
        except ImportError:  # rich is a dependency, but keep working without it
            self.tty = False
            return
        self._live = Live(self._table(), console=self._console(), auto_refresh=False)
        self._live.start()

    def tick(self) -> None:
        """Look at the apps' reports and show what changed (call every ``every`` s)."""
        if self._live is None:
            self._plain()
            return
        for line in self.lines.values():
            line.read()
        self._live.update(self._table(), refresh=True)

    def close(self) -> None:
        """Stop showing; the table's last state (how each app ended) stays."""
        if self._live is not None:
            self._live.update(self._table(), refresh=True)
            self._live.stop()
            self._live = None

    def _plain(self) -> None:
        now = time.monotonic()
        quiet = []
        for line in self.lines.values():
            if line.ended:
                continue
            line.read()
            if line.done is None:
                quiet.append(line.name)
            elif line.done != line.shown and now - line.shown_at >= PLAIN_EVERY_S:
                line.shown, line.shown_at = line.done, now
                self._say(f"{line.name}: {line.text()}")
        if quiet and now - self.quiet_at >= QUIET_EVERY_S:
            self.quiet_at = now
            self._say(f"still running: {', '.join(quiet)} (no progress reported)")

    def _say(self, text: str) -> None:
        if self.out is None:
            return
        print(f"qnodeos: [{self._elapsed(plain=True)}] {text}", file=self.out, flush=True)

    def _elapsed(self, plain: bool = False) -> str:
        """The wall time the run has taken; and the simulated time it covers, if any."""
        wall = time.monotonic() - self.start
        out = f"{wall:6.1f} s" if plain else f"{wall:.0f} s"
        if self.simulated is not None:
            out += f", {self.simulated():.1f} s simulated"
        return out

    def _console(self) -> Any:
        from rich.console import Console

        return Console(file=self.out)

    def _table(self) -> Any:
        from rich.table import Table

        t = Table(title=f"qnodeos run, {self._elapsed()}", title_justify="left")
        for col in ("app", "where", "progress"):
            t.add_column(col)
        for line in self.lines.values():
            style = "red" if line.ended not in ("", "done") else None
            t.add_row(line.name, line.where, line.state(), style=style)
        return t
