"""Entanglement rounds at one quantum process (sans-IO): ours, and the heralding stations
this process hosts.

How it works. An ``Entangle`` asks for up to ``pairs`` pairs on a link. The station of
a link lives in the quantum process of the link's first node (its *owner*); the other
end sends its attempt there (``QAttempt``). When both attempts are in, the station runs
the round at once, in device time (``qnodeos.netlink.station``): each herald, with its time and
Bell state. The owner then goes through the heralds in order: it places each pair on
its qubit and on a slot standing for the peer's (a ghost), and runs its *recipe* (ops
after a herald: a correction, a basis rotation and a measurement) at the herald's
device time. If that measured its half, the peer's half is alone: its 2x2 state travels
with the round's answer (``QRound``), and the peer runs its own recipe on it, with its
own device's noise, at the same device time. Otherwise (a kept pair) the state stays
with the owner and the peer's qubit is *away*. So a whole round of measured pairs costs
one message each way between the quantum processes, and no state group moves.

Each end reports its pairs to its classical process (``EntangleDone``) when the device
has made them: at unlimited speed all at once; in real time in chunks, each due when its
last pair's recipe ends (``CHUNK_S`` of wall time per chunk), then the round's end.

On a link with time bins a round's attempts begin at the link's next bin: the station
holds a round that came early (in real time, one that came up to ``2 * LEAD_S`` early:
its node sends it ``LEAD_S`` before the bin), and ends at once one whose bin is further
off. In real time a round also goes on over gaps of up to ``LEAD_S`` between the link's
bins (too short for the node to use the device meanwhile and be back in time).

The timeline's ``round`` row (``_record``) separates what the device did from what it
waited for: from ``since`` (the device was given to the round) to ``start`` (the first
attempt) it waited for the link's bin (``waits.bin``) and for the other end
(``waits.peer``: its attempt, or the station's answer); from ``start`` to ``end`` it
made ``attempts`` attempts of ``cycle_ns`` and ran the recipes' ops (together
``work_ns``), waited through gaps between bins (``waits.bin``), and otherwise kept the
device in the link's bins without attempting (``waits.dead``: after each herald, for
the longer of the two ends' recipes, where its own did not need it; the end of a bin
too short for another attempt).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from qnodeos.netlink.schedule import lead_ns
from qnodeos.netlink.station import Attempt, HeraldingStation, Rejected, RoundEnd
from qnodeos.netlink.station import ToNode as StationOut

from ..config.network import LinkConfig
from ..errors import DeviceError
from ..lang import codec
from ..lang import messages as m
from ..runtime.ratelog import BadInput
from ..runtime.timeline import Recorder
from .device import MeasureRecipe, QuantumDevice
from .groups import Groups
from .measured import measure_pairs
from .outputs import Out, ToPeer
from .physics import to_paired

log = logging.getLogger("qnodeos.qdevice")

CHUNK_S = 0.001  # in real time, pairs reported to the classical process per this much
# Past a round's expiry the non-owner stops waiting for the station (its owner is alive
# but does not answer). Long, because giving up on a herald that is only late voids it.
STATION_SILENT_S = 10.0
# A round's measured pairs all at once (``measured``); False: pair by pair, the reference
# (for tests and benchmarks; both give the same outcomes for the same seeds).
VECTORISED = True


@dataclass
class Round:
    """One of our rounds: from request ``req`` of our classical process (``peer``)."""

    peer: bytes
    req: m.Entangle
    link: LinkConfig
    started: bool = False
    start: float = 0.0
    done: bool = False
    token: bytes = b""  # the custody token of our halves the station's process keeps
    work_ns: float = 0.0  # device time its recipes' ops took here


@dataclass
class _Report:
    """What a round reported so far, and what is still due."""

    pairs: list[m.PairHerald] = field(default_factory=list)


def check(req: m.Entangle, dev: QuantumDevice) -> str | None:
    """What is wrong with a round request (None: nothing)."""
    spec = dev.spec
    for q in req.qubits:
        if not 0 <= q < spec.num_qubits:
            return f"{spec.name}: physical qubit {q} does not exist"
        if not spec.kind(q).communication:
            return f"{spec.name}: qubit {q} ({spec.kind(q).name}) cannot be entangled"
    if len(req.qubits) not in (1, req.pairs) or len(set(req.qubits)) != len(req.qubits):
        return f"{len(req.qubits)} qubits for {req.pairs} pairs: give one, or one per pair"
    if req.max_attempts < 1:
        return f"max_attempts {req.max_attempts} < 1"
    if req.plan and (len(req.plan) != req.pairs or max(req.plan) >= len(req.recipes)):
        return f"plan names recipes {sorted(set(req.plan))} of {len(req.recipes)}"
    allowed = set(req.qubits)
    for recipe in req.recipes:
        for ops in recipe:
            for op in ops:
                if not op.qubits or not set(op.qubits) <= allowed or op.op == "wait":
                    return f"a recipe op {op.op} {list(op.qubits)} outside the round's qubits"
    return None


def dead_ns(req: m.Entangle, dev: QuantumDevice) -> float:
    """How long the longest recipe keeps the device after a herald."""
    spec = dev.spec
    longest = 0.0
    for recipe in req.recipes:
        for ops in recipe:
            try:
                longest = max(longest, sum(spec.op_spec(op).duration_ns for op in ops))
            except (KeyError, DeviceError, AssertionError):
                continue
    return longest


class Rounds:
    def __init__(
        self,
        *,
        me: str,
        device: QuantumDevice,
        groups: Groups,
        links: dict[str, LinkConfig],
        epoch_ns: int,
        speed: float,
        reply: Callable[[bytes | None, m.FromDevice, float], list[Out]],
        timeline: Recorder | None = None,
    ) -> None:
        self.me = me
        self.device = device
        self.groups = groups
        self.links = links
        self.epoch_ns = epoch_ns
        self.speed = speed
        self.realtime = not math.isinf(speed)
        self._reply = reply
        self.timeline = timeline
        if timeline is not None:  # how to read device times as wall times (and bins)
            timeline.add(kind="clock", epoch_ns=epoch_ns, speed=speed if self.realtime else None)
        # each link's time bins in our device's time (as its station counts them)
        self.bins = {
            p: lk.schedule.aligned(epoch_ns, speed) for p, lk in links.items() if lk.schedule
        }
        self.stations = {
            peer: HeraldingStation(
                link=lk.name,
                nodes=lk.nodes,
                model=lk.model,
                rng=np.random.default_rng(lk.seed),
                schedule=self.bins.get(peer),
                hold_ns=2 * lead_ns(speed) if self.realtime else math.inf,
                bridge_ns=lead_ns(speed),
            )
            for peer, lk in links.items()
            if lk.nodes[0] == me
        }
        self.active: dict[str, Round] = {}  # key -> our round waiting for the station
        # station: key -> the peer's qubits and the custody token of their kept halves
        self.peer_qubits: dict[str, tuple[list[int], bytes]] = {}
        self.codec = codec.qdevice_peer()
        self.late = 0
        # heralds after this end stopped waiting: logged without flooding (a peer, or
        # a busy machine, can make many), at the wall time the server last passed in
        self.late_log = BadInput(log, kind="late heralds")
        self.now_s = 0.0

    # -- starting ------------------------------------------------------------------------
    def start(self, rnd: Round, now_ns: float) -> list[Out]:
        """Attempt round ``rnd`` (its qubits are home and checked)."""
        req, dev = rnd.req, self.device
        rnd.started = True
        rnd.start = max(now_ns, dev.busy_until)
        # Attempting re-initialises the qubits: detach them from any group now, so a
        # pull for that group while the round runs cannot take them along.
        for q in req.qubits:
            dev.fresh(q, rnd.start)
        self.active[req.key] = rnd
        owner = rnd.link.nodes[0]
        dead = dead_ns(req, dev)
        if owner == self.me:
            att = Attempt(
                node=self.me,
                key=req.key,
                start_ns=rnd.start,
                max_attempts=req.max_attempts,
                expires_s=req.expires_s,
                pairs=req.pairs,
                dead_ns=dead,
            )
            return self.station_out(req.peer, self.stations[req.peer].receive(att), now_ns)
        rnd.token = self.groups.new_token()
        msg = m.QAttempt(
            frm=self.me,
            key=req.key,
            qubits=list(req.qubits),
            token=rnd.token,
            start_ns=rnd.start,
            max_attempts=req.max_attempts,
            expires_s=req.expires_s,
            epoch_ns=self.epoch_ns,
            pairs=req.pairs,
            dead_ns=dead,
        )
        return [ToPeer(owner, self.codec.encode(msg))]

    def to_own_ns(self, t: float, epoch_ns: int) -> float:
        if not self.realtime:
            return t
        return t + (epoch_ns - self.epoch_ns) * self.speed

    # -- the station (at the owner) ------------------------------------------------------
    def peer_attempt(self, msg: m.QAttempt, now_ns: float) -> tuple[list[Out], str | None]:
        """The other end's attempt, for our station: (what to send, problem)."""
        st = self.stations.get(msg.frm)
        if st is None:
            return [], f"an attempt, but {self.me} hosts no station"
        if len(msg.qubits) not in (1, msg.pairs) or max(msg.qubits) >= 1024:
            return [], f"an attempt with qubits {msg.qubits[:4]} for {msg.pairs} pairs"
        self.peer_qubits[msg.key] = (list(msg.qubits), msg.token)
        att = Attempt(
            node=msg.frm,
            key=msg.key,
            start_ns=max(0.0, self.to_own_ns(msg.start_ns, msg.epoch_ns)),
            max_attempts=msg.max_attempts,
            expires_s=msg.expires_s,
            pairs=msg.pairs,
            dead_ns=msg.dead_ns,
        )
        return self.station_out(msg.frm, st.receive(att), now_ns), None

    def station_out(self, peer: str, outs: list[StationOut], now_ns: float) -> list[Out]:
        """What our station decided: our own round's part runs here, the other end's
        goes to it (after ours, which fills in the halves it gets)."""
        out: list[Out] = []
        ours = {o.msg.key for o in outs if o.node == self.me}
        for o in outs:
            r = o.msg
            if o.node != self.me:
                if isinstance(r, Rejected):
                    self.peer_qubits.pop(r.key, None)
                    reply = m.QRound(
                        frm=self.me, key=r.key, heralds=[], attempts=0, at_ns=now_ns,
                        reason=f"the station refused: {r.reason}", epoch_ns=self.epoch_ns,
                    )  # fmt: skip
                    out.append(ToPeer(o.node, self.codec.encode(reply)))
                elif r.key not in ours:
                    # The other end's round alone ended (it came after its window had
                    # passed here, it crossed ours, or we never came): tell it now. Left
                    # to find out by its own timeout, it would count rounds apart from
                    # ours and the two ends would never attempt the same round again.
                    assert not r.heralds  # a round that heralded ended for both ends
                    self.peer_qubits.pop(r.key, None)
                    reply = m.QRound(
                        frm=self.me, key=r.key, heralds=[], attempts=r.attempts,
                        at_ns=r.at_ns, reason=r.reason, epoch_ns=self.epoch_ns, again=r.again,
                    )  # fmt: skip
                    out.append(ToPeer(o.node, self.codec.encode(reply)))
                continue
            if isinstance(r, Rejected):
                rnd = self.active.pop(r.key, None)
                if rnd is not None:
                    out += self._ended(rnd, [], now_ns, 0, f"station refused: {r.reason}", False)
                continue
            out += self._owner_round(peer, r, now_ns)
        return out

    def _owner_round(self, peer: str, r: RoundEnd, now_ns: float) -> list[Out]:
        """Our station ended round ``r`` for both ends: place and process each pair here,
        then tell the other end (with the halves it now holds alone)."""
        rnd = self.active.pop(r.key, None)
        theirs, token = self.peer_qubits.pop(r.key, ([], b""))
        heralds: list[m.QHerald] = []
        mine: list[m.PairHerald] = []
        if rnd is not None and not r.seqs and not theirs:
            # The other end never attempted (the station gave up on it): our round ends;
            # should its attempt come after all, the station answers it the same way.
            return self._ended(rnd, [], r.at_ns, r.attempts, r.reason, r.again)
        if rnd is None or not theirs:
            # Our round is not running any more: the pairs are void here; the other end
            # hears of no herald, and our node expires the pairs there too.
            if r.heralds:
                out = self._late(r.key, [h.seq for h in r.heralds], peer, now_ns)
            else:
                out = []
            reason = r.reason or "the other end stopped waiting"
            reply = m.QRound(
                frm=self.me, key=r.key, heralds=[], attempts=0, at_ns=r.at_ns, reason=reason,
                epoch_ns=self.epoch_ns, again=r.again,
            )  # fmt: skip
            return out + [ToPeer(peer, self.codec.encode(reply))]
        dev, req = self.device, rnd.req
        fast = self._owner_measured(peer, rnd, r, theirs, token) if VECTORISED else None
        measured = None
        if fast is not None:
            mine, measured = fast
        for i, h in enumerate(r.heralds if fast is None else ()):
            q = req.qubits[i if len(req.qubits) > 1 else 0]
            pq = theirs[i if len(theirs) > 1 else 0]
            ghost = self.groups.ghost((peer, pq), token)
            dev.fresh(q, h.at_ns)
            dev.reg.put([q, ghost], np.array(h.rho, dtype=complex))
            outcomes, end = self._recipe(rnd, i, h.bell_index, q, h.at_ns)
            half, home, ours = b"", -1, b""
            if dev.reg.group_of[ghost].qubits == [ghost]:  # we measured: theirs is alone
                rho = self.groups.drop_ghost(ghost)
                half = np.ascontiguousarray(rho, dtype="<c16").tobytes()
            elif req.peer_measures:  # it measures its half: the pair goes there
                pair = self.groups.give(q, peer)
                half, home = pair.rho, q
                ours = pair.tokens[pair.qubits.index((self.me, q))]
            mine.append(m.PairHerald(h.seq, h.attempts, int(end), h.bell_index, outcomes))
            heralds.append(
                m.QHerald(h.seq, h.attempts, h.at_ns, h.bell_index, half, home, ours)
            )
        reply = m.QRound(
            frm=self.me, key=r.key, heralds=heralds, attempts=r.attempts, at_ns=r.at_ns,
            reason=r.reason, epoch_ns=self.epoch_ns, again=r.again, measured=measured,
        )  # fmt: skip
        return [ToPeer(peer, self.codec.encode(reply))] + self._ended(
            rnd,
            mine,
            r.at_ns,
            r.attempts,
            r.reason,
            r.again,
            r.start_ns if r.start_ns >= 0 else None,
        )

    # -- the other end -------------------------------------------------------------------
    def station_result(self, msg: m.QRound, now_ns: float) -> list[Out]:
        """The owner's answer to our attempt."""
        rnd = self.active.pop(msg.key, None)
        if rnd is None:
            seqs = msg.seqs()
            return self._late(msg.key, seqs, msg.frm, now_ns) if seqs else []
        dev, req = self.device, rnd.req
        mine: list[m.PairHerald] = []
        out: list[Out] = []
        fast = self._peer_measured(rnd, msg) if VECTORISED else None
        if fast is not None:
            mine = fast
        for i, h in enumerate(msg.all_heralds() if fast is None else ()):
            q = req.qubits[i if len(req.qubits) > 1 else 0]
            at = self.to_own_ns(h.at_ns, msg.epoch_ns)
            dev.fresh(q, at)
            if len(h.half) == 64:  # the owner measured: our half is alone, here
                half = np.frombuffer(h.half, dtype="<c16").astype(complex).reshape(2, 2)
                dev.reg.put([q], half)
                outcomes, end = self._recipe(rnd, i, h.bell_index, q, at)
            elif len(h.half) == 256 and h.home >= 0:  # the whole pair, for us to measure
                ghost = self.groups.ghost((msg.frm, h.home), h.token)
                pair = np.frombuffer(h.half, dtype="<c16").astype(complex).reshape(4, 4)
                dev.reg.put([ghost, q], pair)
                outcomes, end = self._recipe(rnd, i, h.bell_index, q, at)
                for slot, to in self.groups.homeless([ghost]):  # the owner's half goes home
                    out.append(ToPeer(to, self.codec.encode(self.groups.give(slot, to))))
            else:  # the pair's state lives in the owner's process
                self.groups.entrust(q, msg.frm, rnd.token)
                outcomes, end = [], at
            mine.append(m.PairHerald(h.seq, h.attempts, int(end), h.bell_index, outcomes))
        at_end = self.to_own_ns(msg.at_ns, msg.epoch_ns)
        first = self._first(rnd, msg)
        return out + self._ended(rnd, mine, at_end, msg.attempts, msg.reason, msg.again, first)

    # -- measured pairs, all at once (measured.py) ----------------------------------------
    def _measure_recipes(self, rnd: Round, bells: list[int]) -> list[MeasureRecipe] | None:
        """Each pair's recipe, if every one measures our one qubit after one-qubit gates
        (else None: the pairs run one by one)."""
        req = rnd.req
        if not req.recipes or len(req.qubits) != 1 or req.peer_measures:
            return None
        made: dict[tuple[int, int], MeasureRecipe] = {}
        out: list[MeasureRecipe] = []
        for i, bell in enumerate(bells):
            k = (req.plan[i] if req.plan else 0, bell)
            r = made.get(k)
            if r is None:
                r = self.device.measure_recipe(req.recipes[k[0]][bell])
                if r is None or r.q != req.qubits[0]:
                    return None
                made[k] = r
            out.append(r)
        return out

    def _owner_measured(
        self, peer: str, rnd: Round, r: RoundEnd, theirs: list[int], token: bytes
    ) -> tuple[list[m.PairHerald], m.QMeasured] | None:
        """``_owner_round``'s pairs when we measure them all: (our pairs, the other end's
        heralds with its halves); None if not."""
        n = len(r.seqs)
        recipes = self._measure_recipes(rnd, list(r.bell_index)) if n else None
        if recipes is None:
            return None
        # as placing each pair on a ghost of the peer's qubit and dropping it would
        for pq in dict.fromkeys(theirs[:n] if len(theirs) > 1 else theirs):
            self.groups.drop_ghost(self.groups.ghost((peer, pq), token))
        ats, rhos = r.herald_ns, r.rho
        self.device.fresh(recipes[0].q, ats[-1])
        res = measure_pairs(
            self.device, recipes, ats, [id(x) for x in rhos],
            lambda i: to_paired(np.array(rhos[i], dtype=complex)), 2, rnd.work_ns,
        )  # fmt: skip
        rnd.work_ns = res.work_ns
        cols = zip(r.seqs, r.herald_attempts, res.ends, r.bell_index, res.outcomes, strict=True)
        mine = [m.PairHerald(s, a, int(end), b, o) for s, a, end, b, o in cols]
        theirs_now = m.QMeasured(
            seqs=list(r.seqs), attempts=list(r.herald_attempts), at_ns=list(ats),
            bell_index=list(r.bell_index), halves=res.halves(),
        )  # fmt: skip
        return mine, theirs_now

    def _peer_measured(self, rnd: Round, msg: m.QRound) -> list[m.PairHerald] | None:
        """``station_result``'s pairs when the owner measured its halves and we measure
        ours, all of them: our pairs; None if not."""
        if msg.measured is not None and not msg.heralds:
            cols = msg.measured
            seqs, tries, bells, halves = cols.seqs, cols.attempts, cols.bell_index, cols.halves
            sent = cols.at_ns
        else:
            hs = msg.heralds
            if msg.measured is not None or not hs or any(len(h.half) != 64 for h in hs):
                return None
            seqs, tries = [h.seq for h in hs], [h.attempts for h in hs]
            bells, halves = [h.bell_index for h in hs], [h.half for h in hs]
            sent = [h.at_ns for h in hs]
        if not seqs:
            return None
        recipes = self._measure_recipes(rnd, bells)
        if recipes is None:
            return None
        ats = [self.to_own_ns(t, msg.epoch_ns) for t in sent] if self.realtime else sent

        def state(i: int) -> np.ndarray:
            half = np.frombuffer(halves[i], dtype="<c16").astype(complex).reshape(2, 2)
            return to_paired(half)

        self.device.fresh(recipes[0].q, ats[-1])
        res = measure_pairs(self.device, recipes, ats, halves, state, 1, rnd.work_ns)
        rnd.work_ns = res.work_ns
        rows = zip(seqs, tries, res.ends, bells, res.outcomes, strict=True)
        return [m.PairHerald(s, a, int(end), b, o) for s, a, end, b, o in rows]

    def _first(self, rnd: Round, msg: m.QRound) -> float | None:
        """When the attempts of our round ``rnd`` began (our device time; None: it
        made none), from the station's answer: the first herald came ``attempts``
        cycles after that (or the round's last ``attempts`` ended at its end), unless
        a gap between the link's bins lay between; then the latest of that, our own
        start and the start of its bin (exact unless the other end came late too)."""
        cycle = rnd.link.model.cycle_ns
        head = msg.heralds[:1] or (msg.measured.heralds()[:1] if msg.measured else [])
        if head:
            first = self.to_own_ns(head[0].at_ns, msg.epoch_ns)
            first -= head[0].attempts * cycle
        elif msg.attempts:
            first = self.to_own_ns(msg.at_ns, msg.epoch_ns) - msg.attempts * cycle
        else:
            return None
        sched = self.bins.get(rnd.req.peer)
        if sched is not None:
            first = sched.window(max(first, sched.window(rnd.start, cycle)[0]), cycle)[0]
        return first

    def _recipe(self, rnd: Round, i: int, bell: int, q: int, at: float) -> tuple[list[int], float]:
        """Run pair ``i``'s recipe at device time ``at``: (outcomes, when it ended)."""
        req = rnd.req
        if not req.recipes:
            return [], at
        ops = req.recipes[req.plan[i] if req.plan else 0][bell]
        outcomes, end = [], at
        begin = max(at, self.device.busy_until)  # the ops run back to back from here
        for op in ops:
            try:
                outcome, end = self.device.execute(op, at)
            except DeviceError as exc:  # the kernel lowered it: a bug, not bad luck
                log.error("recipe op %s on qubit %d failed: %s", op.op, q, exc)
                outcome = -1
            outcomes.append(outcome)
        rnd.work_ns += max(0.0, end - begin)
        return outcomes, end

    # -- ending --------------------------------------------------------------------------
    def _ended(
        self,
        rnd: Round,
        pairs: list[m.PairHerald],
        at_ns: float,
        tail: int,
        reason: str,
        again: bool,
        first_ns: float | None = None,
    ) -> list[Out]:
        """Round ``rnd`` is over: report its pairs (in chunks, each due when made) and its
        end to our classical process. ``first_ns``: when its first attempt was (None:
        it made none; ``at_ns`` stands for it)."""
        dev, req = self.device, rnd.req
        end = max(rnd.start, at_ns, *(p.at_ns for p in pairs))
        attempts = tail + sum(p.attempts for p in pairs)
        for q in set(req.qubits):
            dev.attempted(attempts, q)
        dev.busy_until = max(dev.busy_until, end)
        rnd.done = True
        if self.timeline is not None:
            self._record(rnd, end, attempts, len(pairs), reason, first_ns)
        out: list[Out] = []
        rest = pairs
        if self.realtime and len(pairs) > 1:
            chunk_ns = CHUNK_S * 1e9 * self.speed
            rest, first = [], pairs[0].at_ns if pairs else 0
            for p in pairs:
                if p.at_ns - first > chunk_ns and rest:
                    part = m.EntangleDone(
                        seq=req.seq, key=req.key, pairs=rest, final=False, start_ns=int(rnd.start)
                    )
                    out += self._reply(rnd.peer, part, rest[-1].at_ns)
                    rest, first = [], p.at_ns
                rest.append(p)
        done = m.EntangleDone(
            seq=req.seq,
            key=req.key,
            pairs=rest,
            attempts=tail,
            at_ns=int(end),
            reason=reason,
            start_ns=int(rnd.start),
            again=again,
        )
        return out + self._reply(rnd.peer, done, end)

    def _record(
        self, rnd: Round, end: float, attempts: int, pairs: int, reason: str, first: float | None
    ) -> None:
        """The round's timeline row: the device's work and its waits (module docstring)."""
        assert self.timeline is not None
        cycle = rnd.link.model.cycle_ns
        since = rnd.start
        start = min(max(since, end if first is None else first), end)
        work = attempts * cycle + rnd.work_ns
        before, inside = 0.0, end - start  # waits for a bin: before the first attempt, after
        sched = self.bins.get(rnd.req.peer)
        if sched is not None:  # the device waited for the bin at least until it began
            before = max(0.0, min(sched.window(since, cycle)[0], start) - since)
            inside = sched.time_in(start, end)
        waits = {
            "bin": before + (end - start - inside),
            "peer": start - since - before,
            "dead": max(0.0, inside - work),
        }
        self.timeline.add(
            kind="round", seq=rnd.req.seq, peer=rnd.req.peer, since=since, start=start,
            end=end, attempts=attempts, cycle_ns=cycle, pairs=pairs, work_ns=work,
            waits=waits, reason=reason,
        )  # fmt: skip

    def give_up(self, key: str, reason: str, now_ns: float, again: bool = False) -> list[Out]:
        """Stop waiting for the station's answer to our round ``key``. Should it still
        herald, the pairs are void here (``station_result`` reports them as late).
        ``again``: our node attempts the same round again (it does not count it)."""
        rnd = self.active.pop(key)
        return self._ended(rnd, [], now_ns, 0, reason, again)

    def abort(self, rnd: Round, now_ns: float) -> list[Out]:
        """Our node ended the request of ``rnd``: end the round now if its attempts have
        not been decided yet (a decided round runs to its end; the node expires what it
        heralds)."""
        reason = "its request ended at this node"
        if not rnd.started:
            rnd.start = now_ns
            return self._ended(rnd, [], now_ns, 0, reason, False)
        key = rnd.req.key
        if key not in self.active:
            return []
        if rnd.link.nodes[0] != self.me:
            return self.give_up(key, reason, now_ns)
        st = self.stations[rnd.req.peer]
        return self.station_out(rnd.req.peer, st.withdraw(self.me, key, reason), now_ns)

    def _late(self, key: str, seqs: list[int], peer: str, now_ns: float) -> list[Out]:
        """Heralds for a round this end no longer runs: void here; our node tells the
        other end to expire them too."""
        self.late += len(seqs)
        what = f"heralds {seqs[:8]} for round {key!r} after this end stopped waiting"
        self.late_log.report(peer, what, now=self.now_s)
        return self._reply(None, m.LateHerald(key=key, heralds=seqs, peer=peer), now_ns)

    # -- time ----------------------------------------------------------------------------
    def timer(self, now_ns: float, now_s: float) -> list[Out]:
        out: list[Out] = []
        for peer, st in self.stations.items():
            out += self.station_out(peer, st.handle_timer(now_s), now_ns)
        for key, rnd in list(self.active.items()):
            if rnd.link.nodes[0] != self.me and now_s > rnd.req.expires_s + STATION_SILENT_S:
                reason = (
                    f"the heralding station in {rnd.link.nodes[0]!r}'s quantum process "
                    f"did not answer"
                )
                # attempted again, not counted: see ``peer_gone``
                out += self.give_up(key, reason, now_ns, again=True)
        return out

    def peer_gone(self, peer: str, why: str, now_ns: float) -> list[Out]:
        """``peer``'s quantum process is gone: stop waiting for its station. Our node
        attempts the same round again rather than counting it: a station that was only
        paused answers that round when it runs again, and then both ends count it alike
        (counting it here alone, the ends would attempt different rounds from then on).
        If the process is really gone, our node learns it and ends the request."""
        out: list[Out] = []
        for key, rnd in list(self.active.items()):
            if rnd.link.nodes[0] == peer:
                out += self.give_up(key, f"the heralding station in {why}", now_ns, again=True)
        return out

    def next_deadline(self) -> float:
        t = min((st.next_deadline() for st in self.stations.values()), default=math.inf)
        for rnd in self.active.values():
            if rnd.link.nodes[0] != self.me:
                t = min(t, rnd.req.expires_s + STATION_SILENT_S)
        return t
