"""The device work of one distillation round at one end (sans-IO): the native ops for
BBPSSW or DEJMPS on this end's halves of two pairs (``netlink.distill`` has the closed
forms and the conventions). The round succeeds when both ends' outcomes agree.

>>> from qnodeos.hardware.params import build
>>> ops = round_ops(Lowering(build("generic", 4)), "dejmps", keep=0, target=1, first=True)
>>> [op.op for op in ops]
['rx', 'rx', 'cnot', 'meas']
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable
from functools import partial

import numpy as np

from ..errors import ProgramError, QuotaError
from ..lang import messages as m
from ..netlink.distill import (
    MAX_ROUNDS,
    SCHEMES,
    TWIRLS,
    Pool,
    after_rounds,
    plan_rounds,
)
from ..netlink.models import CORRECTION
from ..netlink.protocols import Distill
from .circuit import Circuit, Distilling, Key, circuit_work
from .lower import Lowering
from .memory import MemoryManager
from .outputs import Out, ToNode
from .processes import App
from .recipes import BASIS_ROTATION
from .wants import Work

LAND = 0  # the circuit's qubit a distilling end's link pairs land in
MAX_ASKED = 256  # rounds the creator may name before the receiving end has their pairs


def twirl_gates(t: int, first: bool) -> list[tuple[str, float]]:
    """The gates of twirl ``t`` (0 to ``TWIRLS`` - 1) at one end, in order: the Pauli
    ``t % 4``, then ``t // 4`` times C = S H (at the other end S^-1 H: C*, so the pair
    gets U x U*).

    >>> twirl_gates(4 * 2 + 1, first=False)
    [('x', 0.0), ('h', 0.0), ('rz', -1.5707963267948966), ('h', 0.0), ('rz', -1.5707963267948966)]
    """
    if not 0 <= t < TWIRLS:
        raise ValueError(f"twirl {t}: 0 to {TWIRLS - 1}")
    pauli = [("", 0.0), ("x", 0.0), ("y", 0.0), ("z", 0.0)][t % 4]
    s = math.pi / 2 if first else -math.pi / 2
    return [g for g in [pauli] if g[0]] + [("h", 0.0), ("rz", s)] * (t // 4)


def round_ops(
    lowering: Lowering,
    scheme: str,
    *,
    keep: int,
    target: int,
    first: bool,
    twirl: tuple[int, int] = (0, 0),
) -> list[m.PhysOp]:
    """This end's ops on its halves ``keep`` (of the pair kept) and ``target`` (of the
    pair measured), physical qubits; ``first``: this is the first end of the pair (it
    rotates by +pi/2 in DEJMPS, the other end by -pi/2); ``twirl`` (BBPSSW): the twirl
    of each pair. The last op's outcome is this end's parity bit."""
    if scheme not in SCHEMES:
        raise ValueError(f"distillation scheme {scheme!r}; known: {', '.join(SCHEMES)}")
    low = lowering.lower
    ops: list[m.PhysOp] = []
    if scheme == "dejmps":
        theta = math.pi / 2 if first else -math.pi / 2
        ops += [*low("rx", (keep,), theta), *low("rx", (target,), theta)]
    else:
        for q, t in zip((keep, target), twirl, strict=True):
            ops += [op for g, theta in twirl_gates(t, first) for op in low(g, (q,), theta)]
    ops += low("cnot", (keep, target))
    ops.append(m.PhysOp("meas", (target,)))
    return ops


def kept(mine: int, theirs: int) -> bool:
    """Whether a round with these two ends' outcomes succeeded."""
    return mine == theirs


class EndDistil:
    """The network layer's end-to-end distillation at a circuit's ends
    (``NetworkLayer`` is one).

    How it works. A distilling end keeps its halves in the circuit's own qubits
    (``Distilling.app``): each link pair lands in qubit 0 (one at a time: the link
    layer waits while it is there); once its end-to-end pair is known (and, at the
    receiving end, corrected to Phi+), it moves to a qubit of its own, if one is free.
    The creating end's protocol (``NetworkProtocol.distil``) picks two pairs of its
    ``Pool`` at the same level; each end runs the
    scheme's round on them (``round_ops``) and tells the other its outcome
    (``NetDistil``; the receiving end runs the rounds the creator names). Equal
    outcomes: the kept pair goes up a level; else both are gone. A pair at the last
    level is measured as the request asks and delivered, at both ends: the creator
    starts a last-level round only while pairs are still wanted, so the ends deliver
    the same ones. Each hop makes a bounded number of link pairs (``link_pairs``): a
    request that runs out fails, saying so.
    """

    node: str
    memory: MemoryManager
    lowering: Lowering
    work: deque[Work]
    circuits: dict[Key, Circuit]
    ignored: int
    distill_ok: int
    distill_failed: int
    dist_rng: np.random.Generator
    _next_own_app: int
    now_s: float
    _fail: Callable[..., list[Out]]
    _hand: Callable[[Circuit, m.EprPair], list[Out]]

    def _dist_settled(self, c: Circuit) -> bool:
        """Whether end ``c`` distils and every pair it still owes its app has come out
        of its last round (it is being measured or handed over): it needs no more link
        pairs, so its link ending (on one hop, the other end is done) does not fail it."""
        return c.dist is not None and c.want is not None and (
            c.want.made + c.dist.finals >= c.number
        )

    def _dist_open(self, c: Circuit, scheme: str, rounds: int, target: float) -> str | None:
        """Reserve the qubits end ``c`` distils in (None), or say why not."""
        free = self.memory.spec.num_qubits - self.memory.reserved
        quota = rounds + 2 if rounds else min(MAX_ROUNDS + 2, free)
        self._next_own_app += 1
        app = App(
            app_id=-self._next_own_app, name=f"~distil {c.key[0]}.{c.key[1]}", addr=b"",
            priority=0, quota=quota,
        )  # fmt: skip
        try:
            if quota < 3:
                raise QuotaError(f"{free} qubit(s) free")
            self.memory.open(app.app_id, quota)
        except QuotaError as exc:
            need = f"{rounds + 2}" if rounds else "at least 3"
            return f"distilling needs {need} qubits at {self.node!r} besides the app's: {exc}"
        c.dist = Distilling(scheme=scheme, rounds=rounds, target=target, app=app, quota=quota)
        if rounds:
            c.dist.pool = Pool(rounds) if c.me == 0 else None
        return None

    def _dist_take(self, c: Circuit, e2e: int, bell: int, fid: float) -> list[Out]:
        """End-to-end pair ``e2e`` (Bell index ``bell``; fidelity estimate ``fid``) is
        known; our half is in qubit 0."""
        d = c.dist
        assert d is not None
        fix = CORRECTION[bell] if c.me != 0 else ()
        if not fix:
            d.landed.append((e2e, fid))
            return self._dist_admit(c)
        phys = self.memory.phys(d.app.app_id, LAND)
        ops = [op for g in fix for op in self.lowering.lower(g, (phys,))]
        done = partial(self._dist_fixed, c.key, e2e, fid)
        self.work.append(circuit_work(self.circuits, c.key, ops, done))
        return []

    def _dist_fixed(
        self, key: Key, e2e: int, fid: float, reply: m.DeviceReply | m.EntangleDone | None,
        now: float,
    ) -> list[Out]:  # fmt: skip
        c, out = self._dist_reply(key, reply, now, "correcting a pair")
        if c is None or c.dist is None:
            return out
        c.dist.landed.append((e2e, fid))
        return self._dist_admit(c)

    def _dist_admit(self, c: Circuit) -> list[Out]:
        """Move the landed pair to a qubit of its own, if one is free (the link layer
        makes the next pair into qubit 0 then)."""
        d = c.dist
        assert d is not None
        if not d.landed or len(d.held) >= d.quota - 1:
            return []
        e2e, fid = d.landed.pop(0)
        virt = d.next_qubit
        d.next_qubit += 1
        self.memory.rename(d.app.app_id, LAND, virt)
        d.held[e2e] = (virt, 0)
        d.raw += 1
        if c.me != 0:
            return self._dist_follow(c)
        if d.raw == 1:  # the first pair: the estimate of every raw pair's fidelity
            d.fidelity = fid
        if d.pool is None:  # how many rounds the target needs
            rounds = plan_rounds(d.scheme, d.rounds, d.target, fid)
            if isinstance(rounds, str):
                return self._fail(c, rounds, self.now_s, code="UNSUPP")
            if rounds > d.quota - 2:
                why = f"{rounds} rounds of {d.scheme} need {rounds + 2} free qubits here"
                return self._fail(c, why, self.now_s, code="NORES")
            d.rounds = rounds
            d.pool = Pool(d.rounds)
        d.pool.add(e2e, 0, self.now_s)
        return self._dist_plan(c)

    def _dist_plan(self, c: Circuit) -> list[Out]:
        """The creator: start the rounds its protocol picks from the pool; fail if the
        raw pairs left cannot make the pairs still wanted."""
        d = c.dist
        assert d is not None and d.pool is not None and c.want is not None
        wanted = c.number - c.want.made - d.finals
        view = d.pool.view(tuple(c.path), d.scheme, top=wanted - d.top)
        name = type(c.protocol).__name__
        try:
            actions = c.protocol.distil(view, self.now_s)
            if not isinstance(actions, list):
                raise TypeError(f"returned {type(actions).__name__}, not a list of actions")
        except Exception as exc:  # the protocol's bug: its circuit ends, the node goes on
            why = f"network protocol {name} at {self.node!r} raised {type(exc).__name__}: {exc}"
            return self._fail(c, why, self.now_s)
        for a in actions:
            try:
                if not isinstance(a, Distill):
                    raise ValueError(f"{a!r} is not a Distill action")
                level = d.pool.take(a.keep, a.target)
                if level == d.rounds - 1 and d.top >= wanted:
                    raise ValueError(f"{a!r}: more last-level rounds than pairs wanted")
            except ValueError as exc:
                why = f"network protocol {name} at {self.node!r} chose to distil: {exc}"
                return self._fail(c, why, self.now_s)
            d.top += level == d.rounds - 1
            if d.scheme == "bbpssw":  # the twirl of each pair: ours to draw, theirs to follow
                t = self.dist_rng.integers(TWIRLS, size=2)
                d.twirls[(a.keep, a.target)] = (int(t[0]), int(t[1]))
            self._dist_round(c, a.keep, a.target, level)
        # raw pairs still to come, those held (a pair at level lv stands for 2**lv), and
        # the target pairs of rounds under way (their keep pairs are still held)
        held = sum(1 << lv for _, lv in d.held.values())
        have = c.hop_pairs - d.raw + held + sum(1 << lv for lv, _ in d.mine.values())
        if have < wanted << d.rounds:
            why = (
                f"distillation ({d.scheme}, {d.rounds} rounds) ran out of raw pairs: "
                f"{c.hop_pairs} made, {d.failed} rounds failed"
            )
            return self._fail(c, why, self.now_s)
        return []

    def _dist_round(self, c: Circuit, keep: int, target: int, level: int) -> None:
        d = c.dist
        assert d is not None
        d.busy.update((keep, target))
        app = d.app.app_id
        ops = round_ops(
            self.lowering, d.scheme, keep=self.memory.phys(app, d.held[keep][0]),
            target=self.memory.phys(app, d.held[target][0]), first=c.me == 0,
            twirl=d.twirls.get((keep, target), (0, 0)),
        )  # fmt: skip
        done = partial(self._dist_ran, c.key, keep, target, level)
        self.work.append(circuit_work(self.circuits, c.key, ops, done))

    def _dist_ran(
        self, key: Key, keep: int, target: int, level: int,
        reply: m.DeviceReply | m.EntangleDone | None, now: float,
    ) -> list[Out]:  # fmt: skip
        c, out = self._dist_reply(key, reply, now, "distilling")
        if c is None or c.dist is None or not isinstance(reply, m.DeviceReply):
            return out
        d = c.dist
        bit = reply.outcomes[-1]
        self.memory.release(d.app.app_id, d.held.pop(target)[0])
        d.busy.discard(target)
        d.mine[(keep, target)] = (level, bit)
        twirl = d.twirls.pop((keep, target), None)
        said = m.NetDistil(
            origin=c.key[0], circuit=c.key[1], keep=keep, target=target, level=level,
            outcome=bit, rounds=d.rounds, fidelity=min(1.0, d.fidelity) if c.me == 0 else 0.0,
            twirl=list(twirl) if twirl is not None and c.me == 0 else [],
        )  # fmt: skip
        out.append(ToNode(c.far, m.Net(from_node=self.node, msg=said)))
        return out + self._dist_settle(c, keep, target, now)

    def _dist_message(self, c: Circuit, frm: str, msg: m.NetDistil, now: float) -> list[Out]:
        """The other end's outcome of a round (from the creator: a round to run)."""
        d = c.dist
        pair = (msg.keep, msg.target)
        if d is None or frm != c.far or not c.end or msg.level >= msg.rounds:
            self.ignored += 1
            return []
        if c.me == 0:
            if d.mine.get(pair, (-1, 0))[0] != msg.level or msg.rounds != d.rounds:
                self.ignored += 1
                return []
            d.theirs[pair] = (msg.level, msg.outcome)
            return self._dist_settle(c, *pair, now)
        if d.rounds == 0:
            if msg.rounds > d.quota - 2:  # its keep pair, its target and a pair per level
                why = (
                    f"distilling {msg.rounds} rounds needs {msg.rounds + 2} qubits at "
                    f"{self.node!r}; {d.quota} are free for it"
                )
                return self._fail(c, why, now, code="NORES")
            d.rounds = msg.rounds
        d.fidelity = msg.fidelity  # the creator's estimate: both ends report the same
        if (
            msg.rounds != d.rounds
            or pair in d.asked
            or msg.keep == msg.target
            or len(msg.twirl) != (2 if d.scheme == "bbpssw" else 0)
        ):
            return self._fail(c, f"{frm!r} asked for an impossible distillation round", now)
        if len(d.asked) >= MAX_ASKED:
            return self._fail(c, f"{frm!r} asked for over {MAX_ASKED} rounds at once", now)
        d.asked[pair] = msg.level
        d.theirs[pair] = (msg.level, msg.outcome)
        if msg.twirl:
            d.twirls[pair] = (msg.twirl[0], msg.twirl[1])
        return self._dist_follow(c)

    def _dist_follow(self, c: Circuit) -> list[Out]:
        """The receiving end: run the rounds the creator ran whose pairs are here."""
        d = c.dist
        assert d is not None
        for (keep, target), level in list(d.asked.items()):
            pairs = (d.held.get(keep), d.held.get(target))
            if all(p is not None and p[1] == level for p in pairs) and not (
                {keep, target} & d.busy
            ):
                del d.asked[(keep, target)]
                self._dist_round(c, keep, target, level)
        return []

    def _dist_settle(self, c: Circuit, keep: int, target: int, now: float) -> list[Out]:
        """Both outcomes of a round are here: keep the pair a level up, or drop it."""
        d = c.dist
        assert d is not None
        if (keep, target) not in d.mine or (keep, target) not in d.theirs:
            return []
        level, mine = d.mine.pop((keep, target))
        _, theirs = d.theirs.pop((keep, target))
        last = level == d.rounds - 1
        if c.me == 0 and last:
            d.top -= 1
        virt = d.held[keep][0]
        out: list[Out] = []
        if kept(mine, theirs):
            d.ok += 1
            self.distill_ok += 1
            d.held[keep] = (virt, level + 1)
            if last:
                d.finals += 1
                out += self._dist_final(c, keep)
            else:
                d.busy.discard(keep)
                if d.pool is not None:
                    d.pool.add(keep, level + 1, now)
        else:
            d.failed += 1
            d.failed_since += 1
            self.distill_failed += 1
            d.busy.discard(keep)
            del d.held[keep]
            self.memory.release(d.app.app_id, virt)
        if c.done:  # (delivering the last pair may have ended it)
            return out
        out += self._dist_admit(c)
        if c.done:
            return out
        return out + (self._dist_plan(c) if c.me == 0 else self._dist_follow(c))

    def _dist_final(self, c: Circuit, e2e: int) -> list[Out]:
        """Deliver the distilled pair ``e2e``, the ``i``-th to succeed at the last level
        (both ends count them in the same order: the receiving end settles each round
        as it runs it, having the creator's outcome already, and the creator when the
        receiving end's outcome comes): kept, in the app's qubit ``qubits[i]`` (in Phi+:
        the receiving end corrected its raw pairs before the rounds, which keep Phi+),
        or measured as the request asks (in ``chosen[i]``, or a basis drawn from
        ``bases``)."""
        d = c.dist
        assert d is not None and c.want is not None
        msg = c.want.msg
        i = c.want.made + d.finals - 1
        if not msg.measures():
            q = msg.qubits[i]
            try:
                self.memory.give(d.app.app_id, d.held[e2e][0], c.want.app.app_id, q)
            except (QuotaError, ProgramError) as exc:  # (the circuit's close frees it)
                return self._fail(c, f"handing a distilled pair to the app: {exc}", self.now_s)
            del d.held[e2e]
            d.busy.discard(e2e)
            pair = m.EprPair(
                ent_id=(c.path[0], c.path[-1], e2e), bell_index=0, goodness=self._dist_f(d),
                attempts=0, at_ns=0, qubit=q,
            )  # fmt: skip
            return self._dist_deliver(c, e2e, pair)
        pick = int(self.dist_rng.integers(len(msg.bases)))
        basis = msg.chosen[i] if msg.chosen else msg.bases[pick]
        phys = self.memory.phys(d.app.app_id, d.held[e2e][0])
        low = self.lowering.lower
        ops = [op for g, t in BASIS_ROTATION[basis] for op in low(g, (phys,), t)]
        ops.append(m.PhysOp("meas", (phys,)))
        done = partial(self._dist_measured, c.key, e2e, basis)
        self.work.append(circuit_work(self.circuits, c.key, ops, done))
        return []

    @staticmethod
    def _dist_f(d: Distilling) -> float:
        """The predicted fidelity of a distilled pair (from the creator's estimate of a
        raw one: the same at both ends)."""
        return min(1.0, after_rounds(d.fidelity, d.scheme, d.rounds)[0])

    def _dist_measured(
        self, key: Key, e2e: int, basis: str, reply: m.DeviceReply | m.EntangleDone | None,
        now: float,
    ) -> list[Out]:  # fmt: skip
        c, out = self._dist_reply(key, reply, now, "measuring a pair")
        if c is None or c.dist is None or not isinstance(reply, m.DeviceReply):
            return out
        d = c.dist
        self.memory.release(d.app.app_id, d.held.pop(e2e)[0])
        d.busy.discard(e2e)
        pair = m.EprPair(
            ent_id=(c.path[0], c.path[-1], e2e), bell_index=0, goodness=self._dist_f(d),
            attempts=0, at_ns=0, outcome=reply.outcomes[-1], basis=basis,
        )  # fmt: skip
        return out + self._dist_deliver(c, e2e, pair)

    def _dist_deliver(self, c: Circuit, e2e: int, pair: m.EprPair) -> list[Out]:
        """Hand the distilled pair ``e2e`` to the app."""
        d = c.dist
        assert d is not None
        out: list[Out] = []
        d.notes[e2e] = {
            "distill": d.scheme, "rounds": d.rounds, "rounds_ok": (1 << d.rounds) - 1,
            "rounds_failed": d.failed_since,
        }  # fmt: skip
        d.failed_since = 0
        d.finals -= 1
        out += self._dist_admit(c)
        out += self._hand(c, pair)
        if c.done or c.me != 0:
            return out
        return out + self._dist_plan(c)

    def _dist_reply(
        self, key: Key, reply: m.DeviceReply | m.EntangleDone | None, now: float, doing: str
    ) -> tuple[Circuit | None, list[Out]]:
        """The circuit a device reply is for (None: it ended, or the reply says the
        work failed, which ends it: the outputs say so)."""
        c = self.circuits.get(key)
        if c is None or (isinstance(reply, m.DeviceReply) and reply.error is None):
            return c, []
        error = getattr(reply, "error", None) or "the device did not run it"
        return None, self._fail(c, f"{doing} at {self.node!r} failed: {error}", now)
