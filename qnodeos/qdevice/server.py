"""The quantum process, sans-IO: requests from its classical process, messages from the
quantum processes of linked nodes, and a timer in; frames out, each with when to send.

Three jobs:

1. **Run the device.** A ``DeviceRequest`` runs its ops in order on the device; the reply
   is due when the device has finished them (``ToKernel.due_ns``).
2. **Entanglement rounds.** An ``Entangle`` request attempts one round on a link. The
   heralding station of a link lives in the quantum process of the link's first node
   (its *owner*); the other end sends its attempt there (``QAttempt``). The station
   answers both ends alike; on a herald the owner places the delivered two-qubit state
   on its qubit and on a slot standing for the peer's qubit, and the peer marks its
   qubit as held by the owner.
3. **State groups across processes.** Entangled qubits share one density matrix (a
   group), and a group lives in exactly one process. An op on a local qubit whose group
   is elsewhere asks for the group (``QPull``), and the request waits until it comes
   (``QGroup``); whoever holds it sends it, and a process that passed it on forwards the
   pull. After an op, a group holding none of this node's qubits, only one other node's,
   goes home to that node. While a request waits, this process keeps answering pulls,
   except (to break a cycle of two processes each waiting for what the other holds)
   pulls from nodes whose name sorts after its own, which wait until it moves on.

Times: device ns (``now_ns``) for the device, wall seconds (``now_s``) for waiting on
peers. Device times cross processes with the sender's ``epoch_ns`` (the wall ns at its
device time 0) so each end converts them into its own; with unlimited speed (``inf``)
device times are virtual and taken as they come.

Bad input from either side gets an error reply or is dropped and counted, never raised.
"""

from __future__ import annotations

import logging
import math
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field

import msgspec
import numpy as np

from netlink.station import Attempt, Heralded, HeraldingStation, NoHerald, Rejected
from netlink.station import ToNode as StationOut

from ..config import LinkConfig, NodeConfig
from ..errors import DeviceError, ProtocolError
from ..lang import codec
from ..lang import messages as m
from ..liveness import Liveness
from ..ratelog import BadInput
from ..security import node_id
from .device import QuantumDevice

log = logging.getLogger("qnodeos.qdevice")

PULL_RETRY_S = 0.002  # after a QNotHere, ask again this much later
PULL_GIVE_UP_S = 5.0  # a group that does not come in this long is lost: fail the request
# Past a round's expiry the non-owner stops waiting for the station (its owner is gone).
# Long, because giving up on a herald that is only late would leave the pair at the
# owner alone; the station itself answers a lone attempt at its expiry.
STATION_SILENT_S = 10.0
MAX_DEFERRED = 1024  # pulls waiting while we wait ourselves (more are dropped; they retry)
MAX_GROUP = 8  # qubits in a group that may cross processes (16 * 4**8 bytes: 1 MiB)


@dataclass(frozen=True)
class ToKernel:
    """Send ``frames`` to the classical process when device time reaches ``due_ns``.
    ``tag``: the request it answers, if it may be withdrawn (``Cancel``)."""

    frames: list[bytes]
    due_ns: float
    tag: int | None = None


@dataclass(frozen=True)
class Cancel:
    """Withdraw the reply tagged ``tag`` if it has not been sent yet."""

    tag: int


@dataclass(frozen=True)
class ToPeer:
    """Send ``data`` to the quantum process of node ``node``."""

    node: str
    data: bytes


Out = ToKernel | ToPeer | Cancel


@dataclass
class _Batch:
    peer: bytes
    req: m.DeviceRequest
    i: int = 0
    outcomes: list[int] = field(default_factory=list)
    start: float | None = None
    end: float = 0.0
    then: m.EntangleDone | None = None  # ops after a herald: answer with this, filled in


@dataclass
class _Round:
    peer: bytes
    req: m.Entangle
    link: LinkConfig
    started: bool = False
    start: float = 0.0


@dataclass
class _Wait:
    qubit: m.GlobalQubit
    since_s: float
    retry_s: float = math.inf


class QDeviceServer:
    """The quantum process of node ``cfg`` on links ``links`` (those it is an end of)."""

    def __init__(
        self,
        cfg: NodeConfig,
        links: Iterable[LinkConfig] = (),
        *,
        epoch_ns: int = 0,
        token: str = "",
    ) -> None:
        self.cfg = cfg
        self.token = token  # the secret of our classical process (empty: the first Ping)
        self.kernel: bytes | None = None  # its connection, once it has pinged
        self.me = cfg.name
        self.device = QuantumDevice(cfg.device, np.random.default_rng(cfg.seed))
        self.realtime = not math.isinf(cfg.speed)
        self.epoch_ns = epoch_ns
        self.links = {lk.other(self.me): lk for lk in links if self.me in lk.nodes}
        self.stations = {
            peer: HeraldingStation(
                link=lk.name, nodes=lk.nodes, model=lk.model, rng=np.random.default_rng(lk.seed)
            )
            for peer, lk in self.links.items()
            if lk.nodes[0] == self.me
        }
        self.dec, self.enc = codec.to_device(), codec.from_device()
        self.peer_codec = codec.qdevice_peer()
        self.bad = BadInput(log)
        # where state lives
        self.away: dict[int, str] = {}  # own qubit -> node believed to hold its group
        self.ghosts: dict[m.GlobalQubit, int] = {}  # other nodes' qubits held here -> slot
        self.slot_of: dict[int, m.GlobalQubit] = {}
        self.free_slots: list[int] = []
        self.sent_to: dict[m.GlobalQubit, str] = {}  # where groups we gave away went
        # work
        self.jobs: deque[_Batch | _Round] = deque()
        self.wait: _Wait | None = None
        self.deferred: list[m.QPull] = []
        self.rounds: dict[str, _Round] = {}  # key -> our round waiting for the station
        self.peer_qubit: dict[str, int] = {}  # station: key -> the peer's qubit
        self.late_heralds = 0
        self._last_batch = -1  # seq of the last block batch that ran ops
        self.live = Liveness(self.links)
        self.lost: dict[int, str] = {}  # own qubits whose state died with another process

    # -- entry points --------------------------------------------------------------------
    def handle(self, frames: list[bytes], now_ns: float, now_s: float) -> list[Out]:
        """A request from the classical process."""
        if len(frames) != 2:
            self.bad.report("the device endpoint", f"{len(frames) - 1} data frames", now=now_s)
            return []
        peer, data = frames
        try:
            msg = self.dec.decode(data)
        except ProtocolError as exc:
            self.bad.report("the device endpoint", str(exc), now=now_s)
            return [self._reply(peer, m.ErrorReply(code="bad_message", message=str(exc)), now_ns)]
        if isinstance(msg, m.Ping) and (msg.token == self.token or not self.token):
            if self.kernel is None or self.token:
                self.kernel = peer  # our classical process (again, if it reconnected)
        if peer != self.kernel:
            # Only the node's own classical process may use the device: a stranger on
            # this endpoint must not read or flip anyone's qubits.
            self.bad.report("the device endpoint", "a client other than our node", now=now_s)
            refusal = m.ErrorReply(
                code="not_authorized",
                message=f"this quantum process serves node {self.me!r}'s classical process only",
            )
            return [self._reply(peer, refusal, now_ns)]
        if isinstance(msg, m.Abort):
            return self._abort(msg.seq, now_ns, now_s)
        if isinstance(msg, m.Ping):
            spec = self.cfg.device
            pong = m.Pong(seq=msg.seq, device=spec.name, num_qubits=spec.num_qubits)
            return [self._reply(peer, pong, now_ns)]
        if isinstance(msg, m.Entangle):
            lk = self.links.get(msg.peer)
            if lk is None:
                error = f"{self.me} has no quantum link to {msg.peer!r}"
                return [self._reply(peer, _ent_error(msg, error), now_ns)]
            self.jobs.append(_Round(peer=peer, req=msg, link=lk))
        else:
            self.jobs.append(_Batch(peer=peer, req=msg))
        return self._run(now_ns, now_s)

    def peer_message(
        self, data: bytes, now_ns: float, now_s: float, user: str | None = None
    ) -> list[Out]:
        """A message from another node's quantum process; ``user``: the node its CURVE
        key authenticated (None without keys)."""
        try:
            msg = self.peer_codec.decode(data)
        except ProtocolError as exc:
            self.bad.report(user or "a quantum process", str(exc), now=now_s)
            return []
        if user is not None and user != node_id(msg.frm):
            self.bad.report(user, f"claims to be {msg.frm!r}", now=now_s)
            return []
        if msg.frm not in self.links and not isinstance(msg, m.QPull | m.QGroup | m.QNotHere):
            self.bad.report(msg.frm, f"{type(msg).__name__}, but it has no link here", now=now_s)
            return []
        self.live.heard(msg.frm, now_s)
        if isinstance(msg, m.QAttempt):
            return self._peer_attempt(msg, now_ns, now_s)
        if isinstance(msg, m.QRound):
            return self._station_result(msg, now_ns, now_s)
        if isinstance(msg, m.QPull):
            return self._pull(msg, now_s) + self._run(now_ns, now_s)
        if isinstance(msg, m.QGroup):
            return self._arrive(msg, now_ns, now_s)
        if isinstance(msg, m.QPing):
            return []
        if self.wait is not None and self.wait.qubit == msg.qubit:
            self.wait.retry_s = now_s + PULL_RETRY_S
        return []

    def timer(self, now_ns: float, now_s: float) -> list[Out]:
        out: list[Out] = []
        pings, gone = self.live.tick(now_s)
        out += [ToPeer(p, self._enc(m.QPing(frm=self.me))) for p in pings]
        for peer in gone:
            why = f"stopped answering (nothing heard for {self.live.timeout_s:g} s)"
            out += self._peer_gone(peer, why, now_ns, now_s)
        for peer, st in self.stations.items():
            out += self._station_out(peer, st.handle_timer(now_s), now_ns, now_s)
        for key, rnd in list(self.rounds.items()):
            if rnd.link.nodes[0] != self.me and now_s > rnd.req.expires_s + STATION_SILENT_S:
                reason = (
                    f"the heralding station in {rnd.link.nodes[0]!r}'s quantum process "
                    f"did not answer"
                )
                out += self._give_up_round(key, reason, now_ns, now_s)
        w = self.wait
        if w is not None:
            if now_s - w.since_s > PULL_GIVE_UP_S:
                out += self._fail_job(
                    f"the state of qubit {w.qubit[1]} (held by {self.away.get(w.qubit[1])!r}) "
                    f"did not come back within {PULL_GIVE_UP_S} s",
                    now_ns,
                )
                out += self._run(now_ns, now_s)
            elif now_s >= w.retry_s:
                w.retry_s = math.inf
                out += self._ask(w.qubit)
        return out

    def _give_up_round(self, key: str, reason: str, now_ns: float, now_s: float) -> list[Out]:
        """Stop waiting for the station's answer to our round ``key``. Should it still
        herald, the pair is void here (``_station_result`` reports it to our node)."""
        rnd = self.rounds.pop(key)
        res = m.QRound(
            frm=self.me,
            key=key,
            heralded=False,
            herald=0,
            attempts=0,
            at_ns=now_ns,
            bell_index=0,
            reason=reason,
            epoch_ns=self.epoch_ns,
        )
        return self._round_done(rnd, res, now_ns, now_ns, now_s)

    def disconnected(self, peer: str, now_ns: float, now_s: float) -> list[Out]:
        """Our connection to ``peer``'s quantum process closed: its process died."""
        if peer not in self.live.last_heard or self.live.is_down(peer):
            return []
        self.live.down.add(peer)
        return self._peer_gone(peer, "ended (its connection closed)", now_ns, now_s)

    def _peer_gone(self, peer: str, what: str, now_ns: float, now_s: float) -> list[Out]:
        """``peer``'s quantum process went silent or died: stop waiting for its
        station, and the states it held for us are lost (ops on those qubits fail,
        saying so)."""
        why = f"{peer!r}'s quantum process, which {what}"
        out: list[Out] = []
        for key, rnd in list(self.rounds.items()):
            if rnd.link.nodes[0] == peer:
                out += self._give_up_round(key, f"the heralding station in {why}", now_ns, now_s)
        for q, holder in list(self.away.items()):
            if holder == peer:
                del self.away[q]
                self.lost[q] = why
        w = self.wait
        if w is not None and w.qubit[1] in self.lost and w.qubit[0] == self.me:
            out += self._fail_job(f"the state of qubit {w.qubit[1]} was held by {why}", now_ns)
            out += self._run(now_ns, now_s)
        return out

    def _late(self, key: str, herald: int, peer: str, now_ns: float) -> list[Out]:
        """A herald for a round this end no longer runs: the pair is void here; our node
        tells the other end to expire it too."""
        self.late_heralds += 1
        log.warning("herald %d for round %r after this end stopped waiting", herald, key)
        if self.kernel is None:
            return []
        return [self._reply(self.kernel, m.LateHerald(key=key, herald=herald, peer=peer), now_ns)]

    def next_timer_s(self) -> float:
        """Wall time at which ``timer`` has something to do (inf: nothing pending)."""
        t = min((st.next_deadline() for st in self.stations.values()), default=math.inf)
        t = min(t, self.live.next_deadline())
        for rnd in self.rounds.values():
            if rnd.link.nodes[0] != self.me:
                t = min(t, rnd.req.expires_s + STATION_SILENT_S)
        if self.wait is not None:
            t = min(t, self.wait.retry_s, self.wait.since_s + PULL_GIVE_UP_S)
        return t

    # -- running jobs --------------------------------------------------------------------
    def _reply(
        self, peer: bytes, msg: m.FromDevice, due_ns: float, tag: int | None = None
    ) -> ToKernel:
        return ToKernel([peer, self.enc.encode(msg)], due_ns, tag)

    def _abort(self, seq: int, now_ns: float, now_s: float) -> list[Out]:
        """The block whose batch ``seq`` runs was abandoned: drop the batch if it has
        not run yet, withdraw its reply, and (in real time) free the device now instead
        of when the batch would have ended. Its ops that already ran stay applied: they
        acted on the abandoned app's qubits, which its node frees."""
        for job in list(self.jobs):
            if isinstance(job, _Batch) and job.then is None and job.req.seq == seq:
                if job is self.jobs[0]:
                    self.wait = None
                self.jobs.remove(job)
        dev = self.device
        if self.realtime and self._last_batch == seq and dev.busy_until > now_ns:
            dev.busy_until = now_ns
            dev.touched = [min(t, now_ns) for t in dev.touched]
        return [Cancel(seq), *self._run(now_ns, now_s)]

    def _run(self, now_ns: float, now_s: float) -> list[Out]:
        """Advance the job at the head until it finishes or must wait; then the next."""
        out: list[Out] = []
        while self.jobs and self.wait is None:
            job = self.jobs[0]
            if isinstance(job, _Round):
                if job.started:
                    break  # waiting for the station
                sent, done = self._start_round(job, now_ns, now_s)
            else:
                sent, done = self._step_batch(job, now_ns, now_s)
            out += sent
            if not done:
                break  # waits (for a group, or the station)
        if self.wait is None and self.deferred:
            pulls, self.deferred = self.deferred, []
            for p in pulls:
                out += self._pull(p, now_s)
        return out

    def _need(self, qubits: Iterable[int], now_s: float) -> list[Out] | None:
        """If one of ``qubits`` has its group elsewhere, ask for it and return what to
        send (the job waits); None if all are here."""
        for q in qubits:
            if q in self.away:
                gq = (self.me, q)
                self.wait = _Wait(qubit=gq, since_s=now_s)
                return self._ask(gq)
        return None

    def _ask(self, gq: m.GlobalQubit) -> list[Out]:
        holder = self.away.get(gq[1])
        if holder is None:
            return []
        return [ToPeer(holder, self._enc(m.QPull(frm=self.me, for_node=self.me, qubit=gq)))]

    def _touches(self, op: m.PhysOp) -> list[int]:
        n = self.device.spec.num_qubits
        if op.op == "wait":
            return []
        if not op.qubits:
            return list(range(n))  # a collective gate acts on every qubit
        return [q for q in op.qubits if 0 <= q < n]

    def _step_batch(self, job: _Batch, now_ns: float, now_s: float) -> tuple[list[Out], bool]:
        """Run the batch's ops from where it stopped: (what to send, finished?)."""
        dev = self.device
        sent: list[Out] = []
        while job.i < len(job.req.ops):
            op = job.req.ops[job.i]
            touched = self._touches(op)
            lost = [q for q in touched if q in self.lost]
            if lost and op.op in ("init", "discard"):
                for q in lost:  # it starts over: what was lost no longer matters
                    del self.lost[q]
            elif lost:
                self.jobs.popleft()
                due = job.end or max(now_ns, dev.busy_until)
                error = f"the state of qubit {lost[0]} is lost: held by {self.lost[lost[0]]}"
                reply = self._batch_reply(job, due, error)
                return sent + [self._reply(job.peer, reply, due, self._tag(job))], True
            ask = self._need(touched, now_s)
            if ask is not None:
                return sent + ask, False
            partners = self._partners(touched)
            try:
                outcome, end = dev.execute(op, now_ns)
            except DeviceError as exc:
                self.jobs.popleft()
                due = job.end or max(now_ns, dev.busy_until)
                reply = self._batch_reply(job, due, str(exc))
                return sent + [self._reply(job.peer, reply, due, self._tag(job))], True
            if job.then is None:
                self._last_batch = job.req.seq
            if job.start is None:
                job.start = end - dev.spec.op_spec(op).duration_ns
            job.end = end
            job.outcomes.append(outcome)
            job.i += 1
            if partners:
                sent += self._go_home(partners)
        return sent + self._finish_batch(job, now_ns), True

    def _finish_batch(self, job: _Batch, now_ns: float) -> list[Out]:
        self.jobs.popleft()
        start = job.start if job.start is not None else max(now_ns, self.device.busy_until)
        end = job.end if job.req.ops else start
        return [self._reply(job.peer, self._batch_reply(job, end, None), end, self._tag(job))]

    @staticmethod
    def _tag(job: _Batch) -> int | None:
        return job.req.seq if job.then is None else None

    def _batch_reply(self, job: _Batch, end: float, error: str | None) -> m.FromDevice:
        if job.then is not None:
            return msgspec.structs.replace(
                job.then, outcomes=job.outcomes, at_ns=int(end), error=error
            )
        start = job.start if job.start is not None else end
        return m.DeviceReply(
            seq=job.req.seq,
            outcomes=job.outcomes,
            error=error,
            now_ns=int(end),
            start_ns=int(start),
        )

    def _fail_job(self, error: str, now_ns: float) -> list[Out]:
        self.wait = None
        job = self.jobs.popleft()
        if isinstance(job, _Round):
            self.rounds.pop(job.req.key, None)
            return [self._reply(job.peer, _ent_error(job.req, error), now_ns)]
        return [self._reply(job.peer, self._batch_reply(job, max(now_ns, job.end), error), now_ns)]

    # -- groups across processes ---------------------------------------------------------
    def _partners(self, qubits: Iterable[int]) -> list[int]:
        """Slots sharing a group with ``qubits`` (whose group may be left without any of
        our qubits by the op)."""
        group_of = self.device.reg.group_of
        return [s for q in qubits for s in group_of[q].qubits if s != q]

    def _global(self, slot: int) -> m.GlobalQubit:
        return (self.me, slot) if slot < self.device.spec.num_qubits else self.slot_of[slot]

    def _go_home(self, slots: Iterable[int]) -> list[Out]:
        """Send home every group among ``slots`` that holds no qubit of ours and only
        qubits of one other node."""
        out: list[Out] = []
        n = self.device.spec.num_qubits
        seen: set[int] = set()
        for s in slots:
            if s >= n and s not in self.slot_of:
                continue  # a slot freed when an earlier group here went away
            g = self.device.reg.group_of[s]
            if id(g) in seen or any(q < n for q in g.qubits):
                continue
            seen.add(id(g))
            owners = {self.slot_of[q][0] for q in g.qubits}
            if len(owners) == 1:
                out += self._give(g.qubits[0], owners.pop())
        return out

    def _give(self, slot: int, to: str) -> list[Out]:
        """Send the group holding ``slot`` to node ``to``."""
        g = self.device.reg.take(slot)
        members = [self._global(q) for q in g.qubits]
        n = self.device.spec.num_qubits
        for q, gq in zip(g.qubits, members, strict=True):
            if q < n:
                self.away[q] = to
            else:
                del self.ghosts[gq], self.slot_of[q]
                self.free_slots.append(q)
            self.sent_to[gq] = to
        rho = np.ascontiguousarray(g.rho, dtype="<c16").tobytes()
        return [ToPeer(to, self._enc(m.QGroup(frm=self.me, qubits=members, rho=rho)))]

    def _pull(self, msg: m.QPull, now_s: float) -> list[Out]:
        gq = msg.qubit
        slot = self._slot_here(gq)
        if slot is None:
            where = self.sent_to.get(gq)
            if where is None or where == msg.frm:
                return [ToPeer(msg.for_node, self._enc(m.QNotHere(frm=self.me, qubit=gq)))]
            fwd = m.QPull(frm=self.me, for_node=msg.for_node, qubit=gq)
            return [ToPeer(where, self._enc(fwd))]
        if msg.for_node == self.me:
            return []
        if self.wait is not None and msg.for_node > self.me:
            if len(self.deferred) < MAX_DEFERRED:
                self.deferred.append(msg)  # we wait too; the smaller name goes first
            return []
        return self._give(slot, msg.for_node)

    def _slot_here(self, gq: m.GlobalQubit) -> int | None:
        node, q = gq
        if node == self.me:
            return q if 0 <= q < self.device.spec.num_qubits and q not in self.away else None
        return self.ghosts.get(gq)

    def _arrive(self, msg: m.QGroup, now_ns: float, now_s: float) -> list[Out]:
        k = len(msg.qubits)
        n = self.device.spec.num_qubits
        problem = None
        if not 1 <= k <= MAX_GROUP or len(set(msg.qubits)) != k:
            problem = f"{k} qubits (or repeats)"
        elif len(msg.rho) != 16 * 4**k:
            problem = f"{len(msg.rho)} bytes of state for {k} qubits"
        else:
            for node, q in msg.qubits:
                if node == self.me and not (0 <= q < n and q in self.away):
                    problem = f"our qubit {q}, which is not away"
                elif node == self.me and len(self.device.reg.group_of[q].qubits) != 1:
                    problem = f"our qubit {q}, which is entangled here (internal error)"
                elif node != self.me and (node, q) in self.ghosts:
                    problem = f"{node}'s qubit {q}, already here"
        if problem is not None:
            self.bad.report(msg.frm, f"dropped a state group: {problem}", now=now_s)
            return []
        rho = np.frombuffer(msg.rho, dtype="<c16").astype(complex).reshape(2**k, 2**k)
        slots: list[int] = []
        for gq in msg.qubits:
            node, q = gq
            self.sent_to.pop(gq, None)
            if node == self.me:
                del self.away[q]
                slots.append(q)
            else:
                s = self.free_slots.pop() if self.free_slots else self.device.reg.add_slot()
                self.ghosts[gq], self.slot_of[s] = s, gq
                slots.append(s)
        self.device.reg.put(slots, rho)
        out: list[Out] = []
        if self.wait is not None and self._slot_here(self.wait.qubit) is not None:
            self.wait = None
        return out + self._run(now_ns, now_s)

    # -- entanglement rounds -------------------------------------------------------------
    def _start_round(self, job: _Round, now_ns: float, now_s: float) -> tuple[list[Out], bool]:
        req, dev = job.req, self.device
        q = req.qubit
        error = None
        if not 0 <= q < dev.spec.num_qubits:
            error = f"{dev.spec.name}: physical qubit {q} does not exist"
        elif not dev.spec.kind(q).communication:
            error = f"{dev.spec.name}: qubit {q} ({dev.spec.kind(q).name}) cannot be entangled"
        elif req.max_attempts < 1:
            error = f"max_attempts {req.max_attempts} < 1"
        elif len(req.after) not in (0, 4):
            error = f"after: {len(req.after)} op lists; give none or one per Bell index (4)"
        elif req.key in self.rounds:
            error = f"round {req.key!r} is already running"
        if error is not None:
            self.jobs.popleft()
            return [self._reply(job.peer, _ent_error(req, error), now_ns)], True
        ask = self._need([q], now_s)  # its old state must be traced out here
        if ask is not None:
            return ask, False
        job.started = True
        job.start = max(now_ns, dev.busy_until)
        # Attempting re-initialises the qubit: detach it from any group now, so a pull
        # for that group while the round runs cannot take it along.
        dev.fresh(q, job.start)
        self.rounds[req.key] = job
        owner = job.link.nodes[0]
        if owner == self.me:
            st = self.stations[req.peer]
            att = Attempt(
                node=self.me,
                key=req.key,
                start_ns=job.start,
                max_attempts=req.max_attempts,
                expires_s=req.expires_s,
            )
            return self._station_out(req.peer, st.receive(att), now_ns, now_s), False
        msg = m.QAttempt(
            frm=self.me,
            key=req.key,
            qubit=q,
            start_ns=job.start,
            max_attempts=req.max_attempts,
            expires_s=req.expires_s,
            epoch_ns=self.epoch_ns,
        )
        return [ToPeer(owner, self._enc(msg))], False

    def _to_own_ns(self, t: float, epoch_ns: int) -> float:
        if not self.realtime:
            return t
        return t + (epoch_ns - self.epoch_ns) * self.cfg.speed

    def _peer_attempt(self, msg: m.QAttempt, now_ns: float, now_s: float) -> list[Out]:
        st = self.stations.get(msg.frm)
        if st is None:
            self.bad.report(msg.frm, f"an attempt, but {self.me} hosts no station", now=now_s)
            return []
        if not 0 <= msg.qubit < 64:
            self.bad.report(msg.frm, f"an attempt with qubit {msg.qubit}", now=now_s)
            return []
        self.peer_qubit[msg.key] = msg.qubit
        att = Attempt(
            node=msg.frm,
            key=msg.key,
            start_ns=max(0.0, self._to_own_ns(msg.start_ns, msg.epoch_ns)),
            max_attempts=msg.max_attempts,
            expires_s=msg.expires_s,
        )
        return self._station_out(msg.frm, st.receive(att), now_ns, now_s)

    def _station_out(
        self, peer: str, outs: list[StationOut], now_ns: float, now_s: float
    ) -> list[Out]:
        out: list[Out] = []
        mine: list[tuple[_Round, m.QRound]] = []
        for o in outs:
            r = o.msg
            res = m.QRound(
                frm=self.me,
                key=r.key,
                heralded=isinstance(r, Heralded),
                herald=r.seq if isinstance(r, Heralded) else 0,
                attempts=r.attempts if isinstance(r, Heralded | NoHerald) else 0,
                at_ns=float(r.at_ns) if isinstance(r, Heralded | NoHerald) else now_ns,
                bell_index=r.bell_index if isinstance(r, Heralded) else 0,
                reason=r.reason if isinstance(r, NoHerald | Rejected) else "",
                epoch_ns=self.epoch_ns,
                again=isinstance(r, NoHerald) and r.again,
            )
            if o.node != self.me:
                if not isinstance(r, Heralded):
                    self.peer_qubit.pop(r.key, None)
                out.append(ToPeer(o.node, self._enc(res)))
                continue
            if isinstance(r, Heralded):
                if not self._place_pair(peer, r):
                    out += self._late(r.key, r.seq, peer, now_ns)
            else:
                self.peer_qubit.pop(r.key, None)
            rnd = self.rounds.pop(r.key, None)
            if rnd is not None:
                mine.append((rnd, res))
        # The peer hears how the round ended before any state we send it after our own
        # post-herald ops (which may send its half home).
        for rnd, res in mine:
            out += self._round_done(rnd, res, res.at_ns, now_ns, now_s)
        return out

    def _place_pair(self, peer: str, h: Heralded) -> bool:
        """Owner: put the heralded state on our round's qubit and a slot for the peer's
        (False: our round is not running any more, the pair is void here)."""
        rnd = self.rounds.get(h.key)
        pq = self.peer_qubit.pop(h.key, None)
        if rnd is None or pq is None:
            return False
        q = rnd.req.qubit
        gq = (peer, pq)
        if gq in self.ghosts:  # an older state of that qubit is still here: trace it out
            self.device.reg.reset(self.ghosts[gq])
        else:
            s = self.free_slots.pop() if self.free_slots else self.device.reg.add_slot()
            self.ghosts[gq], self.slot_of[s] = s, gq
        self.sent_to.pop(gq, None)
        self.device.fresh(q, h.at_ns)
        self.device.reg.put([q, self.ghosts[gq]], np.array(h.rho, dtype=complex))
        return True

    def _station_result(self, msg: m.QRound, now_ns: float, now_s: float) -> list[Out]:
        rnd = self.rounds.pop(msg.key, None)
        if rnd is None:
            return self._late(msg.key, msg.herald, msg.frm, now_ns) if msg.heralded else []
        at = self._to_own_ns(msg.at_ns, msg.epoch_ns)
        if msg.heralded:
            q = rnd.req.qubit
            self.device.fresh(q, at)
            self.away[q] = msg.frm  # the pair's state lives in the owner's process
        return self._round_done(rnd, msg, at, now_ns, now_s)

    def _round_done(
        self, rnd: _Round, res: m.QRound, at_ns: float, now_ns: float, now_s: float
    ) -> list[Out]:
        """Round ``rnd`` ended as ``res`` says, at our device time ``at_ns``."""
        dev = self.device
        end = max(rnd.start, at_ns)
        dev.attempted(res.attempts, rnd.req.qubit)
        dev.busy_until = max(dev.busy_until, end)
        if self.jobs and self.jobs[0] is rnd:
            self.jobs.popleft()
        done = m.EntangleDone(
            seq=rnd.req.seq,
            key=rnd.req.key,
            heralded=res.heralded,
            herald=res.herald,
            attempts=res.attempts,
            at_ns=int(end),
            bell_index=res.bell_index,
            reason=res.reason,
            start_ns=int(rnd.start),
            again=res.again,
        )
        after = rnd.req.after
        if res.heralded and len(after) == 4 and after[res.bell_index % 4]:
            # Correct or measure at once, before anything else touches the device.
            ops = m.DeviceRequest(seq=rnd.req.seq, ops=after[res.bell_index % 4])
            self.jobs.appendleft(_Batch(peer=rnd.peer, req=ops, then=done))
            return self._run(now_ns, now_s)
        return [self._reply(rnd.peer, done, end), *self._run(now_ns, now_s)]

    def _enc(self, msg: m.QPeer) -> bytes:
        return self.peer_codec.encode(msg)


def _ent_error(req: m.Entangle, error: str) -> m.EntangleDone:
    return m.EntangleDone(seq=req.seq, key=req.key, heralded=False, error=error)
