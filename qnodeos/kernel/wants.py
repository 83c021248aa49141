"""An app's EPR request as the network stack keeps it (``Want``), the device work that
entanglement needs (``Work``), and the *purpose* (the EPR socket) both ends derive from
their two (node, app) names.

A Want lives from the app's request to its end: the pairs made for it and not handed out
yet, and the qubits of the round under way (allocated when the round starts, freed when
it ends unless a pair was kept in them). A Work is one thing for the device: a request
to send (an ``Entangle`` round, or a move that makes room) and what to do with the reply.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

from ..lang import messages as m
from ..netlink import egp as e
from .outputs import Out
from .processes import App


def purpose(a: tuple[str, str], b: tuple[str, str]) -> str:
    """The EPR socket both ends agree on, from their (node, app) names."""
    x, y = sorted([a, b])
    return f"{x[0]}/{x[1]}|{y[0]}/{y[1]}"


def purpose_nodes(pur: str) -> list[str]:
    """The nodes of purpose ``pur``'s two ends, in its order."""
    return [end.partition("/")[0] for end in pur.split("|")]


def local_app(pur: str, node: str) -> str | None:
    """The app at ``node`` in purpose ``pur`` (None if none is)."""
    for end in pur.split("|"):
        n, _, a = end.partition("/")
        if n == node:
            return a
    return None


@dataclass
class Want:
    """An app's EPR request at this node."""

    app: App
    msg: m.EprRequest
    peer: str
    purpose: str
    key: tuple[str, int] | None = None
    pairs: list[m.EprPair] = field(default_factory=list)  # made, not handed out yet
    made: int = 0  # pairs made for it so far (handed out or not)
    # the round under way: the app's qubit ids allocated for it (K: one per pair; M: the
    # scratch qubit), their physical qubits, and those that got a pair in it
    round_virt: list[int] = field(default_factory=list)
    round_phys: list[int] = field(default_factory=list)
    kept: set[int] = field(default_factory=set)
    round_seq: int = -1  # the device request of the round under way (-1: none sent)
    deadline: float = math.inf
    index: int = -1  # for a block's request: its index in the block (-1: the app's)
    # a network-layer circuit's link request: its news go here, not to an app
    sink: Callable[[Want, m.EprPairs | m.EprDone | m.EprFailed], list[Out]] | None = None
    # an end-to-end request's pairs: what the timeline (pairs.csv) says of each, by id
    notes: dict[int, dict[str, str | int | float]] = field(default_factory=dict)
    # a circuit's repeater: how many more qubits its side may take now (None: no limit)
    room: Callable[[], int] | None = None

    def keeps(self, pair: int) -> int:
        """The app's qubit id pair ``pair`` is kept in."""
        return self.msg.qubits[0 if self.msg.sequential else pair]


@dataclass
class Work:
    """Something for the device: ``request`` and what to do with the reply."""

    request: m.DeviceRequest | m.Entangle | None
    done: Callable[[m.DeviceReply | m.EntangleDone | None, float], list[Out]]
    round: e.Round | None = None
    peer: str = ""
    # True once the work must not reach the device (its owner ended, and the qubits
    # its ops name may be another's by then): it is dropped, ``done`` told None
    stale: Callable[[], bool] | None = None
