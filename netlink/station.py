"""The heralding station of one link, sans-IO.

How it works: for each round of entanglement generation, both ends' link layers agree on
a round ``key`` and each sends an ``Attempt``: from device time ``start_ns`` it will
attempt every cycle, at most ``max_attempts`` times, for up to ``pairs`` pairs, needing
``dead_ns`` after each herald before it can attempt again (its qubit is being measured
or corrected). When both attempts of a key are in, the station runs the round over their
common window (the later start, the earlier end): it draws the attempts to each herald
from the link model's geometric distribution (never attempt by attempt), each herald
followed by the longer of the two dead times, until it has the pairs or the window is
used up. It answers *both* ends with the same ``RoundEnd``: every herald (station
number, attempts, time, Bell state, the delivered two-qubit state) and how the round
ended. A pair therefore reaches both ends or neither. With a network schedule
(``TimeBins``) a round's attempts start at the link's next time bin and stop at its
end, or go on in the next bins if they begin within ``bridge_ns`` and the round has
attempts left for all of them (the attempts to a herald add up over the gap: they are
memoryless); a round whose bin is more than ``hold_ns`` away ends at once with no
attempt (in real time its nodes' devices are free for other work until they send it
again). An attempt whose peer never comes is answered, with no herald, once its window
has passed (``handle_timer``); if the peer's attempt for that round comes later after
all, it gets the same answer, so both ends still move on together.

Input from outside is checked: an attempt from a node that is not on this link, a
second attempt for the same key from the same node, or a bad window gets a
``Rejected`` naming the problem; station state is unchanged.

>>> import numpy as np
>>> from qnodeos.netlink.models import Perfect
>>> st = HeraldingStation(link="a-b", nodes=("a", "b"), model=Perfect(cycle_ns=10),
...                       rng=np.random.default_rng(1))
>>> st.receive(Attempt(node="a", key="r1", start_ns=0, max_attempts=5, pairs=3))
[]
>>> out = st.receive(Attempt(node="b", key="r1", start_ns=20, max_attempts=5, pairs=3))
>>> [o.node for o in out], [int(h.at_ns) for h in out[0].msg.heralds]
(['a', 'b'], [30, 40, 50])
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import numpy as np

from .models import LinkModel, Matrix
from .schedule import TimeBins

EXPIRED_KEPT = 4096  # how many one-sided round endings are remembered for late peers


@dataclass(frozen=True, kw_only=True)
class Attempt:
    """Node ``node`` attempts round ``key`` from ``start_ns`` (device time) for up to
    ``max_attempts``, for up to ``pairs`` pairs, needing ``dead_ns`` after each herald;
    it waits for its peer's attempt until wall time ``expires_s``."""

    node: str
    key: str
    start_ns: float
    max_attempts: int
    expires_s: float = float("inf")
    pairs: int = 1
    dead_ns: float = 0.0


@dataclass(frozen=True, kw_only=True)
class Herald:
    """One pair of a round: station number ``seq`` (both ends get the same entanglement
    id), ``attempts`` since the previous herald (or the round's start), when."""

    seq: int
    attempts: int
    at_ns: float
    bell_index: int
    rho: Matrix


@dataclass(frozen=True, kw_only=True)
class RoundEnd:
    """How round ``key`` went: its heralds in time order, then ``attempts`` more that
    heralded nothing, ending at ``at_ns``; ``reason`` says why it stopped short of its
    pairs ("" if it made them all). The heralds come as columns (one entry per herald:
    station number, attempts since the previous herald or the round's start, time, Bell
    state, delivered state); ``heralds`` gives them one ``Herald`` each."""

    key: str
    attempts: int
    at_ns: float
    reason: str = ""
    again: bool = False  # the round never ran (the ends disagreed): attempt the same key
    start_ns: float = -1.0  # when its attempts began (-1: it made none)
    seqs: Sequence[int] = ()
    herald_attempts: Sequence[int] = ()
    herald_ns: Sequence[float] = ()
    bell_index: Sequence[int] = ()
    rho: Sequence[Matrix] = ()

    @cached_property
    def heralds(self) -> tuple[Herald, ...]:
        """The heralds, one object each."""
        cols = zip(
            self.seqs, self.herald_attempts, self.herald_ns, self.bell_index, self.rho,
            strict=True,
        )  # fmt: skip
        return tuple(
            Herald(seq=s, attempts=a, at_ns=t, bell_index=b, rho=r) for s, a, t, b, r in cols
        )


@dataclass(frozen=True, kw_only=True)
class Rejected:
    """An attempt the station could not use; nothing changed."""

    key: str
    reason: str


@dataclass(frozen=True)
class ToNode:
    node: str
    msg: RoundEnd | Rejected


MAX_PAIRS_PER_ROUND = 4096


class HeraldingStation:
    def __init__(
        self,
        *,
        link: str,
        nodes: tuple[str, str],
        model: LinkModel,
        rng: np.random.Generator,
        schedule: TimeBins | None = None,
        hold_ns: float = math.inf,
        bridge_ns: float = 0.0,
    ) -> None:
        if nodes[0] == nodes[1]:
            raise ValueError(f"link {link}: both ends are {nodes[0]!r}")
        self.link = link
        self.nodes = nodes
        self.model = model
        self.rng = rng
        self.schedule = schedule  # None: attempts at any time
        # a round that comes before the link's next bin waits in the device for it if it
        # begins within ``hold_ns`` (as fast as possible, always: device time jumps
        # there; in real time a node sends its round shortly before the bin), else it
        # ends at once with the device free (the node sends it again before that bin)
        self.hold_ns = hold_ns
        # a round goes on over a gap of at most ``bridge_ns`` between the link's bins
        # (the device waits through it): too short for its node to use the device for
        # something else and be back in time, so asking again would only lose bin time
        self.bridge_ns = bridge_ns
        self.pending: dict[str, Attempt] = {}
        self.expired: dict[str, RoundEnd] = {}  # rounds ended for one end only (bounded)
        self.heralds = 0
        self.rounds = 0

    def _window_end(self, a: Attempt) -> float:
        return a.start_ns + a.max_attempts * self.model.cycle_ns

    def receive(self, attempt: Attempt) -> list[ToNode]:
        def reject(reason: str) -> list[ToNode]:
            return [ToNode(attempt.node, Rejected(key=attempt.key, reason=reason))]

        if attempt.node not in self.nodes:
            return reject(
                f"node {attempt.node!r} is not on link {self.link} "
                f"({self.nodes[0]}-{self.nodes[1]})"
            )
        if attempt.max_attempts < 1 or not attempt.start_ns >= 0:
            return reject(
                f"bad window: start {attempt.start_ns} ns, {attempt.max_attempts} attempts"
            )
        if not 1 <= attempt.pairs <= MAX_PAIRS_PER_ROUND or not attempt.dead_ns >= 0:
            return reject(f"bad round: {attempt.pairs} pairs, {attempt.dead_ns} ns dead time")
        late = self.expired.get(attempt.key)
        if late is not None:  # its peer's window passed: end the round here the same way
            return [ToNode(attempt.node, late)]
        other = self.pending.get(attempt.key)
        if other is None:
            crossed = next((a for a in self.pending.values() if a.node != attempt.node), None)
            if crossed is not None:
                # Each end attempts one round at a time: the two disagree on which
                # (a request was just accepted at one end). End both; they retry.
                del self.pending[crossed.key]
                reason = "the two ends attempted different rounds"
                return [
                    ToNode(
                        a.node,
                        RoundEnd(
                            key=a.key,
                            attempts=0,
                            at_ns=a.start_ns,
                            reason=reason,
                            again=True,
                        ),
                    )
                    for a in sorted((crossed, attempt), key=lambda a: self.nodes.index(a.node))
                ]
            # One round at a time per end: an earlier attempt of this node's, still
            # waiting for the other end, ends now (again: it is not counted). So a
            # station holds at most one attempt per end, however many a peer sends.
            out = [
                ToNode(
                    a.node,
                    RoundEnd(
                        key=a.key,
                        attempts=0,
                        at_ns=a.start_ns,
                        reason=f"superseded by round {attempt.key!r} of {attempt.node}",
                        again=True,
                    ),
                )
                for a in list(self.pending.values())
                if a.node == attempt.node
            ]
            for o in out:
                del self.pending[o.msg.key]
            self.pending[attempt.key] = attempt
            return out
        if other.node == attempt.node:
            # It attempts this round again (it stopped waiting for our answer, e.g. we
            # were paused): the newer attempt stands, and the round runs once.
            self.pending[attempt.key] = attempt
            return []
        del self.pending[attempt.key]
        return self._pair(other, attempt)

    def _pair(self, a: Attempt, b: Attempt) -> list[ToNode]:
        self.rounds += 1
        cycle = self.model.cycle_ns
        t = max(a.start_ns, b.start_ns)
        end = min(self._window_end(a), self._window_end(b))
        budget = math.inf  # attempts left (with time bins; else the window limits them)
        if self.schedule is not None:
            # attempts only in the link's time bins: from its next bin, to that bin's end
            came = t
            t, end = self.schedule.window(t, cycle)  # with room for an attempt
            if t - came > self.hold_ns:
                msg = RoundEnd(
                    key=a.key,
                    attempts=0,
                    at_ns=came,
                    reason="outside the link's time bins",
                )
                return [ToNode(node, msg) for node in self.nodes]
            budget = min(a.max_attempts, b.max_attempts)
        dead = max(a.dead_ns, b.dead_ns)
        want = min(a.pairs, b.pairs)
        tries: list[int] = []  # per herald: attempts, time, Bell index, state
        ats: list[float] = []
        bells: list[int] = []
        rhos: list[Matrix] = []
        tail, reason = 0, ""  # tail: attempts since the last herald (or the start)
        first = t
        if end - t < cycle:
            reason = "windows do not overlap"
        # The model's draws, a block at a time (as many as pairs are still wanted): the
        # same numbers as one ``sample`` per draw. Draws left over when the round ends
        # are given back (the generator is put back and advanced by the used ones), so
        # the next round draws what it would have drawn one by one.
        draws: tuple[list[int], list[int], list[Matrix]] = ([], [], [])
        used = 0
        saved: Mapping[str, Any] | None = None
        while not reason and len(tries) < want:
            left = int(min((end - t) // cycle, budget))
            if left < 1:
                nxt = self._bridge(t, end, budget)
                if nxt is not None:
                    t, end = nxt
                    continue
                if tail:
                    reason = f"no herald in {tail} attempts"
                else:
                    reason = f"window used up after {len(tries)} of {want} pair(s)"
                break
            if used == len(draws[0]):
                saved = self.rng.bit_generator.state
                draws, used = self.model.sample_many(self.rng, want - len(tries)), 0
            k = draws[0][used]
            used += 1
            if k > left:  # none in what is left here (memoryless: draw again there)
                tail, t, budget = tail + left, t + left * cycle, budget - left
                if self._bridge(t, end, budget) is None:
                    reason = f"no herald in {tail} attempts"
                continue
            at = t + k * cycle
            tries.append(tail + k)
            ats.append(at)
            bells.append(draws[1][used - 1])
            rhos.append(draws[2][used - 1])
            tail, t, budget = 0, at + dead, budget - k
        if used < len(draws[0]) and saved is not None:  # give back the draws this round did not use
            self.rng.bit_generator.state = saved
            self.model.sample_many(self.rng, used)
        seq0 = self.heralds
        self.heralds += len(tries)
        msg = RoundEnd(
            key=a.key,
            attempts=tail,
            at_ns=t,
            reason=reason,
            start_ns=first if tries or tail else -1.0,
            seqs=range(seq0 + 1, self.heralds + 1),
            herald_attempts=tries,
            herald_ns=ats,
            bell_index=bells,
            rho=rhos,
        )
        return [ToNode(node, msg) for node in self.nodes]  # in link order, not arrival

    def _bridge(self, t: float, end: float, budget: float) -> tuple[float, float] | None:
        """A round whose stretch of bins ends at ``end`` (at ``t`` it has less than an
        attempt of it left) goes on in the link's next stretch if it begins within
        ``bridge_ns`` of ``end`` and the round has attempts left for all of it: (from,
        to) there, else None. So a round ends with a stretch, and its node's next round
        comes in the gap before the next one."""
        if self.schedule is None or budget < 1:
            return None
        cycle = self.model.cycle_ns
        start, stop = self.schedule.window(max(t, end), cycle)
        if start - end > self.bridge_ns + 1.0 or budget < (stop - start) // cycle:
            return None
        return start, stop

    def withdraw(self, node: str, key: str, reason: str) -> list[ToNode]:
        """``node`` no longer attempts round ``key`` (its request ended): if the round
        has not run, it ends now for ``node``, and for the other end the same way
        should its attempt still come."""
        a = self.pending.get(key)
        if a is None or a.node != node:
            return []
        del self.pending[key]
        return [ToNode(node, self._lone(a, a.start_ns, reason))]

    def _lone(self, a: Attempt, at_ns: float, reason: str) -> RoundEnd:
        """End ``a``'s round at ``at_ns`` with no herald, and remember it for its peer."""
        msg = RoundEnd(key=a.key, attempts=0, at_ns=at_ns, reason=reason)
        self.expired[a.key] = msg
        while len(self.expired) > EXPIRED_KEPT:
            del self.expired[next(iter(self.expired))]
        return msg

    def next_deadline(self) -> float:
        """Wall time at which the next lone attempt expires (inf if none)."""
        return min((a.expires_s for a in self.pending.values()), default=float("inf"))

    def handle_timer(self, now_s: float) -> list[ToNode]:
        """Answer lone attempts whose wall-clock expiry ``now_s`` has reached."""
        out = []
        for key, a in list(self.pending.items()):
            if a.expires_s <= now_s:
                del self.pending[key]
                why = "the other end did not attempt in this window"
                msg = self._lone(a, self._window_end(a), why)
                out.append(ToNode(a.node, msg))
        return out
