"""What a repeater does for a circuit, sans-IO: it asks the circuit's protocol
(``netlink.protocols``) what to do with the halves it holds, swaps (a Bell measurement
on its device, the outcomes to both ends), discards, and makes another pair wherever a
link pair became void; the ends' side of a void pair is here too (``_discarded``).

A discarded half may be the partner of a pair the next repeater already swapped: the
pair joined to it is then void as well, and so on along the joined chain. Each node of
an affected hop hears of it (``NetDiscarded``) and both make another pair there, named
after the void one so the two requests find each other in any order.
"""

from __future__ import annotations

import logging
import math
from collections import deque
from collections.abc import Callable
from functools import partial
from typing import Any

import msgspec

from ..lang import messages as m
from ..netlink.protocols import (
    LEFT,
    RIGHT,
    Action,
    Discard,
    Half,
    NetworkProtocol,
    Send,
    Swap,
    View,
    Wake,
)
from .circuit import Circuit, Key, circuit_work, max_discards
from .lower import Lowering
from .memory import MemoryManager
from .outputs import Out, ToNode
from .processes import App
from .wants import Work

log = logging.getLogger("qnodeos.network")

MAX_PROTOCOL_BYTES = 1024  # a protocol's message to another node's


def _pair_ready(protocol: NetworkProtocol, view: View, *, half: Half, now: float) -> list[Action]:
    return protocol.pair_ready(view, half, now)


class RepeaterWork:
    """The network layer's repeater side (``NetworkLayer`` is one)."""

    node: str
    memory: MemoryManager
    lowering: Lowering
    work: deque[Work]
    protocol_name: str
    discards: int
    oldest_swapped_s: float
    # the last swaps asked for here: (time, circuit, left link pair, right link pair)
    swap_log: deque[tuple[float, Key, int, int]]
    ignored: int
    now_s: float
    circuits: dict[Key, Circuit]
    _actions: dict[type, Callable[[Circuit, Any, float, list[Out]], str | None]]
    # from the rest of the network layer (``circuits``)
    _fail: Callable[..., list[Out]]
    _free_pair: Callable[[App, m.EprPair], None]
    _open_hop: Callable[..., list[Out]]

    # -- the protocol's decisions (a repeater's) -----------------------------------------
    def _protocol(self, c: Circuit, call: Callable[[View], list[Action]], now: float) -> list[Out]:
        """Ask the circuit's protocol (``call``) and do what it says; a protocol that
        raises or asks for what cannot be done ends the circuit, saying so."""
        view = View(
            path=tuple(c.path), me=c.me, number=c.number,
            held={s: c.ready[s] for s in c.held}, swaps=c.swaps,
        )  # fmt: skip
        name = self.protocol_name
        try:
            actions = call(view)
            if not isinstance(actions, list):
                raise TypeError(f"returned {type(actions).__name__}, not a list of actions")
        except Exception as exc:  # the protocol's bug: its circuit ends, the node goes on
            log.warning("network protocol %s raised on circuit %s: %r", name, c.key, exc)
            why = f"network protocol {name} at {self.node!r} raised {type(exc).__name__}: {exc}"
            return self._fail(c, why, now)
        out: list[Out] = []
        for a in actions:
            if c.done:
                break
            act = self._actions.get(type(a))
            problem = f"{a!r} is not an action" if act is None else act(c, a, now, out)
            if problem is not None:
                return out + self._fail(
                    c, f"network protocol {name} at {self.node!r}: {problem}", now
                )
        out += self._run_promoted(c, now)
        if c.batch and not c.done:  # the swaps asked for: one device request
            self._send_swaps(c)
        return out

    def _run_promoted(self, c: Circuit, now: float) -> list[Out]:
        """Tell the protocol of halves that came to the front of their side's queue."""
        out: list[Out] = []
        while c.promoted and not c.done:
            half = c.promoted.pop(0)
            if c.ready.get(half.side) is half:
                out += self._protocol(c, partial(_pair_ready, c.protocol, half=half, now=now), now)
        return out

    def _promote(self, c: Circuit, side: int) -> None:
        """The next half waiting on ``side`` (if any) is the one the protocol sees now."""
        queue = c.waiting.get(side)
        if side in c.held or not queue:
            return
        p, came = queue.pop(0)
        c.held[side] = p
        c.ready[side] = Half(side=side, seq=p.ent_id[2], ready_s=came, goodness=p.goodness)
        c.promoted.append(c.ready[side])

    def _act_swap(self, c: Circuit, _a: Swap, now: float, out: list[Out]) -> str | None:
        if len(c.held) < 2:
            return f"Swap needs a half on each side (held: {sorted(c.held)})"
        out += self._swap(c, now)
        return None

    def _act_discard(self, c: Circuit, a: Discard, now: float, out: list[Out]) -> str | None:
        if a.side not in c.held:
            return f"Discard({a.side}): no half held on that side"
        if c.discards >= max_discards(c.number):
            return f"more than {max_discards(c.number)} discards for {c.number} pair(s)"
        p = c.held.pop(a.side)
        c.ready.pop(a.side, None)
        self._free_pair(c.app, p)
        self._promote(c, a.side)
        c.discards += 1
        self.discards += 1
        out += self._void(c, a.side, p.ent_id[2], now)
        return None

    def _void(self, c: Circuit, side: int, seq: int, now: float) -> list[Out]:
        """Our half of link pair ``seq`` on ``side`` is void (discarded, or joined by a
        swap to one that is): the node at the hop's other end hears of it, and both
        make another pair on the hop."""
        hop = c.me - 1 if side == LEFT else c.me
        other = c.path[hop] if side == LEFT else c.path[hop + 1]
        msg = m.NetDiscarded(origin=c.key[0], circuit=c.key[1], hop=hop, seq=seq, extra=0)
        out: list[Out] = [ToNode(other, m.Net(from_node=self.node, msg=msg))]
        return out + self._open_hop(c, hop, now, dead=seq)

    def _act_send(self, c: Circuit, a: Send, now: float, out: list[Out]) -> str | None:
        if a.to not in c.path or a.to == self.node:
            return f"Send to {a.to!r}, which is not another node on the path"
        try:
            data = msgspec.msgpack.encode(a.data)
        except (TypeError, ValueError) as exc:
            return f"Send: data msgpack cannot carry: {exc}"
        if len(data) > MAX_PROTOCOL_BYTES:
            return f"Send: {len(data)} bytes of data (at most {MAX_PROTOCOL_BYTES})"
        peer = m.NetPeer(origin=c.key[0], circuit=c.key[1], data=data)
        out.append(ToNode(a.to, m.Net(from_node=self.node, msg=peer)))
        return None

    def _act_wake(self, c: Circuit, a: Wake, now: float, out: list[Out]) -> str | None:
        if not isinstance(a.at_s, int | float) or math.isnan(a.at_s):
            return f"Wake at {a.at_s!r}"
        c.wake_at = float(a.at_s)
        return None

    # -- discarded pairs at the ends -----------------------------------------------------
    def _discarded(self, c: Circuit, frm: str, d: m.NetDiscarded, now: float) -> list[Out]:
        """The node at the other end of hop ``d.hop`` says our half of its link pair
        ``d.seq`` is void. An end drops it and makes another; a repeater that holds it
        frees it and makes another; one that swapped it makes another and voids the
        pair it was joined to as well (its other hop's node hears of that in turn)."""
        log.debug(
            "%s: circuit %s: %s says hop %d pair %d is void", self.node, c.key, frm, d.hop, d.seq
        )
        if d.hop == c.me - 1 and frm == c.path[c.me - 1]:
            side = LEFT
        elif d.hop == c.me and c.me + 1 < len(c.path) and frm == c.path[c.me + 1]:
            side = RIGHT
        else:
            self.ignored += 1
            return []
        c.void += 1
        if c.void > max_discards(c.number) * (len(c.path) - 1):
            return self._fail(c, f"too many void link pairs (the last from {frm!r})", now)
        if c.end:
            p = c.own.pop(d.seq, None)
            if p is None:  # not here yet: dropped when it comes
                c.discarded.add((d.hop, d.seq))
                return []
            return self._replace(c, d.hop, p, now)
        held = c.held.get(side)
        if held is not None and held.ent_id[2] == d.seq:
            c.held.pop(side)
            c.ready.pop(side, None)
            self._free_pair(c.app, held)
            self._promote(c, side)
            return self._open_hop(c, d.hop, now, dead=d.seq) + self._run_promoted(c, now)
        behind = [x for x in c.waiting.get(side, []) if x[0].ent_id[2] == d.seq]
        if behind:
            c.waiting[side].remove(behind[0])
            self._free_pair(c.app, behind[0][0])
            return self._open_hop(c, d.hop, now, dead=d.seq)
        if any(pair[side].ent_id[2] == d.seq for pair in c.inflight.values()):
            c.discarded.add((d.hop, d.seq))  # the swap under way uses it: dealt with then
            return []
        joined = c.swapped.pop((side, d.seq), None)
        if joined is None:  # not here yet: dropped when it comes
            c.discarded.add((d.hop, d.seq))
            return []
        c.swapped.pop(joined, None)
        out = self._open_hop(c, d.hop, now, dead=d.seq)
        return out + self._void(c, *joined, now)

    def _replace(self, c: Circuit, hop: int, p: m.EprPair, now: float) -> list[Out]:
        """Drop our half ``p`` (its other half was discarded) and make another in its
        place, once this end's link requests on the hop are done (they would share a
        qubit)."""
        self._free_pair(c.holder, p)
        c.queued.append(p)
        return self._next_extra(c, hop, now)

    def _next_extra(self, c: Circuit, hop: int, now: float) -> list[Out]:
        if c.busy or not c.queued:
            return []
        c.busy = True
        p = c.queued.pop(0)
        return self._open_hop(c, hop, now, dead=p.ent_id[2], instead=p)

    # -- repeaters -----------------------------------------------------------------------
    def _swap(self, c: Circuit, now: float) -> list[Out]:
        """Bell-measure the two halves the protocol sees; the next ones waiting come to
        the front (the protocol hears of them once its actions are done)."""
        pair = (c.held.pop(LEFT), c.held.pop(RIGHT))
        seqs = (pair[LEFT].ent_id[2], pair[RIGHT].ent_id[2])
        c.inflight[seqs] = pair
        self.swap_log.append((now, c.key, *seqs))
        oldest = min(h.ready_s for h in c.ready.values())
        self.oldest_swapped_s = max(self.oldest_swapped_s, now - oldest)
        c.ready.clear()
        c.batch.append(seqs)
        self._promote(c, LEFT)
        self._promote(c, RIGHT)
        return []

    def _send_swaps(self, c: Circuit) -> None:
        """The swaps asked for since the last, as one device request."""
        batch, c.batch = c.batch, []
        low = self.lowering.lower
        ops: list[m.PhysOp] = []
        at: list[int] = []  # where each swap's second measurement is in ``ops``
        for seqs in batch:
            pair = c.inflight[seqs]
            left, right = (self.memory.phys(c.app.app_id, pair[s].qubit) for s in (LEFT, RIGHT))
            ops += [*low("cnot", (left, right)), *low("h", (left,))]
            ops += [m.PhysOp("meas", (left,)), m.PhysOp("meas", (right,))]
            at.append(len(ops) - 1)
        done = partial(self._swapped, c.key, batch, at)
        self.work.append(circuit_work(self.circuits, c.key, ops, done))

    def _swapped(
        self, key: Key, batch: list[tuple[int, int]], at: list[int],
        reply: m.DeviceReply | m.EntangleDone | None, now: float,
    ) -> list[Out]:  # fmt: skip
        c = self.circuits.get(key)
        if c is None or any(seqs not in c.inflight for seqs in batch):
            return []
        if not isinstance(reply, m.DeviceReply) or reply.error is not None:
            error = getattr(reply, "error", None) or "the device did not run it"
            return self._fail(c, f"the swap at {self.node!r} failed: {error}", now)
        bits = reply.outcomes
        if len(bits) != at[-1] + 1:  # (one outcome per op, -1 for those that measure not)
            return self._fail(c, f"the swaps at {self.node!r}: {len(bits)} outcomes", now)
        records = []
        for i, seqs in zip(at, batch, strict=True):
            left, right = c.inflight.pop(seqs)
            self._free_pair(c.app, left)
            self._free_pair(c.app, right)
            c.swaps += 1
            c.swapped[(LEFT, seqs[LEFT])], c.swapped[(RIGHT, seqs[RIGHT])] = (
                (RIGHT, seqs[RIGHT]), (LEFT, seqs[LEFT]),
            )  # fmt: skip
            records.append(
                m.NetSwapped(
                    origin=c.key[0],
                    circuit=c.key[1],
                    index=c.me,
                    left=seqs[LEFT],
                    right=seqs[RIGHT],
                    m1=bits[i - 1],
                    m2=bits[i],
                    goodness=right.goodness,
                )  # fmt: skip
            )
        # the ends get the outcomes (one message for the batch) before any void pair
        one = records[0] if len(records) == 1 else m.NetSwaps(records=records)
        net = m.Net(from_node=self.node, msg=one)
        out: list[Out] = [ToNode(c.path[0], net), ToNode(c.path[-1], net)]
        for seqs in batch:
            for side, hop in ((LEFT, c.me - 1), (RIGHT, c.me)):
                if (hop, seqs[side]) in c.discarded and not c.done:  # voided while it ran
                    c.discarded.discard((hop, seqs[side]))
                    joined = c.swapped.pop((side, seqs[side]))
                    c.swapped.pop(joined, None)
                    out += self._open_hop(c, hop, now, dead=seqs[side])
                    out += self._void(c, *joined, now)
        return out  # the circuit ends here when both ends are done (``net_message``)
