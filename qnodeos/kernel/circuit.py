"""A circuit as one node keeps it (``Circuit``), and the network layer's limits.

The network layer (``circuits``, and ``repeaters`` for what a repeater does) keeps one
``Circuit`` per circuit it is on, as an end or as a repeater: its path, its link
requests, the halves it holds, the swap records it has, what it delivered.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from ..lang import messages as m
from ..netlink.protocols import Half, NetworkProtocol
from .processes import App
from .wants import Want

KINDS = ("K", "M", "R")  # R: the creating end measures, the receiving end keeps
REPEATER_QUBITS = 2  # a repeater holds one link pair per side of a circuit
MAX_CIRCUITS_PER_PEER = 64  # circuits a node may have set up here at a time
MAX_SETUPS_WAITING = 64  # setups waiting for the receiving app, per creating node
FINISHED_KEPT = 1024  # circuits remembered after they end (late teardowns, confirms)
TIMEOUT_GRACE_S = 1.0  # a circuit outlives its request's timeout by this much at most

Key = tuple[str, int]  # (creating node, its circuit number)


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
    swapping: bool = False
    swaps: int = 0
    measured: int = 0  # end: pairs measured after their rotations so far
    done: bool = False

    @property
    def far(self) -> str:
        return self.path[-1] if self.me == 0 else self.path[0]

    @property
    def end(self) -> bool:
        return self.me in (0, len(self.path) - 1)
