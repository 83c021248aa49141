"""A circuit as one node keeps it (``Circuit``), and the network layer's limits.

The network layer (``circuits``, and ``repeaters`` for what a repeater does) keeps one
``Circuit`` per circuit it is on, as an end or as a repeater: its path, its link
requests, the halves it holds, the swap records it has, what it delivered.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

from ..lang import messages as m
from ..netlink.distill import MAX_ROUNDS, Pool
from ..netlink.egp import MAX_PAIRS
from ..netlink.protocols import Half, NetworkProtocol
from .outputs import Out
from .processes import App
from .wants import Want, Work

KINDS = ("K", "M", "R")  # R: the creating end measures, the receiving end keeps
REPEATER_QUBITS = 2  # a repeater needs a qubit per side of a circuit at least
WINDOW = 8  # link pairs a repeater holds per side at most, if its protocol allows
EXTRA_QUBIT = 1 << 30  # a repeater's qubit ids for replacement pairs: this + 2 * void one
MAX_CIRCUITS_PER_PEER = 64  # circuits a node may have set up here at a time
MAX_SETUPS_WAITING = 64  # setups waiting for the receiving app, per creating node
EARLY_RECORDS = 4096  # swap records kept for circuits not open at this end yet, at most
EARLY_PER_SENDER = EARLY_RECORDS // 4  # of them from one node: one cannot evict the rest
FINISHED_KEPT = 1024  # circuits remembered after they end (late teardowns, confirms)
TIMEOUT_GRACE_S = 1.0  # a circuit outlives its request's timeout by this much at most

Key = tuple[str, int]  # (creating node, its circuit number)


def link_pairs(number: int, distill: str, rounds: int) -> int:
    """Link pairs each hop of a circuit makes at most: ``number``, or with distillation
    4^(rounds + 1) raw pairs per end-to-end pair (rounds not fixed yet: the most), up
    to the link layer's limit."""
    if not distill:
        return number
    return min(MAX_PAIRS, number << (2 * (rounds or MAX_ROUNDS) + 2))


@dataclass
class Distilling:
    """An end's end-to-end distillation: the pairs it holds for it, by id, and the
    rounds under way. The creating end chooses the rounds (``pool``); the other end
    runs those the creator names (``asked``)."""

    scheme: str
    rounds: int  # 0: not known yet (the creator fixes it from a target fidelity)
    target: float
    app: App  # the circuit's own qubits at this end: 0 lands link pairs, 1.. hold pairs
    quota: int
    pool: Pool | None = None  # the creator's
    held: dict[int, tuple[int, int]] = field(default_factory=dict)  # pair -> (qubit, level)
    landed: list[tuple[int, float]] = field(default_factory=list)  # in qubit 0: (pair, est.)
    busy: set[int] = field(default_factory=set)  # pairs in a round or being measured
    mine: dict[tuple[int, int], tuple[int, int]] = field(default_factory=dict)  # -> (lvl, bit)
    theirs: dict[tuple[int, int], tuple[int, int]] = field(default_factory=dict)
    asked: dict[tuple[int, int], int] = field(default_factory=dict)  # receiver: -> level
    # BBPSSW: the twirl of each pair of a round not run yet (the creator draws it)
    twirls: dict[tuple[int, int], tuple[int, int]] = field(default_factory=dict)
    top: int = 0  # creator: rounds under way whose success makes a pair to deliver
    finals: int = 0  # pairs being measured for delivery
    raw: int = 0  # end-to-end pairs taken in so far
    ok: int = 0  # rounds that succeeded, failed
    failed: int = 0
    failed_since: int = 0  # rounds failed since the last pair delivered
    fidelity: float = 1.0  # estimate of a raw end-to-end pair (the creator's, its first)
    next_qubit: int = 1
    notes: dict[int, dict[str, str | int | float]] = field(default_factory=dict)  # delivered


def max_discards(number: int) -> int:
    """Link pairs a circuit's repeater may discard (each is made again): bounded, so a
    protocol that discards everything still ends."""
    return 100 + 100 * number


@dataclass
class Circuit:
    """One circuit at this node (an end, or a repeater)."""

    key: Key
    path: list[str]
    me: int  # our index on the path
    purpose: str
    kind: str
    number: int
    deadline: float
    app: App  # the end's app, or the repeater's own (a reservation of qubits)
    want: Want | None = None  # the end's app's request
    links: dict[tuple[int, int], Want] = field(default_factory=dict)  # (hop, void) -> request
    own: dict[int, m.EprPair] = field(default_factory=dict)  # end: link pairs, by number
    records: dict[tuple[int, int], m.NetSwapped] = field(default_factory=dict)
    delivered: list[int] = field(default_factory=list)  # end: end-to-end pair numbers
    correcting: int = 0  # end: corrections on the device not back yet
    held: dict[int, m.EprPair] = field(default_factory=dict)  # repeater: side -> pair
    # repeater: halves per side it may hold (its qubits: even ids left, odd right);
    # halves behind the one the protocol sees (with when they came); swaps under way
    window: int = 1
    waiting: dict[int, list[tuple[m.EprPair, float]]] = field(default_factory=dict)
    inflight: dict[tuple[int, int], tuple[m.EprPair, m.EprPair]] = field(default_factory=dict)
    promoted: list[Half] = field(default_factory=list)  # heads the protocol has not seen
    batch: list[tuple[int, int]] = field(default_factory=list)  # swaps not sent yet
    ready_at: dict[int, float] = field(default_factory=dict)  # end: when our halves came
    came: dict[int, float] = field(default_factory=dict)  # end: the same, by pair id
    ready: dict[int, Half] = field(default_factory=dict)  # repeater: what the protocol sees
    protocol: NetworkProtocol = field(default_factory=NetworkProtocol)
    wake_at: float = math.inf  # repeater: when the protocol asked to be woken
    discards: int = 0  # repeater: halves its protocol discarded
    # repeater: its swaps, each way: (side, pair) -> (other side, the pair joined to it)
    swapped: dict[tuple[int, int], tuple[int, int]] = field(default_factory=dict)
    void: int = 0  # void link pairs heard of (each is made again), bounded
    # our halves of link pairs void elsewhere that have not come here yet: (hop, pair)
    discarded: set[tuple[int, int]] = field(default_factory=set)
    queued: list[m.EprPair] = field(default_factory=list)  # end: halves to make again
    busy: bool = True  # end: a link request of ours runs on our hop
    ends_done: set[str] = field(default_factory=set)  # repeater: ends that have all pairs
    swaps: int = 0
    measured: int = 0  # end: pairs measured after their rotations so far
    gathering: bool = False  # end: pairs delivered now go to the app together
    dist: Distilling | None = None  # end: end-to-end distillation
    hop_pairs: int = 0  # link pairs each hop makes (0: ``number``; more to distil)
    done: bool = False

    @property
    def far(self) -> str:
        return self.path[-1] if self.me == 0 else self.path[0]

    @property
    def holder(self) -> App:
        """Whose qubits the circuit's link pairs here are kept in (an end's)."""
        return self.dist.app if self.dist is not None else self.app

    @property
    def end(self) -> bool:
        return self.me in (0, len(self.path) - 1)


def circuit_work(
    circuits: dict[Key, Circuit],
    key: Key,
    ops: list[m.PhysOp],
    done: Callable[[m.DeviceReply | m.EntangleDone | None, float], list[Out]],
) -> Work:
    """Device work for circuit ``key``'s qubits: dropped if the circuit has ended by
    the time the device is free for it (its qubits may be another's by then); its
    ``done`` looks the circuit up, finds none and does nothing."""
    return Work(
        request=m.DeviceRequest(seq=0, ops=ops), done=done, stale=lambda: key not in circuits
    )
