"""Network-layer protocols, sans-IO: what a repeater does with the link pairs a circuit
brings it. One small interface; the built-in policies are written on it, and so is a
researcher's own (named in the network file by import path, see docs/network-layer.md).

How it works. A node on a circuit's path between its ends makes one protocol object per
circuit (``factory(**args)``) and tells it what happens, as events: a link pair is ready
here (``pair_ready``: which side of the path, its number, when it became ready, the
link's fidelity estimate), a message came from the protocol of another node on the path
(``message``), a timer it asked for fired (``timer``). Each answers with actions:
``Swap`` (a Bell measurement on the two halves held: the ends get the outcomes and track
the Pauli frame), ``Discard`` (free one held half: the link makes another pair instead),
``Send`` (a small msgpack value to another node's protocol on the path), ``Wake`` (call
``timer`` at this time). Every call gets a ``View`` of the circuit as it is now. A
protocol that raises, or answers with an action that is not one or cannot be done, ends
its circuit with an error naming it (both ends are told); the node serves everyone else.
The ends' own part (joining swap records, correcting, delivering) is not a policy.

Distillation. When a request distils (``EprRequest.distill``), the creating end makes a
protocol object for the circuit too, and asks it which pairs to distil: ``distil``
comes with a ``DistilView`` of the pairs it holds that wait for a round (their ids, the
rounds each went through, since when), and answers with ``Distill(keep, target)``
actions (two waiting pairs at the same level; ``keep`` goes up a level if the round
succeeds). The receiving end runs the rounds the creator chose. The built-in policy
(``NetworkProtocol.distil``, which every protocol inherits) pairs the oldest two at a
level, the newer one kept, and starts no more last-level rounds than pairs are
still wanted.

>>> p = SwapAsap()
>>> left = Half(side=LEFT, seq=7, ready_s=0.0, goodness=0.9)
>>> p.pair_ready(View(path=("a", "r", "b"), me=1, number=1, held={0: left}, swaps=0), left, 0.0)
[]
>>> right = Half(side=RIGHT, seq=3, ready_s=0.1, goodness=0.9)
>>> both = {0: left, 1: right}
>>> p.pair_ready(View(path=("a", "r", "b"), me=1, number=1, held=both, swaps=0), right, 0.1)
[Swap()]
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from qnodeos.errors import ConfigError

LEFT, RIGHT = 0, 1  # the side of a half: towards the path's first node, or its last


@dataclass(frozen=True, kw_only=True)
class Half:
    """A link pair's half held here for the circuit."""

    side: int  # LEFT or RIGHT
    seq: int  # the pair's number on its link (both ends of the link know it)
    ready_s: float  # when it became ready here (the node's clock, seconds)
    goodness: float  # the link's fidelity estimate


@dataclass(frozen=True, kw_only=True)
class View:
    """The circuit as this node sees it when an event comes."""

    path: tuple[str, ...]
    me: int  # this node's index on the path
    number: int  # end-to-end pairs the circuit is for
    held: Mapping[int, Half]  # side -> the half held there now
    swaps: int  # swaps done here so far


@dataclass(frozen=True)
class Swap:
    """Bell-measure the two halves held (both sides must hold one)."""


@dataclass(frozen=True)
class Discard:
    """Free the half held on ``side``; its link makes another pair in its place."""

    side: int


@dataclass(frozen=True)
class Send:
    """``data`` (a msgpack value, at most 1 KiB encoded) to the protocol of node ``to``
    on the circuit's path."""

    to: str
    data: Any


@dataclass(frozen=True)
class Wake:
    """Call ``timer`` at ``at_s`` (the node's clock; a later Wake replaces it)."""

    at_s: float


@dataclass(frozen=True)
class Distill:
    """Run a distillation round on end-to-end pairs ``keep`` and ``target`` (both
    waiting in the pool, at the same level): ``target`` is measured; if the two ends'
    outcomes agree, ``keep`` goes up a level, else both are gone. Only ``distil``
    answers with it."""

    keep: int
    target: int


@dataclass(frozen=True, kw_only=True)
class Waiting:
    """An end-to-end pair the creating end holds, waiting for a distillation round."""

    pair: int  # its id (the third part of its ``ent_id``: both ends know it)
    level: int  # the rounds it went through (0: a raw pair)
    since_s: float  # when it reached that level here (the node's clock, seconds)


@dataclass(frozen=True, kw_only=True)
class DistilView:
    """What the creating end of a distilling circuit holds when ``distil`` is called."""

    path: tuple[str, ...]
    scheme: str  # "bbpssw" or "dejmps"
    rounds: int  # the rounds every delivered pair goes through
    waiting: tuple[Waiting, ...]  # pairs not in a round, by level, oldest first
    top: int  # last-level rounds it may start now (pairs still wanted, not under way)


Action = Swap | Discard | Send | Wake | Distill


class NetworkProtocol:
    """A repeater's policy for one circuit. Override the events you need; each returns
    the actions to take (none by default). ``window``: link pairs per side the repeater
    may hold at a time for it (as its qubits allow); the protocol sees the oldest one
    on each side (``View.held``), the others wait behind it and come to it one by one
    (``pair_ready``) as those before are swapped or discarded."""

    window: int = 1

    def pair_ready(self, view: View, half: Half, now: float) -> list[Action]:
        return []

    def message(self, view: View, frm: str, data: Any, now: float) -> list[Action]:
        return []

    def timer(self, view: View, now: float) -> list[Action]:
        return []

    def distil(self, pool: DistilView, now: float) -> list[Action]:
        """The creating end of a distilling circuit: which waiting pairs to distil now
        (``Distill`` actions). Built in: at each level, the two oldest, the newer kept;
        at the last level at most ``pool.top`` rounds, so both ends deliver the same
        pairs and no more than are wanted.

        >>> w = [Waiting(pair=p, level=0, since_s=0.0) for p in (4, 9, 5)]
        >>> pool = DistilView(path=("a", "b"), scheme="dejmps", rounds=1, waiting=tuple(w), top=1)
        >>> NetworkProtocol().distil(pool, 0.0)
        [Distill(keep=9, target=4)]
        """
        out: list[Action] = []
        top = pool.top
        by_level: dict[int, list[int]] = {}
        for w in pool.waiting:
            by_level.setdefault(w.level, []).append(w.pair)
        for level, pairs in sorted(by_level.items()):
            last = level == pool.rounds - 1
            for target, keep in zip(pairs[0::2], pairs[1::2], strict=False):
                if last and top <= 0:
                    break
                top -= last
                out.append(Distill(keep, target))
        return out


class SwapAsap(NetworkProtocol):
    """Swap as soon as a half is held on each side. With ``cutoff_s`` > 0, a half that
    waited that long for its partner is discarded (its link makes another), so no swap
    uses a half older than the cutoff."""

    def __init__(self, cutoff_s: float = 0.0) -> None:
        if not cutoff_s >= 0:
            raise ValueError(f"cutoff_s {cutoff_s} must be >= 0")
        self.cutoff_s = cutoff_s
        # without a cutoff, hold several halves per side: pairs come in rounds of many
        self.window = 1 if cutoff_s else 8

    def pair_ready(self, view: View, half: Half, now: float) -> list[Action]:
        if self.cutoff_s:
            old = [h.side for h in view.held.values() if now - h.ready_s >= self.cutoff_s]
            if old:  # its timer has not fired yet: too old all the same
                return [Discard(side) for side in old]
        if len(view.held) == 2:
            return [Swap()]
        return [Wake(now + self.cutoff_s)] if self.cutoff_s else []

    def timer(self, view: View, now: float) -> list[Action]:
        if len(view.held) == 2:
            return []  # swapping
        return [Discard(h.side) for h in view.held.values() if now - h.ready_s >= self.cutoff_s]


def nesting(n: int, me: int) -> tuple[int, int, int | None]:
    """Node ``me`` (0 < me < n) of a path of ``n`` hops in nested (doubling) swapping:
    the segment ``(a, b)`` whose middle it is, ``me == (a + b) // 2`` (it joins a pair
    from ``a`` to it with one from it to ``b``), and the node it then tells (the middle
    of the segment around it; None for the top one).

    >>> [nesting(4, i) for i in (1, 2, 3)]
    [(0, 2, 2), (0, 4, None), (2, 4, 2)]
    """
    a, b, parent = 0, n, None
    while True:
        mid = (a + b) // 2
        if mid == me:
            return a, b, parent
        parent = mid
        a, b = (a, mid) if me < mid else (mid, b)


class Nested(NetworkProtocol):
    """Nested (doubling) swapping: the path is split in halves, and those in halves, down
    to single hops; a node swaps only once both its halves reach its segment's ends
    (the nodes between have swapped them), then tells the node of the segment above.
    Over 4 hops: n1 and n3 swap first, n2 joins their pairs. The swaps use the same
    halves as swap-as-soon-as-possible, so with noiseless memories the pairs are the
    same; the order differs (it matters with distillation or cutoffs per level).

    A message ``{"side": s, "seq": q, "outer": o}`` from a node below says: your half on
    side ``s`` of link pair ``q`` now reaches the end of your segment on that side, at
    its link pair ``o``."""

    def __init__(self) -> None:
        # side -> {link pair held (or to be) on that side -> the far end's link pair}
        self.reach: dict[int, dict[int, int]] = {LEFT: {}, RIGHT: {}}
        self.swapping: tuple[int, int] | None = None  # the halves of the last Swap asked

    def pair_ready(self, view: View, half: Half, now: float) -> list[Action]:
        return self._maybe_swap(view)

    def message(self, view: View, frm: str, data: Any, now: float) -> list[Action]:
        try:
            side, seq, outer = int(data["side"]), int(data["seq"]), int(data["outer"])
        except (KeyError, TypeError, ValueError):
            raise ValueError(f"nested swapping: message {data!r} from {frm!r}") from None
        if side not in (LEFT, RIGHT) or len(self.reach[side]) > 4 * view.number + 64:
            raise ValueError(f"nested swapping: message {data!r} from {frm!r}")
        self.reach[side][seq] = outer
        return self._maybe_swap(view)

    def _outer(self, view: View, side: int) -> int | None:
        """The far end's link pair our half on ``side`` reaches (None: not yet)."""
        a, b, _ = nesting(len(view.path) - 1, view.me)
        half = view.held.get(side)
        if half is None:
            return None
        if (view.me - 1 if side == LEFT else view.me + 1) == (a if side == LEFT else b):
            return half.seq  # one hop: the link pair itself
        return self.reach[side].get(half.seq)

    def _maybe_swap(self, view: View) -> list[Action]:
        left, right = self._outer(view, LEFT), self._outer(view, RIGHT)
        if left is None or right is None:
            return []
        halves = (view.held[LEFT].seq, view.held[RIGHT].seq)
        if halves == self.swapping:
            return []  # swapping them already
        self.swapping = halves
        for side in (LEFT, RIGHT):
            self.reach[side].pop(view.held[side].seq, None)
        a, b, parent = nesting(len(view.path) - 1, view.me)
        if parent is None:
            return [Swap()]
        if parent == a:  # its right half is the far end of our left one
            note = {"side": RIGHT, "seq": left, "outer": right}
        else:
            note = {"side": LEFT, "seq": right, "outer": left}
        return [Swap(), Send(view.path[parent], note)]


Factory = Callable[..., NetworkProtocol]

# the built-in protocols a request may ask for by name (``EprRequest.policy``)
POLICIES: dict[str, Factory] = {"asap": SwapAsap, "nested": Nested}


def load(path: str, args: Mapping[str, Any] | None = None) -> Callable[[], NetworkProtocol]:
    """The protocol named ``path`` ("package.module:Class" or "package.module.Class"),
    as a factory of new instances made with ``args``. ConfigError if it cannot be
    found, is not a NetworkProtocol, or does not take ``args``."""
    mod_name, sep, attr = path.partition(":")
    if not sep:
        mod_name, _, attr = path.rpartition(".")
    try:
        obj = getattr(importlib.import_module(mod_name), attr)
    except (ImportError, AttributeError, ValueError) as exc:
        raise ConfigError(f"network protocol {path!r} cannot be loaded: {exc}") from None
    if not (isinstance(obj, type) and issubclass(obj, NetworkProtocol)):
        raise ConfigError(f"network protocol {path!r} is not a NetworkProtocol subclass")
    kw = dict(args or {})
    try:
        obj(**kw)
    except Exception as exc:  # the user's constructor: say what it said
        raise ConfigError(f"network protocol {path!r} with args {kw}: {exc}") from None
    return lambda: obj(**kw)
