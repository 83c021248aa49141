"""Is the other side still there? Heartbeats, silence and the OS's word, sans-IO.

Every judge of another process keeps one ``Liveness``: the classical process (of other
nodes' classical processes, and of its apps: their leases), the quantum process (of
linked nodes' quantum processes) and the SDK (of its node). Every message from a peer
counts as a sign of life (``heard``); ``tick`` says which peers are due a ping (every
``interval_s``, if ``pings``; every ``quiet_every`` intervals for one that spoke since)
and which are down now. A peer never heard from is not declared down (it may not have
started yet). A peer that speaks again is up again.

Slow is not dead. On a busy machine a process can go seconds without a core, and its
silence then says nothing about whether it is there. So:

- When a peer has missed two pings, and again every ``interval_s`` while it stays
  silent, the OS is asked about the process it said it is (``claim``; the adapter
  injects ``look``, see ``qnodeos.runtime.procinfo``). Gone: it is down at once. Stopped
  (SIGSTOP): it is down once its silence passes the threshold, as a silent remote peer.
  Alive (running or waiting for a core): it is slow, not down, until it has been
  silent for ``hung_s`` (a process that runs but never speaks is hung).
- The threshold adapts to the gaps seen between the peer's messages (phi accrual, as
  in Cassandra and Akka: Hayashibara et al., 2004): a peer is suspected when a gap
  that long had odds below 10^-8 under a normal fit of its recent gaps (standard
  deviation at least ``interval_s / 2``), and never before ``timeout_s``. On a quiet
  machine that is ``timeout_s``; when load stretches the gaps, it grows with them.
  Peers the OS cannot see (on another host) are judged this way alone.
- If ``tick`` itself comes much later than it should (this process was paused:
  SIGSTOP, a laptop sleep, or starved of a core), silence during the pause says
  nothing about the peers (nobody pinged them): every judged peer's silence is moved
  on past it. A tick may be up to ``allowance`` late (the silence counts as on any
  other tick); only the lateness beyond that is the pause. Silence before the pause
  still counts, so a dead peer is still found when every tick is late (a starved
  process), and when every wait on it begins with a late first tick.

Silence matters only while something waits on the peer. ``on_demand``: only the peers
the adapter says something waits on (``want``) are pinged and judged; the pings then
ask for an answer (a peer answers a ping that asks at once), so a peer that nobody
waits on costs nothing, and an idle node sends nothing at all. A peer's silence, and
the gaps its threshold is fitted to, count from when it was first wanted. A process
that dies is found meanwhile by its closed connection, not by silence.

>>> live = Liveness(["b"], interval_s=0.25, timeout_s=1.5)
>>> live.heard("b", 0.0)
False
>>> live.tick(0.05)
(['b'], [])
>>> [round(t, 2) for t in (0.1 * i for i in range(1, 20)) if live.tick(t)[1]]  # b: nothing
[1.6]
>>> live.reason["b"], live.verdict("b")
('nothing heard for 1.6 s', 'stopped answering (nothing heard for 1.6 s)')
>>> live.is_down("b"), live.heard("b", 2.0), live.is_down("b")
(True, True, False)

On demand, nothing is due until something waits on ``b``; its silence counts from then:

>>> live = Liveness(["b"], timeout_s=1.5, on_demand=True)
>>> live.heard("b", 0.0), live.next_deadline(), live.tick(10.0)
(False, inf, ([], []))
>>> live.want(["b"], 20.0)
>>> live.tick(20.0), [20 + i / 4 for i in range(1, 12) if live.tick(20 + i / 4)[1]]
((['b'], []), [21.75])

A peer whose process the OS says is alive is slow, not dead, until ``hung_s``:

>>> live = Liveness(["b"], timeout_s=1.5, hung_s=10.0, look=lambda proc: "alive")
>>> live.heard("b", 0.0), live.claim("b", "pid 42")
(False, None)
>>> [t / 2 for t in range(1, 24) if live.tick(t / 2)[1]], live.slow, live.longest_spared_s
([10.0], 1, 9.5)
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable, Iterable
from typing import Any

HUNG_S = 30.0  # a process the OS says is alive, silent this long, is hung
GAPS_KEPT = 64  # recent gaps between a peer's messages, for the adaptive threshold
PHI = 8.0  # suspect a peer when a gap as long as its silence had odds below 10^-PHI


def _z_for(phi: float) -> float:
    """The z-score whose upper tail of the normal distribution is 10**-phi."""
    lo, hi = 0.0, 40.0
    for _ in range(100):
        mid = (lo + hi) / 2
        if 0.5 * math.erfc(mid / math.sqrt(2)) > 10**-phi:
            lo = mid
        else:
            hi = mid
    return hi


_Z = _z_for(PHI)

Look = Callable[[Any], "str | None"]


QUIET_EVERY = 4  # (``quiet_every``) what the classical and quantum processes use
DOWN_ASK_S = 0.75  # a peer that is down is asked this often whether it is back
# (under the 4 ping intervals after which a late tick reads as a pause of this process)


class Liveness:
    def __init__(
        self,
        peers: Iterable[str],
        *,
        interval_s: float = 0.25,
        timeout_s: float = 1.5,
        hung_s: float = HUNG_S,
        look: Look | None = None,
        pings: bool = True,
        on_demand: bool = False,
        quiet_every: int = 1,
    ) -> None:
        self.interval_s = interval_s
        self.quiet_every = quiet_every  # a peer heard since its last ping: every this many
        self.on_demand = on_demand
        self.wanted: set[str] = set()  # on demand: the peers pinged and judged now
        self._unwanted_since: dict[str, float] = {}  # when each stopped being wanted
        self.timeout_s = timeout_s
        self.hung_s = max(hung_s, timeout_s)
        self.look = look
        self.pings = pings
        self.last_heard: dict[str, float] = {}
        self.last_ping: dict[str, float] = {}
        self.spoke: dict[str, float] = {}  # when each last really spoke (not shifted)
        self._asking: set[str] = set()  # just wanted: asked at once
        self.claims: dict[str, Any] = {}  # peer -> the process it says it is
        self.seen: set[str] = set()  # peers whose claimed process the OS can see
        self.gaps: dict[str, deque[float]] = {}
        self._sums: dict[str, float] = {}  # of each peer's gaps, and of their squares
        self._squares: dict[str, float] = {}
        self.looked: dict[str, float] = {}  # when the OS was last asked, while silent
        self.down: set[str] = set()
        self.reason: dict[str, str] = {}  # why each peer in ``down`` is (see ``verdict``)
        self._last_tick = -math.inf
        self.pauses = 0  # times this process found it had been paused
        self.slow = 0  # silences during which a peer was spared: the OS said it was alive
        self.spared: set[str] = set()  # peers spared in their current silence
        self.longest_spared_s = 0.0  # the longest silence so spared
        for p in peers:
            self.add(p)

    def add(self, peer: str) -> None:
        """Judge ``peer`` too (not heard from yet)."""
        self.last_heard.setdefault(peer, -math.inf)
        self.last_ping.setdefault(peer, -math.inf)
        self.gaps.setdefault(peer, deque(maxlen=GAPS_KEPT))
        self._sums.setdefault(peer, 0.0)
        self._squares.setdefault(peer, 0.0)

    def remove(self, peer: str) -> None:
        """Stop judging ``peer``."""
        tables = (self.last_heard, self.last_ping, self.spoke, self.claims, self.gaps, self.looked)
        for table in (*tables, self._sums, self._squares):
            table.pop(peer, None)
        self.spared.discard(peer)
        self.seen.discard(peer)
        self._asking.discard(peer)
        self.wanted.discard(peer)
        self._unwanted_since.pop(peer, None)
        self.down.discard(peer)
        self.reason.pop(peer, None)

    def want(self, peers: Iterable[str], now: float) -> None:
        """(``on_demand``) Something waits on ``peers`` now: only they are pinged (asked
        to answer) and judged. Only silence while a peer is wanted counts (nobody asked
        it to speak meanwhile), and so do the gaps its threshold is fitted to: silence
        in earlier waits still counts, so a stopped peer is found even by a series of
        short waits."""
        wanted = {p for p in peers if p in self.last_heard}
        if wanted and not self.wanted:  # watching starts: a stall from now is a pause
            self._last_tick = now
        for p in self.wanted - wanted:
            self._unwanted_since[p] = now
        for p in wanted - self.wanted:
            since, last = self._unwanted_since.pop(p, -math.inf), self.last_heard[p]
            if last > -math.inf:  # shifted past the time nobody waited on it
                self.last_heard[p] = now if last >= since else last + (now - since)
            # ask it at once; one that is down, after ``DOWN_ASK_S`` (it just went)
            self.last_ping[p] = now if p in self.down else now - self.interval_s
            if p not in self.down:
                self._asking.add(p)  # (due now even if it spoke a moment ago)
            self.looked.pop(p, None)
            self.spared.discard(p)
        self.wanted = wanted

    def claim(self, peer: str, proc: Any) -> None:
        """``peer`` says it is process ``proc`` (what ``look`` takes)."""
        if peer in self.last_heard and proc is not None and self.claims.get(peer) != proc:
            self.claims[peer] = proc
            # (asked once per claim: a process on another host cannot be seen)
            if self.look is not None and self.look(proc) is not None:
                self.seen.add(peer)
            else:
                self.seen.discard(peer)

    def heard(self, peer: str, now: float) -> bool:
        """A message from ``peer`` arrived; True if it was down and is back."""
        last = self.last_heard.get(peer)
        if last is None:
            return False
        if last > -math.inf and now > last and (not self.on_demand or peer in self.wanted):
            gaps, gap = self.gaps[peer], now - last
            if len(gaps) == GAPS_KEPT:
                old = gaps[0]
                self._sums[peer] -= old
                self._squares[peer] -= old * old
            gaps.append(gap)
            self._sums[peer] += gap
            self._squares[peer] += gap * gap
        self.last_heard[peer] = self.spoke[peer] = now
        if self.looked:
            self.looked.pop(peer, None)
            self.spared.discard(peer)
        if peer in self.down:
            self.down.discard(peer)
            self.reason.pop(peer, None)
            return True
        return False

    def is_down(self, peer: str) -> bool:
        return peer in self.down

    @property
    def allowance(self) -> float:
        """How late a tick may come before the lateness beyond this reads as a pause."""
        return max(self.timeout_s / 2, 4 * self.interval_s)

    def paused(self, now: float) -> bool:
        """Whether this process was just paused (the last tick is far behind)."""
        if self._last_tick == -math.inf:
            return False
        return now - self._last_tick > self.allowance

    def threshold(self, peer: str) -> float:
        """How long ``peer`` may be silent before it is suspected: ``timeout_s``, or
        longer when its recent gaps were long or irregular (phi accrual)."""
        gaps = self.gaps.get(peer)
        if not gaps:
            return self.timeout_s
        n = len(gaps)
        mean = self._sums[peer] / n  # running sums: O(1), on every turn of a loop
        var = max(0.0, self._squares[peer] / n - mean * mean)
        sd = max(math.sqrt(var), self.interval_s / 2)
        return max(self.timeout_s, mean + _Z * sd)

    def tick(self, now: float, judge: bool = True) -> tuple[list[str], list[str]]:
        """(peers due a ping now, peers that just went down: ``reason`` says why).
        ``judge=False``: pings only (the adapter has unread messages, which may be the
        very signs of life a judgement would miss)."""
        if self.paused(now):
            # Not a restart of every peer's silence: that hid a dead peer from a
            # starved process (each wait on it began with a late first tick).
            self.pauses += 1
            lost = now - self._last_tick - self.allowance
            for p, t in self._judged(self.last_heard):
                if t > -math.inf:
                    self.last_heard[p] = min(now, t + lost)
            self.looked.clear()
            self.spared.clear()
        # on demand, nothing ticks while nothing is wanted: a late tick then is no pause
        self._last_tick = now if not self.on_demand or self.wanted else -math.inf
        ping: list[str] = []
        if self.pings:  # the same sums as ``next_deadline``'s, so a tick at it acts
            ping = [p for p, t in self._judged(self.last_ping) if now >= t + self._every(p, t)]
            for p in ping:
                self.last_ping[p] = now
                self._asking.discard(p)
        if not judge:
            return ping, []
        gone = []
        for p, t in self._judged(self.last_heard):
            if p in self.down or t == -math.inf:
                continue
            why = self._judge(p, t, now)
            if why is not None:
                gone.append(p)
                self.reason[p] = why
        self.down.update(gone)
        return ping, gone

    def _every(self, peer: str, pinged: float) -> float:
        """How long after the last ping (at ``pinged``) ``peer`` is pinged again: a
        peer that is down only now and then, to learn when it is back; one that spoke
        since (its messages are signs of life enough) only every ``quiet_every``
        intervals, to keep up the process claims both ends learn from pings (a busy
        link no longer pays a ping and an answer every interval while it streams). Only
        a peer whose process the OS can see (this host): one on another host is judged
        by silence alone, and a ping 4 intervals apart would leave too little of the
        timeout for its answer to come back in.
        Both the classical and the quantum process use ``QUIET_EVERY`` (a pause of the
        quantum process shows as lag by its SIGCONT, ``qdevice.lag``, not by a ping
        falling due during it)."""
        if peer in self.down:
            return max(DOWN_ASK_S, self.interval_s)
        if (
            peer not in self._asking
            and self.spoke.get(peer, -math.inf) > pinged
            and (self.look is None or peer in self.seen)
        ):
            return self.quiet_every * self.interval_s
        return self.interval_s

    def _judged(self, table: dict[str, float]) -> Iterable[tuple[str, float]]:
        """``table``'s entries for the peers judged now (on demand: those wanted)."""
        if not self.on_demand:
            return table.items()
        return [(p, table[p]) for p in self.wanted]

    def _judge(self, peer: str, last: float, now: float) -> str | None:
        """Why ``peer``, last heard at ``last``, is down now (None: it is not). Times
        are compared as ``next_deadline`` computes them, so a tick at a deadline acts
        on it (a difference can round below the sum it came from)."""
        if now < last + min(2 * self.interval_s, self.timeout_s):
            return None
        silent = now - last
        state = None
        proc = self.claims.get(peer)
        if proc is not None and self.look is not None:
            recent = now < self.looked.get(peer, -math.inf) + self.interval_s
            if recent and now < last + self.timeout_s:
                return None  # asked the OS a moment ago
            self.looked[peer] = now
            state = self.look(proc)
        heard = f"nothing heard for {silent:.1f} s"
        if state == "gone":
            return f"{heard}; its process is gone"
        if now <= last + self.threshold(peer):  # suspected once silence exceeds it
            return None
        if state == "alive":
            if silent < self.hung_s:
                if peer not in self.spared:
                    self.spared.add(peer)
                    self.slow += 1
                self.longest_spared_s = max(self.longest_spared_s, silent)
                return None
            return f"{heard}, though its process runs: hung"
        if state == "stopped":
            return f"{heard}; its process is stopped"
        return heard

    def alive(self, peer: str) -> bool:
        """Whether the OS says ``peer``'s process (as it claimed) is alive: then a
        wait for it is a wait for a slow process, not a dead one."""
        proc = self.claims.get(peer)
        return proc is not None and self.look is not None and self.look(proc) == "alive"

    def verdict(self, peer: str) -> str:
        """Why ``peer`` is down, as a phrase: "stopped answering (...)", or "ended
        (...)" when the OS said its process is gone."""
        why = self.reason.get(peer, "")
        return f"ended ({why})" if why.endswith("is gone") else f"stopped answering ({why})"

    def next_deadline(self) -> float:
        """When ``tick`` next has something to do."""
        if self.on_demand and not self.wanted:
            return math.inf  # (asked after every message of a quantum process)
        pinged = self._judged(self.last_ping) if self.pings else []
        times = [t + self._every(p, t) for p, t in pinged]
        first = min(2 * self.interval_s, self.timeout_s)
        for p, t in self._judged(self.last_heard):
            if p in self.down or t == -math.inf:
                continue
            if p in self.claims and self.look is not None:  # the OS is asked meanwhile
                looked = self.looked.get(p)
                times.append(t + first if looked is None else looked + self.interval_s)
            else:  # the first time at which the silence exceeds the threshold
                times.append(math.nextafter(t + self.threshold(p), math.inf))
        return min(times, default=math.inf)


class Unread:
    """Whether silence may be judged now: not while messages wait unread (they may be
    the very signs of life a judgement would miss, on a machine too busy to read them
    yet), unless they have waited ``limit_s`` at every turn (a flood).

    >>> u = Unread(limit_s=1.0)
    >>> u.may_judge(False, 0.0), u.may_judge(True, 0.5), u.may_judge(True, 1.6)
    (True, False, True)
    """

    def __init__(self, limit_s: float) -> None:
        self.limit_s = limit_s
        self.since: float | None = None  # messages have waited unread since

    def may_judge(self, unread: bool, now: float) -> bool:
        if not unread:
            self.since = None
            return True
        if self.since is None:
            self.since = now
        return now - self.since > self.limit_s
