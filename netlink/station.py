"""The heralding station of one link, sans-IO.

How it works: for each round of entanglement generation, both ends' link layers agree on
a round ``key`` and each sends an ``Attempt``: from device time ``start_ns`` it will
attempt every cycle, at most ``max_attempts`` times. When both attempts of a key are
in, the station pairs them over their common window (the later start, the smaller
budget), draws the number of attempts to the first herald from the link model's
geometric distribution, and answers *both* ends with the same outcome: a ``Heralded``
(time, Bell state, the delivered two-qubit state) or a ``NoHerald``. A pair therefore
reaches both ends or neither. An attempt whose peer never comes is answered
``NoHerald`` once its window has passed (``handle_timer``); if the peer's attempt for
that round comes later after all, it gets the same ``NoHerald``, so both ends still
move on together.

Input from outside is checked: an attempt from a node that is not on this link, a
second attempt for the same key from the same node, or a bad window gets a
``Rejected`` naming the problem; station state is unchanged.

>>> import numpy as np
>>> from netlink.models import Perfect
>>> st = HeraldingStation(link="a-b", nodes=("a", "b"), model=Perfect(cycle_ns=10),
...                       rng=np.random.default_rng(1))
>>> st.receive(Attempt(node="a", key="r1", start_ns=0, max_attempts=5))
[]
>>> [type(o.msg).__name__ for o in st.receive(Attempt(node="b", key="r1", start_ns=20,
...                                                   max_attempts=5))]
['Heralded', 'Heralded']
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .models import LinkModel, Matrix

EXPIRED_KEPT = 4096  # how many one-sided round endings are remembered for late peers


@dataclass(frozen=True, kw_only=True)
class Attempt:
    """Node ``node`` attempts round ``key`` from ``start_ns`` (device time) for up to
    ``max_attempts``, waiting for its peer's attempt until wall time ``expires_s``."""

    node: str
    key: str
    start_ns: float
    max_attempts: int
    expires_s: float = float("inf")


@dataclass(frozen=True, kw_only=True)
class Heralded:
    """Round ``key`` heralded after ``attempts`` attempts, at device time ``at_ns``."""

    key: str
    seq: int  # the station's herald counter: both ends get the same entanglement id
    attempts: int
    at_ns: float
    bell_index: int
    rho: Matrix


@dataclass(frozen=True, kw_only=True)
class NoHerald:
    """Round ``key`` ended at ``at_ns`` with no herald; ``reason`` says why."""

    key: str
    attempts: int
    at_ns: float
    reason: str
    again: bool = False  # the round never ran (the ends disagreed): attempt the same key


@dataclass(frozen=True, kw_only=True)
class Rejected:
    """An attempt the station could not use; nothing changed."""

    key: str
    reason: str


@dataclass(frozen=True)
class ToNode:
    node: str
    msg: Heralded | NoHerald | Rejected


class HeraldingStation:
    def __init__(
        self, *, link: str, nodes: tuple[str, str], model: LinkModel, rng: np.random.Generator
    ) -> None:
        if nodes[0] == nodes[1]:
            raise ValueError(f"link {link}: both ends are {nodes[0]!r}")
        self.link = link
        self.nodes = nodes
        self.model = model
        self.rng = rng
        self.pending: dict[str, Attempt] = {}
        self.expired: dict[str, NoHerald] = {}  # rounds ended for one end only (bounded)
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
                        NoHerald(
                            key=a.key, attempts=0, at_ns=a.start_ns, reason=reason, again=True
                        ),
                    )
                    for a in sorted((crossed, attempt), key=lambda a: self.nodes.index(a.node))
                ]
            self.pending[attempt.key] = attempt
            return []
        if other.node == attempt.node:
            return reject(f"node {attempt.node!r} already attempts round {attempt.key}")
        del self.pending[attempt.key]
        return self._pair(other, attempt)

    def _pair(self, a: Attempt, b: Attempt) -> list[ToNode]:
        self.rounds += 1
        cycle = self.model.cycle_ns
        start = max(a.start_ns, b.start_ns)
        budget = int((min(self._window_end(a), self._window_end(b)) - start) // cycle)
        msg: Heralded | NoHerald
        if budget < 1:
            msg = NoHerald(key=a.key, attempts=0, at_ns=start, reason="windows do not overlap")
        else:
            h = self.model.sample(self.rng)
            if h.attempts <= budget:
                self.heralds += 1
                msg = Heralded(
                    key=a.key,
                    seq=self.heralds,
                    attempts=h.attempts,
                    at_ns=start + h.attempts * cycle,
                    bell_index=h.bell_index,
                    rho=h.rho,
                )
            else:
                msg = NoHerald(
                    key=a.key,
                    attempts=budget,
                    at_ns=start + budget * cycle,
                    reason=f"no herald in {budget} attempts",
                )
        return [ToNode(node, msg) for node in self.nodes]  # in link order, not arrival

    def next_deadline(self) -> float:
        """Wall time at which the next lone attempt expires (inf if none)."""
        return min((a.expires_s for a in self.pending.values()), default=float("inf"))

    def handle_timer(self, now_s: float) -> list[ToNode]:
        """Answer lone attempts whose wall-clock expiry ``now_s`` has reached."""
        out = []
        for key, a in list(self.pending.items()):
            if a.expires_s <= now_s:
                del self.pending[key]
                msg = NoHerald(
                    key=key,
                    attempts=0,
                    at_ns=self._window_end(a),
                    reason="the other end did not attempt in this window",
                )
                self.expired[key] = msg
                while len(self.expired) > EXPIRED_KEPT:
                    del self.expired[next(iter(self.expired))]
                out.append(ToNode(a.node, msg))
        return out
