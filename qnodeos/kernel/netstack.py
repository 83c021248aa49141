"""The node's network stack, sans-IO: apps' EPR requests, one link-layer EGP per quantum
link, and the device work entanglement needs.

How it works. An app's ``EprRequest`` with role "create" becomes an EGP ``Create`` on
the link to the remote node; role "recv" tells that EGP the app waits for the peer's
request (``listen``). Both apps name each other, so both ends derive the same
*purpose* (the EPR socket) from the two (node, app) names.

The EGP asks for attempt rounds; each waits in ``work`` until the kernel lends the
device (between blocks: a block runs without interleaving). A round needs a free
communication qubit for the app: a K pair goes into the app's qubit ``qubits[i]``, an M
pair into a scratch qubit freed after measuring. If none is free but one is held (NV:
the electron), the node first moves that state into a free storage qubit (carbon),
remapping its owner's qubit id, with the move's time and noise; if that is impossible
too, the round waits, and the request ends with NORES at its deadline.

What happens right after a herald travels with the round (``Entangle.after``, lowered
to native gates here, run by the quantum process at once): for M, each end measures its
half in the basis the EGP drew for that pair, and the qubit is freed; for K, the link's
first node (which holds the pair's state) applies the Pauli that turns the heralded Bell
state into Phi+. For M that Pauli is applied to the outcome instead: the first node
flips it where the Pauli anticommutes with the basis.
"""

from __future__ import annotations

import logging
import math
from collections import OrderedDict, deque
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from functools import partial

import msgspec
import numpy as np

from qnodeos.netlink import egp as e
from qnodeos.netlink.schedule import lead_ns
from qnodeos.netlink.station import Herald, RoundEnd

from ..config.network import LinkConfig
from ..errors import ProgramError, QuotaError
from ..lang import messages as m
from ..runtime.timeline import Recorder
from .ledger import Ledger
from .lower import Lowering
from .memory import MemoryManager
from .moves import make_room
from .outputs import Out, ToApp, ToDevice, ToNode
from .processes import App
from .recipes import FLIPS, make_recipes

log = logging.getLogger("qnodeos.netstack")

SCRATCH = -1  # virtual id of the qubit M pairs are made in (measured and reused)
K_ROUND = 64  # kept pairs per round at most (one recipe, a correction, per pair's qubit)
_NO_STATE = np.zeros((4, 4), dtype=complex)
GONE_KEPT = 256  # apps that left, remembered to refuse requests for them soon
GONE_GRACE_S = 1.0  # a request for an app that left waits this long for one of its name


def purpose(a: tuple[str, str], b: tuple[str, str]) -> str:
    """The EPR socket both ends agree on, from their (node, app) names."""
    x, y = sorted([a, b])
    return f"{x[0]}/{x[1]}|{y[0]}/{y[1]}"


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


class NetStack:
    def __init__(
        self,
        *,
        node: str,
        links: Collection[LinkConfig],
        speed: float,
        memory: MemoryManager,
        lowering: Lowering,
        seed: int | None = None,
    ) -> None:
        self.node = node
        self.memory = memory
        self.lowering = lowering
        self.links = {lk.other(node): lk for lk in links if node in lk.nodes}
        rng = np.random.default_rng(seed)
        self.egps = {
            peer: e.EGP(
                node=node,
                peer=peer,
                model=lk.model,
                rng=np.random.default_rng(rng.integers(2**63)),
                speed=speed,
                schedule=lk.schedule.describe() if lk.schedule else "",
            )
            for peer, lk in self.links.items()
        }
        self.wants: dict[tuple[str, int], Want] = {}  # by EGP request key
        self.listening: dict[str, Want] = {}  # recv wants not yet matched, by purpose
        self.work: deque[Work] = deque()  # device work, in order
        self.held_until_ns = math.inf  # rounds held for their time bin: the first may go then
        self.timeline: Recorder | None = None  # the kernel's, when a timeline is recorded
        # each link's time bins in our device's time (see align_bins)
        self.bins = {p: lk.schedule for p, lk in self.links.items() if lk.schedule}
        self._outcomes: dict[int, list[int]] = {}  # herald seq -> outcomes of its recipe
        self.ignored = 0  # link-layer messages from nodes we have no link with
        self.gone_apps: OrderedDict[str, str] = OrderedDict()  # app name -> why it left
        # requests held for an app that left, refused unless one of its name comes back
        self.refuse_at: dict[tuple[str, tuple[str, int]], float] = {}
        self.ledger = Ledger(node)
        # where pairs of a block's request go (the kernel hands them to the block)
        self.to_block: Callable[[Want, m.NodeToApp], list[Out]] = lambda w, msg: []
        self.down: dict[str, str] = {}  # peers whose node is not answering -> why
        self.pairs_delivered = 0
        self.rounds = 0
        self.moves = 0

    # -- from apps -----------------------------------------------------------------------
    def request(self, app: App, msg: m.EprRequest, now: float, index: int = -1) -> list[Out]:
        """App ``app`` asks for pairs (``index`` >= 0: from inside its block, which gets
        them through ``to_block``)."""
        pur = purpose((self.node, app.name), (msg.remote_node, msg.remote_app))
        want = Want(app=app, msg=msg, peer=msg.remote_node, purpose=pur, index=index)
        log.info(
            "app %r asks for %d %s pair(s) (%s) with %r on %r%s", app.name, msg.number, msg.kind,
            msg.role, msg.remote_app, msg.remote_node, " in a block" if index >= 0 else "",
        )  # fmt: skip

        def fail(code: str, text: str) -> list[Out]:
            return self._tell(want, m.EprFailed(req=msg.req, code=code, message=text))

        if msg.remote_node not in self.links:
            have = ", ".join(sorted(self.links)) or "none"
            return fail(
                "UNSUPP",
                f"node {self.node!r} has no quantum link to {msg.remote_node!r} (links to: {have})",
            )
        if msg.role not in ("create", "recv"):
            return fail("OTHER", f"role {msg.role!r}; use 'create' or 'recv'")
        if msg.remote_node in self.down:  # not its maximum time later: now
            return fail("OTHER", f"{self.down[msg.remote_node]}; ask again once it is back")
        problem = e.request_problem(msg.kind, msg.number, msg.bases)
        if msg.role == "create":
            problem = problem or e.remote_problem(
                msg.kind, msg.number, msg.remote_chosen, msg.remote_rotations
            )
        elif msg.remote_chosen or msg.remote_rotations:
            problem = "only the creator chooses the receiver's bases"
        if msg.peer_bases and (msg.kind != "M" or msg.role != "recv" or msg.chosen):
            problem = problem or "peer_bases: only a receiver of M pairs with no bases of its own"
        if problem is not None:
            return fail("UNSUPP", problem)
        if not msg.timeout_s > 0 or math.isnan(msg.timeout_s):
            return fail("NOTIME", f"timeout {msg.timeout_s} s must be > 0")
        held = self.memory.held(app.app_id)
        quota = self.memory.quota.get(app.app_id, 0)
        if not msg.measures():
            n = 1 if msg.sequential else msg.number
            if len(msg.qubits) != n or len(set(msg.qubits)) != n:
                got = msg.qubits[:8]
                return fail("OTHER", f"keeping pairs needs {n} distinct qubit id(s), got {got}")
            taken = [q for q in msg.qubits if q in held or q < 0]
            if taken:
                return fail("OTHER", f"qubit ids {taken} are in use or invalid")
            if len(held) + n > quota:
                return fail(
                    "NORES",
                    f"{n} kept pair(s) at a time need {n} qubit(s); the app's quota "
                    f"is {quota} and it holds {len(held)}",
                )
        else:
            if msg.chosen and (len(msg.chosen) != msg.number or set(msg.chosen) - set("XYZ")):
                return fail("OTHER", f"chosen bases must be {msg.number} letters from X, Y, Z")
            if msg.rotations and len(msg.rotations) not in (1, msg.number):
                return fail("OTHER", f"give 1 or {msg.number} rotations, not {len(msg.rotations)}")
            if len(held) >= quota:
                return fail("NORES", f"measuring pairs needs one free qubit of the quota ({quota})")
        want.deadline = now + msg.timeout_s
        egp = self.egps[msg.remote_node]
        if msg.role == "recv":
            if pur in self.listening:
                return fail("OTHER", f"this app already waits for pairs on {pur}")
            self.listening[pur] = want
            return self._egp(msg.remote_node, egp.listen(pur, msg.kind, msg.number, now), now)
        create = e.Create(
            remote=msg.remote_node,
            purpose=pur,
            type=msg.kind,
            number=msg.number,
            min_fidelity=msg.min_fidelity,
            max_time_s=msg.timeout_s,
            bases=msg.bases,
            remote_chosen=msg.remote_chosen,
            remote_rotations=list(msg.remote_rotations),
        )
        cid, outs = egp.create(create, now)
        want.key = (self.node, cid)
        self.wants[want.key] = want
        return self._egp(msg.remote_node, outs, now)

    def app_gone(self, app: App, now: float, reason: str = "it ended") -> list[Out]:
        """The app ended: every pair it did not acknowledge is void, so the other ends
        expire it (told before its requests are aborted, so their apps are not handed
        them); its requests end (its qubits are freed by the kernel), and requests from
        other nodes waiting for it are refused now, not at their deadline."""
        why = f"app {app.name!r} on {self.node!r} ended: {reason}"
        self.gone_apps[app.name] = why
        while len(self.gone_apps) > GONE_KEPT:
            self.gone_apps.popitem(last=False)
        out: list[Out] = []
        for peer, egp in self.egps.items():
            for key, req in list(egp.waiting.items()):
                if local_app(req.purpose, self.node) == app.name:
                    del egp.waiting[key]
                    out.append(self._refuse(peer, req, why))
        reason = f"app {app.name!r} on {self.node!r} ended before it received them"
        void, told = self.ledger.app_gone(app.app_id, reason)
        for w in self.wants.values():
            if w.app is app and w.pairs:
                void.setdefault(w.peer, []).extend(p.ent_id[2] for p in w.pairs)
                w.pairs = []
        out += [self._expire_at(peer, seqs, reason) for peer, seqs in void.items()]
        for pur, w in list(self.listening.items()):
            if w.app is app:
                del self.listening[pur]
                self.egps[w.peer].unlisten(pur)
        for key, w in list(self.wants.items()):
            if w.app is app:
                out += self._egp(
                    w.peer, self.egps[w.peer].abort(key, e.Code.OTHER, "app ended", now), now
                )
        return [o for o in out if not (isinstance(o, ToApp) and o.addr == app.addr)] + told

    def registered(self, app: App) -> None:
        self.gone_apps.pop(app.name, None)

    def _refuse(self, peer: str, req: m.EgpRequest, why: str) -> ToNode:
        no = m.EgpReject(origin=req.origin, create_id=req.create_id, code="REJECTED", message=why)
        return ToNode(peer, m.Egp(from_node=self.node, msg=no))

    def acked(self, app: App, msg: m.EprAck) -> list[Out]:
        """The app received pairs: the other end may keep its copies for good."""
        return self.ledger.acked(app.app_id, msg.req, msg.count)

    def _expire_at(self, peer: str, seqs: list[int], reason: str) -> ToNode:
        self.ledger.expired_out += len(seqs)
        return ToNode(peer, m.Egp(from_node=self.node, msg=m.EgpExpire(seqs=seqs, reason=reason)))

    def late_herald(self, msg: m.LateHerald) -> list[Out]:
        """Our quantum process got heralds after it had stopped waiting: the pairs are
        void here; the other end must not keep them."""
        if msg.peer not in self.links or not msg.heralds:
            return []
        why = "they heralded after this end gave up"
        return [self._expire_at(msg.peer, list(msg.heralds), why)]

    def peer_down(self, peer: str, reason: str, now: float) -> list[Out]:
        """``peer``'s node stopped answering: its requests end here, and pairs made with
        it that its apps did not confirm are void here. It is told too: if it was only
        paused, it reads this when it resumes and voids them as well."""
        if peer not in self.egps or peer in self.down:
            return []
        self.down[peer] = reason
        egp = self.egps[peer]
        out: list[Out] = []
        void: list[int] = []
        for key, w in list(self.wants.items()):
            if w.peer == peer:
                void += [p.ent_id[2] for p in w.pairs]
                self._void_pairs(w)
                out += self._egp(peer, egp.abort(key, e.Code.OTHER, reason, now), now)
        for pur, w in list(self.listening.items()):
            if w.peer == peer:
                del self.listening[pur]
                egp.unlisten(pur)
                failed = m.EprFailed(req=w.msg.req, code="OTHER", message=reason)
                out.append(ToApp(w.app.addr, failed))
        egp.waiting.clear()
        told, voided = self.ledger.peer_down(peer, f"pairs void: {reason}")
        void += voided
        if void:
            out.insert(0, self._expire_at(peer, void, f"{self.node!r} lost contact: {reason}"))
        return out + told

    def peer_up(self, peer: str) -> None:
        self.down.pop(peer, None)

    def _void_pairs(self, w: Want) -> None:
        """Forget the pairs a request made but did not hand out (kept qubits freed)."""
        for p in w.pairs:
            if p.qubit >= 0:
                self._free(w, p.qubit)
        w.pairs = []

    def _free(self, w: Want, virt: int) -> None:
        if virt in self.memory.held(w.app.app_id):
            self.memory.release(w.app.app_id, virt)

    def _end_round(self, w: Want) -> None:
        """The round is over: free what it allocated and got no pair (the scratch qubit
        of measured pairs, kept-pair qubits left empty)."""
        for virt in w.round_virt:
            if virt not in w.kept:
                self._free(w, virt)
        # ``kept`` is per round: a sequential request keeps every pair in one qubit, so
        # a qubit that got a pair in an earlier round may be this round's, left empty
        w.round_virt, w.round_phys, w.round_seq, w.kept = [], [], -1, set()

    def peer_message(self, msg: m.Egp, now: float) -> list[Out]:
        peer = msg.from_node
        egp = self.egps.get(peer)
        if egp is None:
            self.ignored += 1
            return []
        body = msg.msg
        if isinstance(body, m.EgpConfirm):
            return self.ledger.confirmed(peer, body.seqs)
        if isinstance(body, m.EgpExpire):
            return self._peer_expired(peer, body.seqs, body.reason, now)
        if isinstance(body, m.EgpRequest):
            if local_app(body.purpose, self.node) in self.gone_apps:
                # For an app that was here and left: refused soon (not at its deadline),
                # unless an app of that name comes back first (a restart).
                self.refuse_at[(peer, (body.origin, body.create_id))] = now + GONE_GRACE_S
        return self._egp(peer, egp.peer_message(body, now), now)

    def _peer_expired(self, peer: str, seqs: list[int], reason: str, now: float) -> list[Out]:
        """The other end voided these pairs: apps that have them are told; a request
        still collecting them ends with EXPIRE (listing only the pairs still good)."""
        text = f"{peer!r} voided the pair(s): {reason}"
        out, missing = self.ledger.expired(peer, seqs, text)
        gone = set(missing)
        for key, w in list(self.wants.items()):
            hit = [p for p in w.pairs if w.peer == peer and p.ent_id[2] in gone]
            if not hit:
                continue
            gone -= {p.ent_id[2] for p in hit}
            for p in hit:
                if p.qubit >= 0:
                    self._free(w, p.qubit)
            w.pairs = [p for p in w.pairs if p not in hit]
            out += self._egp(peer, self.egps[peer].abort(key, e.Code.EXPIRE, text, now), now)
        if gone:  # not heralded here yet: never hand them out
            self.ledger.remember_expired(peer, sorted(gone), text)
        return out

    def handle_timer(self, now: float) -> list[Out]:
        out: list[Out] = []
        for (peer, key), when in list(self.refuse_at.items()):
            req = self.egps[peer].waiting.get(key)
            if req is None or now < when:
                if req is None:
                    del self.refuse_at[(peer, key)]  # it went ahead, or ended
                continue
            del self.refuse_at[(peer, key)]
            why = self.gone_apps.get(local_app(req.purpose, self.node) or "")
            if why is not None:
                del self.egps[peer].waiting[key]
                out.append(self._refuse(peer, req, why))
        for peer, egp in self.egps.items():
            out += self._egp(peer, egp.handle_timer(now), now)
        for pur, w in list(self.listening.items()):
            if now >= w.deadline:
                del self.listening[pur]
                self.egps[w.peer].unlisten(pur)
                out.append(
                    ToApp(
                        w.app.addr,
                        m.EprFailed(
                            req=w.msg.req,
                            code="TIMEOUT",
                            message=f"no request from {w.msg.remote_app!r} on "
                            f"{w.peer!r} within {w.msg.timeout_s} s",
                        ),
                    )
                )
        return out

    # -- EGP outputs ---------------------------------------------------------------------
    def _egp(self, peer: str, outs: list[e.Out], now: float) -> list[Out]:
        out: list[Out] = []
        for o in outs:
            if isinstance(o, e.ToPeer):
                out.append(ToNode(peer, m.Egp(from_node=self.node, msg=o.msg)))
            elif isinstance(o, e.Round):
                done = partial(self._round_done, key=o.key, peer=peer)
                self.work.append(Work(request=None, done=done, round=o, peer=peer))
            elif isinstance(o.event, e.Accepted):
                spec = o.event.spec
                w = self.listening.pop(spec.purpose, None)
                if w is not None:
                    if w.msg.peer_bases:  # measure where the creator asks (else in Z)
                        w.msg = msgspec.structs.replace(
                            w.msg, chosen=spec.remote_chosen, rotations=spec.remote_rotations
                        )
                    if spec.kind == "R" and w.msg.kind == "K":  # a keeping receiver of R
                        w.msg = msgspec.structs.replace(w.msg, kind="R")
                    w.key = (spec.origin, spec.create_id)
                    self.wants[w.key] = w
            elif isinstance(o.event, e.Ok):
                out += self._ok(o.event, now)
            else:
                out += self._err(o.event)
        return out

    def _err(self, err: e.Err) -> list[Out]:
        w = self.wants.pop((err.origin, err.create_id), None)
        if w is None:
            return []
        out: list[Out] = []
        if w.round_seq >= 0:
            # Its round is still on the device: stop it there (the device answers with
            # the round's end, and pairs it made after all are expired at both ends).
            out.append(ToDevice(m.Abort(seq=w.round_seq)))
        self._end_round(w)
        rest = self._hand_out(w)  # the app has the others already
        log.info("EPR request of %r failed (%s): %s", w.app.name, err.code, err.message)
        msg = m.EprFailed(req=w.msg.req, code=str(err.code), message=err.message, pairs=rest)
        return out + self._tell(w, msg)

    def _tell(self, w: Want, msg: m.EprPairs | m.EprDone | m.EprFailed) -> list[Out]:
        """News of request ``w`` for its app, or for its block."""
        if w.index >= 0:
            return self.to_block(w, msg)
        return [ToApp(w.app.addr, msg)]

    def end_block(
        self, app: App, reqs: dict[int, int], ok: bool, reason: str, now: float
    ) -> list[Out]:
        """The app's block ended; ``reqs``: its requests (req -> pairs it took). Done
        (``ok``): the pairs it took are the app's, confirmed to the other ends. Failed:
        they are void at both ends. Either way its requests still under way end, and
        their pairs it never took are void at both ends."""
        out: list[Out] = []
        for req, took in reqs.items():
            if ok:
                out += self.ledger.acked(app.app_id, req, took)
            else:
                for peer, seqs in self.ledger.dropped(app.app_id, req).items():
                    out.append(self._expire_at(peer, seqs, f"the block that took them {reason}"))
        for key, w in list(self.wants.items()):
            if w.app is app and w.index >= 0:
                self._void_pairs(w)
                ends = self.egps[w.peer].abort(key, e.Code.OTHER, reason, now)
                out += self._egp(w.peer, ends, now)
        for pur, w in list(self.listening.items()):
            if w.app is app and w.index >= 0:
                del self.listening[pur]
                self.egps[w.peer].unlisten(pur)
        return out

    # -- device work ---------------------------------------------------------------------
    def next_work(
        self, seq: int, now: float, device_ns: float | None = None
    ) -> Work | None:
        """The next thing for the device (``seq`` numbers its request), or None. A Work
        whose ``request`` is None needs no device: call its ``done`` at once. With
        ``device_ns`` (blocks are waiting; the device's time now), a round on a link
        whose time bin has not begun waits (the device is free meanwhile, for blocks)
        until ``lead_ns`` before the bin (the station holds it from there to the bin);
        ``held_until_ns`` is then the earliest device time one of them may go."""
        self.held_until_ns = math.inf
        for _ in range(len(self.work)):
            w = self.work.popleft()
            if w.round is None:
                return w
            sched = self.bins.get(w.peer)
            room = self.links[w.peer].model.cycle_ns  # less than one attempt left: over
            if device_ns is not None and sched:
                go = sched.window(device_ns, room)[0] - lead_ns(self.egps[w.peer].speed)
                if go > device_ns + 1000:  # 1 us: wall seconds as floats are that coarse
                    self.held_until_ns = min(self.held_until_ns, go)
                    self.work.append(w)
                    continue
            status = self._start_round(w, seq, now)
            if status == "go":
                return w
            if status == "wait":
                self.work.append(w)  # waits for a qubit; others may go first
            elif isinstance(status, Work):
                self.work.appendleft(w)  # after the move that makes room for it
                return status
        return None

    def align_bins(self, epoch_ns: int, speed: float) -> None:
        """Our device's time 0 was wall time ``epoch_ns``: count the links' time bins
        in its time as the stations do in theirs (``TimeBins.aligned``)."""
        self.bins = {
            p: lk.schedule.aligned(epoch_ns, speed)
            for p, lk in self.links.items()
            if lk.schedule
        }

    def waiting(self) -> bool:
        return bool(self.work)

    def _start_round(self, w: Work, seq: int, now: float) -> str | Work:
        """'go' (w.request set, or w.done to call), 'wait', 'drop', or a Work to run
        first (a move that frees a communication qubit)."""
        r = w.round
        assert r is not None
        want = self.wants.get(r.request)
        egp = self.egps[w.peer]
        if want is None or r.key not in egp.by_round:
            return "drop"  # the request ended meanwhile
        if not want.round_phys:
            # K: a communication qubit per pair (as many as are free, up to the round's
            # pairs); M: one scratch qubit, measured and reused for every pair.
            wanted = want.msg.qubits[r.pair : r.pair + min(r.pairs, K_ROUND)]
            if want.msg.sequential:
                wanted = want.msg.qubits[:1]
                if wanted[0] in self.memory.held(want.app.app_id):
                    # the block has not freed the previous pair's qubit yet
                    if now >= r.expires_s:
                        self._abort_later(w, e.Code.NORES, f"Q{wanted[0]} was never freed")
                        return "go"
                    return "wait"
            virts = [SCRATCH] if want.msg.measures() else wanted
            try:
                for virt in virts:
                    phys = self.memory.alloc_comm(want.app.app_id, virt)
                    if phys is None:
                        break
                    want.round_virt.append(virt)
                    want.round_phys.append(phys)
            except (ProgramError, QuotaError) as exc:
                self._end_round(want)
                self._abort_later(w, e.Code.NORES, str(exc))
                return "go"
            if not want.round_phys:
                move = self._make_room()
                if move is not None:
                    return move
                if now >= r.expires_s:
                    self._abort_later(w, e.Code.NORES, "no free communication qubit")
                    return "go"
                return "wait"
        self.rounds += 1
        owner = self.links[w.peer].nodes[0] == self.node
        pairs = r.pairs if want.msg.measures() else len(want.round_phys)
        recipes, plan = make_recipes(self.lowering, want.msg, r, want.round_phys, pairs, owner)
        want.round_seq = seq
        w.request = m.Entangle(
            seq=seq,
            peer=w.peer,
            key=r.key,
            qubits=want.round_phys,
            max_attempts=r.max_attempts,
            expires_s=r.expires_s,
            pairs=pairs,
            recipes=recipes,
            plan=plan,
            peer_measures=want.msg.kind == "R" and not want.msg.measures(),
        )
        return "go"

    def _abort_later(self, w: Work, code: e.Code, text: str) -> None:
        """The round cannot run: end its request at this end (nothing for the device)."""
        r = w.round
        assert r is not None
        w.request = None

        def done(_reply: m.DeviceReply | m.EntangleDone | None, now: float) -> list[Out]:
            return self._egp(w.peer, self.egps[w.peer].abort(r.request, code, text, now), now)

        w.done = done

    def _make_room(self) -> Work | None:
        """Move a held communication qubit's state into a free storage qubit, if the
        device can (NV: electron -> carbon); the work that does it, or None."""
        ops = make_room(self.memory, self.lowering, lambda k: k.communication)
        if ops is None:
            return None
        self.moves += 1
        return Work(request=m.DeviceRequest(seq=0, ops=ops), done=_log_error)

    def _round_done(
        self, reply: m.DeviceReply | m.EntangleDone | None, now: float, *, key: str, peer: str
    ) -> list[Out]:
        """Pairs of round ``key`` on the link to ``peer``, and (if final) how it ended."""
        egp = self.egps[peer]
        r = egp.by_round.get(key)
        want = self.wants.get(r.key) if r is not None else None
        if not isinstance(reply, m.EntangleDone) or reply.error is not None:
            error = getattr(reply, "error", None) or "the device did not run the round"
            log.warning("entanglement round %s failed on the device: %s", key, error)
            if r is None:
                return []
            if want is not None:
                self._end_round(want)
            return self._egp(peer, egp.abort(r.key, e.Code.OTHER, error, now), now)
        if r is None:
            # its request ended while the round ran: its pairs are void at both ends
            seqs = [p.seq for p in reply.pairs]
            return [self._expire_at(peer, seqs, "its request ended meanwhile")] if seqs else []
        for p in reply.pairs:
            self._outcomes[p.seq] = p.outcomes
        msg = RoundEnd(
            key=reply.key,
            heralds=tuple(
                Herald(
                    seq=p.seq,
                    attempts=p.attempts,
                    at_ns=p.at_ns,
                    bell_index=p.bell_index,
                    rho=_NO_STATE,  # the state is in the quantum process
                )
                for p in reply.pairs
            ),
            attempts=reply.attempts,
            at_ns=reply.at_ns,
            reason=reply.reason,
            again=reply.again,
        )
        if want is not None and reply.final:
            want.round_seq = -1  # the device is done with it: nothing to abort
        out = self._egp(peer, egp.station_message(msg, now, final=reply.final), now)
        if want is not None:
            if reply.final:
                self._end_round(want)
            out += self._stream(want)
        return out

    def _stream(self, w: Want) -> list[Out]:
        """Hand the app the pairs made since the last time (its request goes on)."""
        if w.key not in self.wants or not w.pairs:
            return []
        return self._tell(w, m.EprPairs(req=w.msg.req, pairs=self._hand_out(w)))

    def _hand_out(self, w: Want) -> list[m.EprPair]:
        """The pairs made since the app last got some: the ledger tracks them now."""
        fresh, w.pairs = w.pairs, []
        self.ledger.delivered(w.app.app_id, w.app.addr, w.msg.req, w.peer, fresh)
        if self.timeline is not None:
            for p in fresh:
                self.timeline.add(
                    kind="pair", app=w.app.name, peer=w.peer, id=p.ent_id[2], bell=p.bell_index,
                    goodness=p.goodness, attempts=p.attempts, herald_ns=p.at_ns,
                    kept=p.qubit >= 0, basis=p.basis, outcome=p.outcome,
                )  # fmt: skip
        self.pairs_delivered += len(fresh)
        return fresh

    def _ok(self, ok: e.Ok, now: float) -> list[Out]:
        """A pair is here (already corrected or measured by the quantum process)."""
        w = self.wants.get((ok.origin, ok.create_id))
        seq = ok.ent_id[2]
        outcomes = self._outcomes.pop(seq, [])
        peer = ok.ent_id[1] if ok.ent_id[0] == self.node else ok.ent_id[0]
        if w is None or not w.round_phys:
            # Nobody here can have this pair (its request or app ended meanwhile).
            return [self._expire_at(peer, [seq], "it heralded after its request ended here")]
        voided = self.ledger.void_early(peer, seq)
        if voided is not None:
            self._end_round(w)
            outs = self.egps[peer].abort((ok.origin, ok.create_id), e.Code.EXPIRE, voided, now)
            return self._egp(peer, outs, now)
        pair = m.EprPair(
            ent_id=ok.ent_id,
            bell_index=ok.bell_index,
            goodness=ok.goodness,
            attempts=ok.attempts,
            at_ns=int(ok.at_ns),
        )
        if not w.msg.measures():
            virt = w.keeps(ok.pair)
            w.kept.add(virt)
            pair = _with(pair, qubit=virt)
        elif w.msg.rotations:  # corrected to Phi+ before the rotations, at the first node
            pair = _with(pair, basis="R", outcome=outcomes[-1] if outcomes else -1)
        else:
            basis = w.msg.chosen[ok.pair] if w.msg.chosen else ok.basis
            owner = self.links[w.peer].nodes[0] == self.node
            flip = owner and ok.bell_index in FLIPS[basis]
            pair = _with(pair, basis=basis, outcome=outcomes[-1] ^ int(flip) if outcomes else -1)
        w.pairs.append(pair)
        w.made += 1
        return self._delivered(w) if w.made == w.msg.number else []

    def _delivered(self, w: Want) -> list[Out]:
        log.info("%d pair(s) for %r with %r delivered", w.made, w.app.name, w.peer)
        if w.key is not None:
            self.wants.pop(w.key, None)
        self._end_round(w)
        return self._tell(w, m.EprDone(req=w.msg.req, pairs=self._hand_out(w)))


def _log_error(reply: m.DeviceReply | m.EntangleDone | None, _now: float) -> list[Out]:
    if isinstance(reply, m.DeviceReply) and reply.error:
        log.warning("moving a qubit's state failed: %s", reply.error)
    return []


def _with(pair: m.EprPair, **changes: int | str) -> m.EprPair:
    import msgspec

    return msgspec.structs.replace(pair, **changes)
