"""What a circuit's two ends do with its pairs, sans-IO (``NetworkLayer`` is one): they
join their own link pair to the repeaters' swap records, which gives the end-to-end pair
its one id at both ends and its Bell index, and hand it to the app (the receiving end
makes it Phi+ first: a Pauli on its kept half, or a flip of its measured outcome), or to
distillation (``distill``) when the request distils.

Records before the circuit. At the receiving end a setup waits until the app asks, but
the repeaters swap on the other hops meanwhile: their records are kept (``early``) and
checked and used once the circuit opens (``circuits``: ``_accept_setup``).
"""

from __future__ import annotations

import logging
from collections import OrderedDict, deque
from collections.abc import Callable
from functools import partial

import msgspec

from ..lang import messages as m
from ..netlink.distill import werner_product
from ..netlink.frames import compose, flip, swap_index
from ..netlink.models import CORRECTION
from ..runtime.timeline import Recorder
from .circuit import EARLY_PER_SENDER, EARLY_RECORDS, Circuit, Key, circuit_work, max_discards
from .lower import Lowering
from .memory import MemoryManager
from .outputs import Out, ToNode
from .roundwork import SCRATCH
from .wants import Want, Work

log = logging.getLogger("qnodeos.network")


def measures_late(c: Circuit) -> bool:
    """Whether this end (the receiving one) measures after rotations: it must correct
    its half first, so it keeps it until the frame is known."""
    return c.me != 0 and c.want is not None and bool(c.want.msg.rotations)


class EndWork:
    """The network layer's end side: assembling, correcting and handing over pairs."""

    node: str
    memory: MemoryManager
    lowering: Lowering
    work: deque[Work]
    timeline: Recorder | None
    circuits: dict[Key, Circuit]
    finished: OrderedDict[Key, Circuit]
    setups: dict[str, tuple[m.NetSetup, float]]
    early: OrderedDict[Key, list[tuple[str, list[m.NetSwapped]]]]
    early_records: int
    early_from: dict[str, int]
    ignored: int
    now_s: float

    # from the rest of the network layer (``circuits``, ``distill``, ``delivery``)
    _fail: Callable[..., list[Out]]
    _close: Callable[[Circuit, str, float], list[Out]]
    _dist_take: Callable[[Circuit, int, int, float], list[Out]]
    _tell: Callable[[Want, m.EprPairs | m.EprDone | m.EprFailed], list[Out]]
    _hand_out: Callable[[Want], list[m.EprPair]]

    # -- the ends ------------------------------------------------------------------------
    def _records(self, frm: str, records: list[m.NetSwapped], now: float) -> list[Out]:
        """Swap records from repeater ``frm``, all of one circuit at its index."""
        r = records[0]
        key = (r.origin, r.circuit)
        c = self.circuits.get(key)
        if c is None and r.origin != self.node and key not in self.finished:
            self._keep_early(frm, key, records)  # its setup waits for our app, or is late
            return []
        if (
            c is None
            or not c.end
            or not (0 < r.index < len(c.path) - 1)
            or frm != c.path[r.index]
            or any(
                (x.origin, x.circuit, x.index) != (r.origin, r.circuit, r.index) for x in records
            )
        ):
            self.ignored += 1
            return []
        for r in records:
            if len(c.records) >= (c.number + max_discards(c.number)) * (len(c.path) - 2):
                return self._fail(c, f"more swap records than pairs from {frm!r}", now)
            # the creating end walks forwards (by the left pair), the other end backwards
            c.records[(r.index, r.left if c.me == 0 else r.right)] = r
        return self._assemble(c, now)

    def _assemble(self, c: Circuit, now: float) -> list[Out]:
        """Deliver every end-to-end pair whose whole story is here."""
        out: list[Out] = []
        step = 1 if c.me == 0 else -1
        repeaters = range(1, len(c.path) - 1)[::step]
        for seq, p in list(c.own.items()):
            cur, bells, goods = seq, [], [p.goodness]
            for i in repeaters:
                r = c.records.get((i, cur))
                if r is None:
                    break
                cur = r.right if step == 1 else r.left
                bells.append(swap_index(r.m1, r.m2))
                goods.append(r.goodness)
            else:
                del c.own[seq]
                cur = seq
                for i in repeaters:  # the records are used up
                    r = c.records.pop((i, cur))
                    cur = r.right if step == 1 else r.left
                e2e = seq if c.me == 0 else cur
                c.came[e2e] = c.ready_at.pop(seq, now)
                if c.dist is not None:
                    out += self._dist_take(c, e2e, compose(bells), werner_product(goods))
                else:
                    c.gathering = True  # the app gets them together, below
                    out += self._deliver(c, p, e2e, compose(bells))
                    c.gathering = False
        w = c.want
        if w is not None and w.pairs and not c.done:
            out += self._tell(w, m.EprPairs(req=w.msg.req, pairs=self._hand_out(w)))
        return out

    def _deliver(self, c: Circuit, p: m.EprPair, e2e: int, bell: int) -> list[Out]:
        assert c.want is not None
        pair = m.EprPair(
            ent_id=(c.path[0], c.path[-1], e2e), bell_index=bell, goodness=p.goodness,
            attempts=p.attempts, at_ns=p.at_ns, qubit=p.qubit, outcome=p.outcome,
            basis=p.basis,
        )  # fmt: skip
        fixer = c.me != 0  # the receiving end makes it Phi+
        if fixer and measures_late(c):
            assert c.want is not None
            rots = c.want.msg.rotations
            a, b, g = rots[c.measured % len(rots)] if len(rots) > 1 else rots[0]
            c.measured += 1
            phys = self.memory.phys(c.app.app_id, p.qubit)
            low = self.lowering.lower
            ops = [op for gate in CORRECTION[bell] for op in low(gate, (phys,))]
            ops += [
                op
                for gate, t in (("rx", a), ("ry", b), ("rx", g))
                if t
                for op in low(gate, (phys,), t)
            ]
            ops.append(m.PhysOp("meas", (phys,)))
            pair = msgspec.structs.replace(pair, qubit=-1, basis="R")
            c.correcting += 1
            done = partial(self._corrected, c.key, pair)
            self.work.append(circuit_work(self.circuits, c.key, ops, done))
            return []
        if fixer and p.qubit < 0 and p.outcome >= 0 and flip(bell, p.basis):
            pair = msgspec.structs.replace(pair, outcome=p.outcome ^ 1)
        if fixer and p.qubit >= 0 and CORRECTION[bell]:
            phys = self.memory.phys(c.app.app_id, p.qubit)
            ops = [op for g in CORRECTION[bell] for op in self.lowering.lower(g, (phys,))]
            c.correcting += 1
            done = partial(self._corrected, c.key, pair)
            self.work.append(circuit_work(self.circuits, c.key, ops, done))
            return []
        return self._hand(c, pair)

    def _corrected(
        self, key: Key, pair: m.EprPair, reply: m.DeviceReply | m.EntangleDone | None, now: float
    ) -> list[Out]:
        c = self.circuits.get(key)
        if c is None:
            return []
        c.correcting -= 1
        if not isinstance(reply, m.DeviceReply) or reply.error is not None:
            error = getattr(reply, "error", None) or "the device did not run it"
            return self._fail(c, f"correcting pair at {self.node!r} failed: {error}", now)
        if pair.basis == "R" and pair.qubit < 0:  # measured after its rotations
            if SCRATCH in self.memory.held(c.app.app_id):
                self.memory.release(c.app.app_id, SCRATCH)
            pair = msgspec.structs.replace(pair, outcome=reply.outcomes[-1])
        return self._hand(c, pair)

    def _hand(self, c: Circuit, pair: m.EprPair) -> list[Out]:
        w = c.want
        assert w is not None
        if self.timeline is not None:  # pairs.csv: the path, its swaps, this half's age
            ready = c.came.pop(pair.ent_id[2], self.now_s)
            w.notes[pair.ent_id[2]] = {
                "path": "-".join(c.path), "swaps": len(c.path) - 2,
                "age_s": round(self.now_s - ready, 9),
            }  # fmt: skip
            if c.dist is not None:
                w.notes[pair.ent_id[2]].update(c.dist.notes.pop(pair.ent_id[2], {}))
        else:
            c.came.pop(pair.ent_id[2], None)
        w.pairs.append(pair)
        w.made += 1
        c.delivered.append(pair.ent_id[2])
        if w.made < c.number:
            if c.gathering:
                return []
            return self._tell(w, m.EprPairs(req=w.msg.req, pairs=self._hand_out(w)))
        log.info("circuit %s: %d end-to-end pair(s) delivered", c.key, w.made)
        out = self._tell(w, m.EprDone(req=w.msg.req, pairs=self._hand_out(w)))
        done = m.NetTeardown(origin=c.key[0], circuit=c.key[1], reason="done", error=False)
        net = m.Net(from_node=self.node, msg=done)
        out += [ToNode(n, net) for n in c.path[1:-1]]  # the repeaters end with both ends
        return out + self._close(c, "its end-to-end pairs were all delivered", self.now_s)

    # -- records before the circuit -------------------------------------------------------
    def _keep_early(self, frm: str, key: Key, records: list[m.NetSwapped]) -> None:
        """Keep swap records for circuit ``key``, which is not open here yet: at the
        receiving end its setup waits until the app asks (or is still on its way), while
        the repeaters already swap on the other hops. They are checked and used when it
        opens (``_accept_setup``); the oldest circuits' are dropped past
        ``EARLY_RECORDS``, and a circuit's when its setup is refused or it fails. One
        sender may hold ``EARLY_PER_SENDER`` of them: beyond, its records are dropped,
        so a node that sends records for circuits that never come cannot evict the
        others'."""
        if self.early_from.get(frm, 0) + len(records) > EARLY_PER_SENDER:
            self.ignored += len(records)
            return
        self.early.setdefault(key, []).append((frm, list(records)))
        self.early_records += len(records)
        self.early_from[frm] = self.early_from.get(frm, 0) + len(records)
        while self.early_records > EARLY_RECORDS:
            self.ignored += sum(len(rs) for _, rs in self._unkeep(next(iter(self.early))))

    def _unkeep(self, key: Key) -> list[tuple[str, list[m.NetSwapped]]]:
        """Circuit ``key``'s early records, no longer kept (as they came, by sender)."""
        entries = self.early.pop(key, [])
        for frm, records in entries:
            self.early_records -= len(records)
            left = self.early_from[frm] - len(records)
            if left:
                self.early_from[frm] = left
            else:
                del self.early_from[frm]
        return entries

    def _forget_setup(self, key: Key, frm: str) -> None:
        """Circuit ``key`` failed (node ``frm`` on its path says so) before it opened
        here: its setup no longer waits for the app, its early records go."""
        for pur, (s, _) in list(self.setups.items()):
            if (s.path[0], s.circuit) == key and frm in s.path:
                del self.setups[pur]
                self._unkeep(key)
