"""The quantum process, sans-IO: requests from its classical process, messages from the
quantum processes of linked nodes, and a timer in; frames out, each with when to send.

Three jobs:

1. **Run the device.** A ``DeviceRequest`` runs its ops in order on the device; the reply
   is due when the device has finished them (``ToKernel.due_ns``).
2. **Entanglement rounds** (``rounds``): an ``Entangle`` request attempts a round of
   pairs on a link, with the link's heralding station in the first node's quantum
   process.
3. **State groups across processes** (``groups``). Entangled qubits share one density
   matrix (a group), and a group lives in exactly one process. An op on a local qubit
   whose group is elsewhere asks for the group (``QPull``), and the request waits until
   it comes (``QGroup``); whoever holds it sends it, and a process that passed it on
   forwards the pull. After an op, a group holding none of this node's qubits, only one
   other node's, goes home to that node. While a request waits, this process keeps
   answering pulls, except (to break a cycle of two processes each waiting for what the
   other holds) pulls from nodes whose name sorts after its own, which wait until it
   moves on. A group whose message is dropped unsent (``undelivered``) is lost at both
   ends, and both say so: the receiver is told at once and again when it asks. Along a
   chain the receiver may believe its group is with another node, the one it gave it to,
   which passed it on: the notice then reaches it through that node, which trusts only
   the node it gave the group to (a notice from anyone else is a hint to ask again).

Jobs (device batches and rounds) run one at a time, in order. Linked quantum processes
ping each other (``QPing``) while one waits on the other (a round, and for a while
after one; a state it holds); one that dies (its connection closes) or goes silent then
is gone: rounds waiting for its station end, and states it held for us are lost.

Times: device ns (``now_ns``) for the device, wall seconds (``now_s``) for waiting on
peers. Device times cross processes with the sender's ``epoch_ns`` (the wall ns at its
device time 0) so each end converts them into its own; with unlimited speed (``inf``)
device times are virtual and taken as they come.

Bad input from either side gets an error reply or is dropped and counted, never raised.
"""

from __future__ import annotations

import logging
import math
from collections import Counter, OrderedDict, deque
from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np

from ..config.network import LinkConfig, NodeConfig
from ..errors import DeviceError, ProtocolError
from ..lang import codec
from ..lang import messages as m
from ..runtime.liveness import QUIET_EVERY, Liveness, Look
from ..runtime.ratelog import BadInput
from ..runtime.security import node_id
from ..runtime.timeline import recorder
from .device import QuantumDevice
from .groups import MAX_GROUP, Groups
from .outputs import Cancel, Out, ToKernel, ToPeer
from .rounds import STATION_SILENT_S, Round, Rounds, check

__all__ = [
    "MAX_GROUP",
    "STATION_SILENT_S",
    "Cancel",
    "Out",
    "QDeviceServer",
    "ToKernel",
    "ToPeer",
]

log = logging.getLogger("qnodeos.qdevice")

PULL_RETRY_S = 0.002  # after a QNotHere, ask again this much later
PULL_GIVE_UP_S = 5.0  # a group that does not come in this long is lost: fail the request
PULL_ASK_AGAIN_S = 1.0  # past that, while its holder is known alive, ask this often
ROUND_SEQS_KEPT = 1024  # rounds whose Abort is recognised as a round's
PREFETCH_OPS = 256  # a batch asks for the groups of this many ops ahead at once
PREFETCH_AGAIN_S = 0.5  # a group asked for ahead that has not come is asked for again
LINGER_S = 5.0  # a link's peer is pinged this long after its last round (see _want)
MAX_DEFERRED = 1024  # pulls waiting while we wait ourselves (more are dropped; they retry)


@dataclass
class _Batch:
    peer: bytes
    req: m.DeviceRequest
    i: int = 0
    outcomes: list[int] = field(default_factory=list)
    states: list[list[float]] = field(default_factory=list)  # what its peeks read
    start: float | None = None
    end: float = 0.0
    ready: float | None = None  # device time it could begin (it came to the head)
    paused: float | None = None  # device time it began to wait for a state from elsewhere
    waited: float = 0.0  # device time it waited for states from other processes


@dataclass
class _Wait:
    qubit: m.GlobalQubit
    since_s: float
    retry_s: float = math.inf
    # give up after this long; longer while the OS says the holder's process is alive
    limit_s: float = PULL_GIVE_UP_S


class QDeviceServer:
    """The quantum process of node ``cfg`` on links ``links`` (those it is an end of)."""

    def __init__(
        self,
        cfg: NodeConfig,
        links: Iterable[LinkConfig] = (),
        *,
        epoch_ns: int = 0,
        token: str = "",
        look: Look | None = None,
        proc: m.ProcId | None = None,
    ) -> None:
        """``look`` asks the OS about a peer's process and ``proc`` is this process
        (see ``Liveness``; both None when every node runs in one process)."""
        self.cfg = cfg
        self.proc = proc
        self.token = token  # the secret of our classical process (empty: the first Ping)
        self.kernel: bytes | None = None  # its connection, once it has pinged
        self.me = cfg.name
        self.device = QuantumDevice(cfg.device, np.random.default_rng(cfg.seed))
        self.realtime = not math.isinf(cfg.speed)
        self.epoch_ns = epoch_ns
        self.links = {lk.other(self.me): lk for lk in links if self.me in lk.nodes}
        self.dec, self.enc = codec.to_device(), codec.from_device()
        self.peer_codec = codec.qdevice_peer()
        self.bad = BadInput(log)
        self.groups = Groups(self.me, self.device)
        self.device.slot_order = self.groups.global_id
        self.timeline = recorder(cfg.name, "device")  # None: no timeline asked for
        self.rounds = Rounds(
            me=self.me,
            device=self.device,
            groups=self.groups,
            links=self.links,
            epoch_ns=epoch_ns,
            speed=cfg.speed,
            reply=self._reply_to,
            timeline=self.timeline,
        )
        self.jobs: deque[_Batch | Round] = deque()
        self.wait: _Wait | None = None
        # in real time, a batch that comes while the device is still busy (its reply not
        # yet due) runs when it is free: device ns to run it at (an Abort may free the
        # device sooner), or None
        self.deferred_ns: float | None = None
        self.deferred: list[m.QPull] = []
        self._last_batch = -1  # seq of the last block batch that ran ops
        self._round_seqs: OrderedDict[int, None] = OrderedDict()  # recent rounds' seqs
        # linked quantum processes are pinged and judged only while something waits on them
        self.live = Liveness(self.links, look=look, on_demand=True, quiet_every=QUIET_EVERY)
        self._in_use: dict[str, float] = {}  # linked peer -> until when it is pinged
        self._asked: set[m.GlobalQubit] = set()  # our qubits whose groups are on their way
        self.internal_errors = 0  # bugs met on one message of a bundle (the rest went on)
        # in one process (deterministic mode), a bug ends the run at once, naming the node
        self.fail_fast = False

    # kept as attributes for callers that inspect where state lives
    @property
    def away(self) -> dict[int, str]:
        return self.groups.away

    @property
    def stations(self) -> dict[str, object]:
        return dict(self.rounds.stations)

    # -- entry points --------------------------------------------------------------------
    def handle(self, frames: list[bytes], now_ns: float, now_s: float) -> list[Out]:
        """A request from the classical process."""
        out = self._handle(frames, now_ns, now_s)
        self._want(now_s)  # a wait it began counts from now
        return out

    def _handle(self, frames: list[bytes], now_ns: float, now_s: float) -> list[Out]:
        self.rounds.now_s = now_s
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
            pong = m.Pong(
                seq=msg.seq, device=spec.name, num_qubits=spec.num_qubits, epoch_ns=self.epoch_ns
            )
            return [self._reply(peer, pong, now_ns)]
        if isinstance(msg, m.Entangle):
            lk = self.links.get(msg.peer)
            error = (
                f"{self.me} has no quantum link to {msg.peer!r}"
                if lk is None
                else check(msg, self.device)
            )
            if error is None and msg.key in self.rounds.active:
                error = f"round {msg.key!r} is already running"
            if error is not None or lk is None:
                return [self._reply(peer, _ent_error(msg, error or ""), now_ns)]
            self.jobs.append(Round(peer=peer, req=msg, link=lk))
            self._round_seqs[msg.seq] = None
            while len(self._round_seqs) > ROUND_SEQS_KEPT:
                self._round_seqs.popitem(last=False)
        else:
            self.jobs.append(_Batch(peer=peer, req=msg))
        return self._run(now_ns, now_s)

    def peer_message(
        self, data: bytes, now_ns: float, now_s: float, user: str | None = None
    ) -> list[Out]:
        """A message from another node's quantum process; ``user``: the node its CURVE
        key authenticated (None without keys)."""
        return self.peer_messages([data], now_ns, now_s, user)

    def peer_messages(
        self, frames: list[bytes], now_ns: float, now_s: float, user: str | None = None
    ) -> list[Out]:
        """Messages that came together from another node's quantum process (a bundle:
        sent together, in order), each as ``peer_message`` would take it alone, except
        that state groups that follow each other are all installed before the work
        waiting for them goes on: it then runs once, not once per group (a block
        measuring the kept halves of a round's pairs gets their groups in one bundle),
        and what it gives back goes together too."""
        out: list[Out] = []
        waiting = False  # groups came: the work waiting for them goes on
        for data in frames:
            try:
                msg = self._decode(data, now_s, user)
                if msg is None:
                    continue
                if isinstance(msg, m.QGroup):
                    self.rounds.now_s = now_s
                    self.live.heard(msg.frm, now_s)
                    waiting = self._install(msg, now_s) or waiting
                    continue
                if waiting:
                    waiting = False
                    out += self._run(now_ns, now_s)
                out += self._peer_message(msg, now_ns, now_s)
            except Exception:
                if self.fail_fast:
                    raise
                # A bug on one message must not throw away what the others gave (a
                # state group given away, a reply): they go out, this one is logged.
                self.internal_errors += 1
                n = self.internal_errors
                log.exception("internal error #%d on a quantum peer's message", n)
        if waiting:
            out += self._run(now_ns, now_s)
        self._want(now_s)  # a wait it began counts from now
        return out

    def _decode(self, data: bytes, now_s: float, user: str | None) -> m.QPeer | None:
        """A peer's message, if it is one and from whom it says (else None, counted)."""
        try:
            msg = self.peer_codec.decode(data)
        except ProtocolError as exc:
            self.bad.report(user or "a quantum process", str(exc), now=now_s)
            return None
        if user is not None and user != node_id(msg.frm):
            self.bad.report(user, f"claims to be {msg.frm!r}", now=now_s)
            return None
        return msg

    def _peer_message(self, msg: m.QPeer, now_ns: float, now_s: float) -> list[Out]:
        self.rounds.now_s = now_s
        if msg.frm not in self.links and not isinstance(msg, m.QPull | m.QGroup | m.QNotHere):
            self.bad.report(msg.frm, f"{type(msg).__name__}, but it has no link here", now=now_s)
            return []
        self.live.heard(msg.frm, now_s)
        if isinstance(msg, m.QAttempt):
            out, problem = self.rounds.peer_attempt(msg, now_ns)
            if problem is not None:
                self.bad.report(msg.frm, problem, now=now_s)
            return out + self._after_rounds(now_ns, now_s)
        if isinstance(msg, m.QRound):
            return self.rounds.station_result(msg, now_ns) + self._after_rounds(now_ns, now_s)
        if isinstance(msg, m.QPull):
            return self._pull(msg, now_s) + self._run(now_ns, now_s)
        if isinstance(msg, m.QGroup):
            return self._run(now_ns, now_s) if self._install(msg, now_s) else []
        if isinstance(msg, m.QPing):
            self.live.claim(msg.frm, msg.proc)
            if msg.ask:  # it waits on us: answer at once
                return [ToPeer(msg.frm, self._enc(m.QPing(frm=self.me, proc=self.proc)))]
            return []
        if msg.lost:
            return self._told_lost(msg, now_ns, now_s)
        self._asked.discard(msg.qubit)  # (a QNotHere) asked for again when needed
        if self.wait is not None and self.wait.qubit == msg.qubit:
            self.wait.retry_s = now_s + PULL_RETRY_S
        return []

    def timer(self, now_ns: float, now_s: float, judge: bool = True) -> list[Out]:
        """Timers; ``judge=False``: messages wait unread, so judge no silence now."""
        self.rounds.now_s = now_s
        out: list[Out] = []
        self._want(now_s)
        pings, gone = self.live.tick(now_s, judge)
        if pings:
            ping = self._enc(m.QPing(frm=self.me, proc=self.proc, ask=True))
            out += [ToPeer(p, ping) for p in pings]
        for peer in gone:
            out += self._peer_gone(peer, self.live.verdict(peer), now_ns, now_s)
        out += self.rounds.timer(now_ns, now_s) + self._after_rounds(now_ns, now_s)
        w = self.wait
        if w is not None:
            holder = self.groups.away.get(w.qubit[1])
            if now_s - w.since_s > w.limit_s == PULL_GIVE_UP_S and holder is not None:
                if self.live.alive(holder):  # slow, not gone: wait on, asking now and then
                    w.limit_s = self.live.hung_s
                    w.retry_s = min(w.retry_s, now_s)
            if now_s - w.since_s > w.limit_s:
                out += self._fail_job(
                    f"the state of qubit {w.qubit[1]} (held by {holder!r}) "
                    f"did not come back within {w.limit_s:g} s",
                    now_ns,
                )
                out += self._run(now_ns, now_s)
            elif now_s >= w.retry_s:
                w.retry_s = math.inf if w.limit_s == PULL_GIVE_UP_S else now_s + PULL_ASK_AGAIN_S
                out += self._ask(w.qubit)
        self._want(now_s)  # (rounds may have ended)
        return out

    def undelivered(self, node: str, data: bytes, now_ns: float, now_s: float) -> list[Out]:
        """Our message ``data`` to ``node``'s quantum process was dropped, never sent
        (its socket took nothing for a while). A state group in it is lost: ops on our
        qubits in it fail, saying so, and ``node`` is told which of its qubits are (at
        once, and again when it asks for them), so neither end waits in silence."""
        try:
            msg = self.peer_codec.decode(data)
        except ProtocolError:
            return []
        if not isinstance(msg, m.QGroup):
            return []
        theirs = f"the state group sent to {node!r} was dropped, never sent (it took no message)"
        theirs = theirs[: m.MAX_LOST_TEXT]
        ours = self.groups.undelivered(
            msg, node, f"{node!r}'s quantum process, which never got it: {theirs}", theirs
        )
        out: list[Out] = [
            ToPeer(node, self._enc(m.QNotHere(frm=self.me, qubit=gq, lost=theirs)))
            for gq in msg.qubits
            if gq[0] == node and gq in self.groups.dropped
        ]
        w = self.wait
        if w is not None and w.qubit[0] == self.me and w.qubit[1] in ours:
            q = w.qubit[1]
            out += self._fail_job(
                f"the state of qubit {q} is lost: held by {self.groups.lost[q]}", now_ns
            )
            out += self._run(now_ns, now_s)
        return out

    def _told_lost(self, msg: m.QNotHere, now_ns: float, now_s: float) -> list[Out]:
        """A qubit's group is lost where ``msg.frm`` holds or sent it (``msg.lost``).
        Along a chain the owner believes the group is with the node it last gave it to,
        which passed it on: each node trusts only the node it gave the group to, and
        says so to the owner, whose next ask then reaches a node that vouches."""
        node, q = msg.qubit
        if node != self.me:  # a group we passed on: tell its owner (we may be its holder)
            if not self.groups.passed_lost(msg.qubit, msg.frm, msg.lost):
                return []
            told = m.QNotHere(frm=self.me, qubit=msg.qubit, lost=msg.lost)
            return [ToPeer(node, self._enc(told))]
        holder = self.groups.away.get(q)
        if holder != msg.frm:
            w = self.wait
            if holder is not None and w is not None and w.qubit == msg.qubit:
                w.retry_s = min(w.retry_s, now_s)  # a hint only: ask the holder again now
            return []  # not ours, or not held there (it came back since): nothing lost
        self.groups.lose(q, f"{msg.frm!r}'s quantum process, which says: {msg.lost}")
        self._asked.discard(msg.qubit)
        w = self.wait
        if w is None or w.qubit != msg.qubit:
            return []
        why = self.groups.lost[q]
        out = self._fail_job(f"the state of qubit {q} is lost: held by {why}", now_ns)
        return out + self._run(now_ns, now_s)

    def disconnected(self, peer: str, now_ns: float, now_s: float) -> list[Out]:
        """Our connection to ``peer``'s quantum process closed: its process died."""
        self.rounds.now_s = now_s
        if peer not in self.live.last_heard or self.live.is_down(peer):
            return []
        self.live.down.add(peer)
        return self._peer_gone(peer, "ended (its connection closed)", now_ns, now_s)

    def _peer_gone(self, peer: str, what: str, now_ns: float, now_s: float) -> list[Out]:
        """``peer``'s quantum process went silent or died: stop waiting for its
        station, and the states it held for us are lost (ops on those qubits fail,
        saying so)."""
        why = f"{peer!r}'s quantum process, which {what}"
        log.warning("linked quantum process of %r %s", peer, what)
        out = self.rounds.peer_gone(peer, why, now_ns)
        self.groups.holder_gone(peer, why)
        self._asked = {gq for gq in self._asked if self.groups.away.get(gq[1]) != peer}
        w = self.wait
        if w is not None and w.qubit[0] == self.me and w.qubit[1] in self.groups.lost:
            out += self._fail_job(f"the state of qubit {w.qubit[1]} was held by {why}", now_ns)
        return out + self._after_rounds(now_ns, now_s)

    def _waited_on(self) -> set[str]:
        """The linked quantum processes whose silence matters now: those our rounds
        wait on (their station, or the other end of ours), and the holder of a state
        a job waits for."""
        peers = {r.link.other(self.me) for r in self.rounds.active.values()}
        peers.update(p for p, st in self.rounds.stations.items() if st.pending)
        w = self.wait
        holder = None if w is None else self.groups.away.get(w.qubit[1])
        if holder is not None:
            peers.add(holder)
        return peers

    def _want(self, now_s: float) -> None:
        """Ping and judge the peers waited on now, and those of a round that ended
        less than ``LINGER_S`` ago: the next round of a link in use may be held up by
        that very peer (its node waits on it before it asks for the round)."""
        if not (self.rounds.active or self.wait or self._in_use or self.live.wanted):
            if not any(st.pending for st in self.rounds.stations.values()):
                return  # nothing waited on, nor was: (every message of a block comes here)
        peers = self._waited_on()
        for p in peers:
            self._in_use[p] = now_s + LINGER_S
        for p, until in list(self._in_use.items()):
            if until > now_s:
                peers.add(p)
            else:
                del self._in_use[p]
        self.live.want(peers, now_s)

    def next_timer_s(self) -> float:
        """Wall time at which ``timer`` has something to do (inf: nothing pending)."""
        t = min(self.rounds.next_deadline(), self.live.next_deadline())
        if self.deferred_ns is not None:
            t = min(t, (self.epoch_ns + self.deferred_ns / self.cfg.speed) / 1e9)
        if self.wait is not None:
            t = min(t, self.wait.retry_s, self.wait.since_s + self.wait.limit_s)
        return t

    # -- running jobs --------------------------------------------------------------------
    def _reply(
        self, peer: bytes, msg: m.FromDevice, due_ns: float, tag: int | None = None
    ) -> ToKernel:
        return ToKernel([peer, self.enc.encode(msg)], due_ns, tag)

    def _reply_to(self, peer: bytes | None, msg: m.FromDevice, due_ns: float) -> list[Out]:
        """To ``peer``, or (None) to our classical process unasked, once it is known."""
        to = peer if peer is not None else self.kernel
        return [] if to is None else [self._reply(to, msg, due_ns)]

    def _abort(self, seq: int, now_ns: float, now_s: float) -> list[Out]:
        """The request ``seq`` was abandoned. An entanglement round ends now unless its
        attempts are decided already. A block's batch: drop the batch if it has
        not run yet, withdraw its reply, and (in real time) free the device now instead
        of when the batch would have ended. Its ops that already ran stay applied: they
        acted on the abandoned app's qubits, which its node frees."""
        if seq in self._round_seqs:
            rnd = next((j for j in self.jobs if isinstance(j, Round) and j.req.seq == seq), None)
            out = [] if rnd is None or rnd.done else self.rounds.abort(rnd, now_ns)
            return out + self._after_rounds(now_ns, now_s)
        for job in list(self.jobs):
            if isinstance(job, _Batch) and job.req.seq == seq:
                if job is self.jobs[0]:
                    self.wait = None
                self.jobs.remove(job)
        dev = self.device
        if self.realtime and self._last_batch == seq and dev.busy_until > now_ns:
            dev.busy_until = now_ns
            dev.touched = [min(t, now_ns) for t in dev.touched]
        return [Cancel(seq), *self._run(now_ns, now_s)]

    def _after_rounds(self, now_ns: float, now_s: float) -> list[Out]:
        """A round may have ended: drop finished rounds from the head, go on."""
        while self.jobs and isinstance(self.jobs[0], Round) and self.jobs[0].done:
            self.jobs.popleft()
        return self._run(now_ns, now_s)

    def _run(self, now_ns: float, now_s: float) -> list[Out]:
        """Advance the job at the head until it finishes or must wait; then the next."""
        out: list[Out] = []
        while self.jobs and self.wait is None:
            job = self.jobs[0]
            if isinstance(job, Round):
                if job.done:
                    self.jobs.popleft()
                    continue
                if job.started:
                    break  # waiting for the station
                ask = self._need(job.req.qubits, now_s)  # old states must be traced out here
                if ask is not None:
                    out += ask
                    break
                out += self.rounds.start(job, now_ns)
                continue
            # (1 us of slack: wall seconds as floats are that coarse)
            if self.realtime and job.ready is None and self.device.busy_until > now_ns + 1e3:
                self.deferred_ns = self.device.busy_until  # not before the device is free
                break
            self.deferred_ns = None
            sent, done = self._step_batch(job, now_ns, now_s)
            out += sent
            if not done:
                break  # waits for a group
        if self.wait is None and self.deferred:
            pulls, self.deferred = self.deferred, []
            for p in pulls:
                out += self._pull(p, now_s)
        return out

    def _need(self, qubits: Iterable[int], now_s: float) -> list[Out] | None:
        """If one of ``qubits`` has its group elsewhere, ask for it (unless it was
        asked for already and is on its way) and return what to send (the job
        waits); None if all are here."""
        for q in qubits:
            if q in self.groups.away:
                gq = (self.me, q)
                self.wait = _Wait(qubit=gq, since_s=now_s)
                if gq in self._asked:  # on its way: asked again only if it is late
                    self.wait.retry_s = now_s + PREFETCH_AGAIN_S
                    return []
                return self._ask(gq)
        return None

    def _prefetch(self, job: _Batch) -> list[Out]:
        """Ask at once for every other group the rest of ``job`` needs from elsewhere:
        they travel together, and the batch waits once, not once per group (a block
        measuring the kept halves of a round's pairs needs one per pair)."""
        out: list[Out] = []
        away = self.groups.away
        for op in job.req.ops[job.i + 1 : job.i + 1 + PREFETCH_OPS]:
            for q in self._touches(op):
                gq = (self.me, q)
                if q in away and gq not in self._asked and self.wait is not None:
                    if gq != self.wait.qubit:
                        self._asked.add(gq)
                        out += self._ask(gq)
        return out

    def _ask(self, gq: m.GlobalQubit) -> list[Out]:
        holder = self.groups.away.get(gq[1])
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
        dev, groups, lost_states = self.device, self.groups, self.groups.lost
        if job.ready is None:
            job.ready = max(now_ns, dev.busy_until)
        elif job.paused is not None:
            job.waited += max(0.0, now_ns - job.paused)
            job.paused = None
        # Every state here is our own and whole (nothing away, lost or held for another
        # node): no op of the batch can need, lose or send a group, so skip the checks.
        local = not (groups.away or lost_states or groups.ghosts)
        sent: list[Out] = []
        partners: list[int] = []
        while job.i < len(job.req.ops):
            op = job.req.ops[job.i]
            if not local:
                touched = self._touches(op)
                lost = [q for q in touched if q in lost_states]
                if lost and op.op in ("init", "discard"):
                    for q in lost:  # it starts over: what was lost no longer matters
                        del lost_states[q]
                elif lost:
                    error = f"the state of qubit {lost[0]} is lost: held by {lost_states[lost[0]]}"
                    return sent + self._end_batch(job, now_ns, error), True
                ask = self._need(touched, now_s)
                if ask is not None:
                    job.paused = now_ns
                    return sent + ask + self._prefetch(job), False
                partners = groups.partners(touched)
            try:  # after a wait, where it would have been: the wait was the simulator's
                outcome, end = dev.execute(op, job.end if job.i else job.ready)
            except DeviceError as exc:
                return sent + self._end_batch(job, now_ns, str(exc)), True
            self._last_batch = job.req.seq
            if job.start is None:
                job.start = end - dev.spec.op_spec(op).duration_ns
            job.end = end
            job.outcomes.append(outcome)
            if op.op in ("peek", "peek_group") and dev.peeked is not None:
                rho = dev.peeked.reshape(-1)
                job.states.append([float(x) for z in rho for x in (z.real, z.imag)])
            job.i += 1
            for slot, home in groups.homeless(partners):
                sent.append(ToPeer(home, self._enc(groups.give(slot, home))))
        return sent + self._end_batch(job, now_ns, None), True

    def _end_batch(self, job: _Batch, now_ns: float, error: str | None) -> list[Out]:
        self.jobs.popleft()
        start = job.start if job.start is not None else max(now_ns, self.device.busy_until)
        end = job.end if job.i else start
        if self.timeline is not None:
            kinds = Counter(op.op for op in job.req.ops[: job.i])
            self.timeline.batch(job.req.seq, start, end, kinds, transfer_ns=job.waited)
        reply = m.DeviceReply(
            seq=job.req.seq,
            outcomes=job.outcomes,
            states=job.states,
            error=error,
            now_ns=int(end),
            start_ns=int(start),
        )
        return [self._reply(job.peer, reply, end, job.req.seq)]

    def _fail_job(self, error: str, now_ns: float) -> list[Out]:
        self.wait = None
        job = self.jobs[0]
        if isinstance(job, Round):
            self.jobs.popleft()
            return [self._reply(job.peer, _ent_error(job.req, error), now_ns)]
        return self._end_batch(job, max(now_ns, job.end), error)

    # -- groups across processes ---------------------------------------------------------
    def _pull(self, msg: m.QPull, now_s: float) -> list[Out]:
        """A node asks for the group holding its qubit ``msg.qubit``. Only its own: the
        group goes to the owner of that qubit (a member of the group), never to a node
        with no qubit in it (it could read or replace another node's state)."""
        gq = msg.qubit
        if gq[0] != msg.for_node:
            self.bad.report(
                msg.frm, f"asked for {gq[0]}'s qubit {gq[1]} for {msg.for_node}", now=now_s
            )
            return []
        slot = self.groups.slot_here(gq)
        if slot is None and gq in self.groups.dropped:  # lost here: say so to the asker
            # (the owner, or the node that passed the pull on, which tells the owner)
            lost = m.QNotHere(frm=self.me, qubit=gq, lost=self.groups.dropped[gq])
            return [ToPeer(msg.frm, self._enc(lost))]
        if slot is None:
            where = self.groups.sent_to.get(gq)
            if where == msg.frm == msg.for_node:
                # it went to the asker before this answer would (one ordered channel to
                # each peer): the ask crossed it, nothing to say (a chain's repeater
                # asks for its half that its neighbour, done swapping, just sent it)
                return []
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
        return [ToPeer(msg.for_node, self._enc(self.groups.give(slot, msg.for_node)))]

    def _install(self, msg: m.QGroup, now_s: float) -> bool:
        """Take in a group that came (False: it was bad, dropped and counted)."""
        self._asked.difference_update(msg.qubits)
        problem = self.groups.arrive(msg)
        if problem is not None:
            self.bad.report(msg.frm, f"dropped a state group: {problem}", now=now_s)
            return False
        if self.wait is not None and self.groups.slot_here(self.wait.qubit) is not None:
            self.wait = None
        return True

    def _enc(self, msg: m.QPeer) -> bytes:
        return self.peer_codec.encode(msg)


def _ent_error(req: m.Entangle, error: str) -> m.EntangleDone:
    return m.EntangleDone(seq=req.seq, key=req.key, error=error)
