"""Messages from apps, served fairly (sans-IO: the adapter reads the socket, measures
what each message cost, and asks which to serve next).

One socket brings every app's messages in arrival order. Served in that order, an app
that sends messages back to back, or messages that are costly to read (a NetQASM block
at the size limit takes netqasm's parser two seconds), makes every other app wait behind
them. Here each connection has its own queue, and the next message served is the oldest
one of the connection that has used the least of the node's time lately (its usage
decays with a half-life of ``half_life_s``): start-time fair queueing on the time each
message cost to read and handle. An app's own backlog and its costly messages delay it
alone; an app with nothing queued pays nothing, and a new one starts level with the
least-served backlogged app, so going quiet earns no burst.

No connection may take more than ``share`` of the node's time (of one core) for
long: one whose decayed usage is above what ``share`` sustains waits until it has
decayed, even if the node has nothing else to do, so a flood keeps the node no busier
than that (a process kept busy loses the quick wake-ups the OS gives processes that
sleep, and every app's latency would pay for it).

Capped: at most ``per_app`` queued messages (``PER_APP_BYTES``) per connection and
``total`` (``TOTAL_BYTES``) in all; beyond, ``put`` says no and the adapter refuses
the message without reading it.

>>> q = Intake(per_app=2)
>>> [q.put(a, [a, b"m"], None, now=0.0) for a in (b"x", b"x", b"x", b"y")]
[True, True, False, True]
>>> q.take()[0], q.charge(b"x", 0.1, now=0.0), q.take()[0], q.take()[0], q.take()
(b'x', None, b'y', b'x', None)
>>> q.pass_through(b"x", 0.0), q.put(b"y", [b"y", b"m"], None, 0.0), q.pass_through(b"x", 0.0)
(True, True, False)
"""

from __future__ import annotations

import math
from collections import deque

PER_APP = 64  # queued messages per connection
TOTAL = 4096  # queued messages in all
PER_APP_BYTES = 16 << 20  # bytes queued per connection (a message is at most 4 MiB)
TOTAL_BYTES = 64 << 20  # bytes queued in all
HALF_LIFE_S = 1.0  # how fast past usage is forgiven
SHARE = 0.25  # most of one core one connection's messages may take, sustained
KEPT = 1024  # connections whose usage is remembered while idle
MIN_WAIT_S = 1e-6  # a wait is never shorter: now + wait must be later than now (float)

Item = tuple[bytes, list[bytes], str | None]  # (connection, frames, authenticated user)


class Intake:
    def __init__(
        self,
        per_app: int = PER_APP,
        total: int = TOTAL,
        half_life_s: float = HALF_LIFE_S,
        share: float = SHARE,
    ) -> None:
        self.per_app = per_app
        self.total = total
        self.rate = math.log(2) / half_life_s
        self.limit = share / self.rate  # the decayed usage of ``share`` sustained
        self.queues: dict[bytes, deque[Item]] = {}
        self.held: dict[bytes, int] = {}  # bytes queued per connection
        self.used: dict[bytes, tuple[float, float]] = {}  # addr -> (seconds, as of when)
        self.size = 0
        self.bytes = 0

    def __len__(self) -> int:
        return self.size

    def _usage(self, addr: bytes, now: float) -> float:
        got = self.used.get(addr)
        if got is None:
            return 0.0
        seconds, when = got
        return seconds * math.exp(-self.rate * max(0.0, now - when))

    def put(self, addr: bytes, frames: list[bytes], user: str | None, now: float) -> bool:
        """Queue a message of connection ``addr``; False if its queue (or all) is full."""
        n = sum(len(f) for f in frames)
        q = self.queues.get(addr)
        held = self.held.get(addr, 0)
        if (
            self.size >= self.total
            or self.bytes + n > TOTAL_BYTES
            or held + n > PER_APP_BYTES
            or (q is not None and len(q) >= self.per_app)
        ):
            return False
        if q is None:
            q = self.queues[addr] = deque()
            if addr not in self.used:  # a newcomer starts level with the backlogged
                level = min((self._usage(a, now) for a in self.queues if a != addr), default=0)
                self.used[addr] = (level, now)
        q.append((addr, frames, user))
        self.size += 1
        self.bytes += n
        self.held[addr] = held + n
        return True

    def pass_through(self, addr: bytes, now: float) -> bool:
        """Whether a message of ``addr`` arriving now may be served at once, unqueued:
        nothing waits (so ``take`` would pick it) and ``addr`` is within its share. The
        same answer as ``put`` then ``take``, without their queue (the usual case)."""
        return not self.size and self._usage(addr, now) <= self.limit

    def take(self, now: float = 0.0) -> Item | None:
        """The next message to serve (None if none waits, or none may be served yet:
        see ``wait``)."""
        if not self.queues:
            return None
        addr = min(self.queues, key=lambda a: self._usage(a, now))
        if self._usage(addr, now) > self.limit:
            return None
        q = self.queues[addr]
        item = q.popleft()
        n = sum(len(f) for f in item[1])
        self.size -= 1
        self.bytes -= n
        self.held[addr] -= n
        if not q:
            del self.queues[addr]
            del self.held[addr]
        return item

    def wait(self, now: float) -> float:
        """Seconds until a queued message may be served (inf if none is queued)."""
        if not self.queues:
            return math.inf
        least = min(self._usage(a, now) for a in self.queues)
        if least <= self.limit:
            return 0.0
        # (usage a hair over the limit gives a wait below a clock tick: under a mock
        # clock that does not move by itself, waiting it would never get under)
        return max(MIN_WAIT_S, math.log(least / self.limit) / self.rate)

    def charge(self, addr: bytes, seconds: float, now: float) -> None:
        """Connection ``addr``'s message cost ``seconds`` of the node's time."""
        self.used[addr] = (self._usage(addr, now) + seconds, now)
        self.used[addr] = self.used.pop(addr)  # most recent last
        while len(self.used) > KEPT:
            oldest = next(iter(self.used))
            if oldest in self.queues:
                break
            del self.used[oldest]
