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

import numpy as np

from netlink import egp as e
from netlink.station import Heralded, NoHerald, Rejected

from ..config import LinkConfig
from ..errors import ProgramError, QuotaError
from ..lang import messages as m
from .ledger import Ledger
from .lower import Lowering
from .memory import MemoryManager
from .moves import make_room
from .outputs import Out, ToApp, ToNode
from .processes import App

log = logging.getLogger("qnodeos.netstack")

SCRATCH = -1  # virtual id of the qubit an M pair is made in (freed after measuring)
GONE_KEPT = 256  # apps that left, remembered to refuse requests for them at once
CORRECTION = {0: (), 1: ("z",), 2: ("x",), 3: ("y",)}  # Pauli that maps Bell index -> Phi+
# Bell index whose correction anticommutes with measuring in each basis (flip outcome)
FLIPS = {"Z": {2, 3}, "X": {1, 3}, "Y": {1, 2}}
BASIS_ROTATION = {"Z": (), "X": (("h", 0.0),), "Y": (("rx", math.pi / 2),)}


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
    pairs: list[m.EprPair] = field(default_factory=list)
    phys: int | None = None  # communication qubit of the current pair
    deadline: float = math.inf


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
            )
            for peer, lk in self.links.items()
        }
        self.wants: dict[tuple[str, int], Want] = {}  # by EGP request key
        self.listening: dict[str, Want] = {}  # recv wants not yet matched, by purpose
        self.work: deque[Work] = deque()  # device work, in order
        self._outcomes: dict[str, list[int]] = {}  # round key -> outcomes after its herald
        self.ignored = 0  # link-layer messages from nodes we have no link with
        self.gone_apps: OrderedDict[str, str] = OrderedDict()  # app name -> why it left
        self.ledger = Ledger(node)
        self.down: set[str] = set()  # peers whose node is not answering
        self.pairs_delivered = 0
        self.rounds = 0
        self.moves = 0

    # -- from apps -----------------------------------------------------------------------
    def request(self, app: App, msg: m.EprRequest, now: float) -> list[Out]:
        def fail(code: str, text: str) -> list[Out]:
            return [ToApp(app.addr, m.EprFailed(req=msg.req, code=code, message=text))]

        if msg.remote_node not in self.links:
            have = ", ".join(sorted(self.links)) or "none"
            return fail(
                "UNSUPP",
                f"node {self.node!r} has no quantum link to {msg.remote_node!r} (links to: {have})",
            )
        if msg.role not in ("create", "recv"):
            return fail("OTHER", f"role {msg.role!r}; use 'create' or 'recv'")
        problem = e.request_problem(msg.kind, msg.number, msg.bases)
        if problem is not None:
            return fail("UNSUPP", problem)
        if not msg.timeout_s > 0 or math.isnan(msg.timeout_s):
            return fail("NOTIME", f"timeout {msg.timeout_s} s must be > 0")
        held = self.memory.held(app.app_id)
        quota = self.memory.quota.get(app.app_id, 0)
        if msg.kind == "K":
            if len(msg.qubits) != msg.number or len(set(msg.qubits)) != msg.number:
                return fail("OTHER", f"K needs {msg.number} distinct qubit ids, got {msg.qubits}")
            taken = [q for q in msg.qubits if q in held or q < 0]
            if taken:
                return fail("OTHER", f"qubit ids {taken} are in use or invalid")
            if len(held) + msg.number > quota:
                return fail(
                    "NORES",
                    f"{msg.number} kept pair(s) need {msg.number} qubit(s); the app's quota "
                    f"is {quota} and it holds {len(held)}",
                )
        elif len(held) >= quota:
            return fail("NORES", f"measuring pairs needs one free qubit of the quota ({quota})")
        pur = purpose((self.node, app.name), (msg.remote_node, msg.remote_app))
        want = Want(app=app, msg=msg, peer=msg.remote_node, purpose=pur)
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
                w.phys = None
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
        """Our quantum process got a herald after it had stopped waiting: the pair is
        void here; the other end must not keep it."""
        if msg.peer not in self.links:
            return []
        return [self._expire_at(msg.peer, [msg.herald], "it heralded after this end gave up")]

    def peer_down(self, peer: str, reason: str, now: float) -> list[Out]:
        """``peer``'s node stopped answering: its requests end here, and pairs made with
        it that its apps did not confirm are void here. It is told too: if it was only
        paused, it reads this when it resumes and voids them as well."""
        if peer not in self.egps or peer in self.down:
            return []
        self.down.add(peer)
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
        self.down.discard(peer)

    def _void_pairs(self, w: Want) -> None:
        """Forget the pairs a request made but did not deliver (kept qubits freed)."""
        if w.msg.kind == "K":
            for i in range(len(w.pairs)):
                self.memory.release(w.app.app_id, w.msg.qubits[i])
        w.pairs = []

    def peer_message(self, msg: m.Egp, now: float) -> list[Out]:
        peer = msg.from_node
        egp = self.egps.get(peer)
        if egp is None:
            self.ignored += 1
            return []
        body = msg.msg
        if isinstance(body, m.EgpConfirm):
            self.ledger.confirmed(peer, body.seqs)
            return []
        if isinstance(body, m.EgpExpire):
            return self._peer_expired(peer, body.seqs, body.reason, now)
        if isinstance(body, m.EgpRequest):
            gone = self.gone_apps.get(local_app(body.purpose, self.node) or "")
            if gone is not None:  # for an app that was here and left: say so at once
                return [self._refuse(peer, body, gone)]
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
            keep = [p for p in w.pairs if p not in hit]
            if w.msg.kind == "K":
                for i, p in enumerate(w.pairs):
                    if p in hit:
                        self.memory.release(w.app.app_id, w.msg.qubits[i])
            w.pairs = keep
            out += self._egp(peer, self.egps[peer].abort(key, e.Code.EXPIRE, text, now), now)
        if gone:  # not heralded here yet: never hand them out
            self.ledger.remember_expired(peer, sorted(gone), text)
        return out

    def handle_timer(self, now: float) -> list[Out]:
        out: list[Out] = []
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
                    w.key = (spec.origin, spec.create_id)
                    self.wants[w.key] = w
            elif isinstance(o.event, e.Ok):
                out += self._ok(o.event, now)
            else:
                out += self._err(o.event)
        return out

    def _err(self, err: e.Err) -> list[Out]:
        prefix = f"{err.origin}:{err.create_id}:"
        for k in [k for k in self._outcomes if k.startswith(prefix)]:
            del self._outcomes[k]
        w = self.wants.pop((err.origin, err.create_id), None)
        if w is None:
            return []
        self._drop_scratch(w)
        if w.msg.kind == "K" and w.phys is not None:  # its pair never came
            self.memory.release(w.app.app_id, w.msg.qubits[len(w.pairs)])
        w.phys = None
        msg = m.EprFailed(req=w.msg.req, code=str(err.code), message=err.message, pairs=w.pairs)
        self.ledger.delivered(w.app.app_id, w.app.addr, w.msg.req, w.peer, w.pairs)
        return [ToApp(w.app.addr, msg)]

    def _drop_scratch(self, w: Want) -> None:
        if w.msg.kind == "M" and SCRATCH in self.memory.held(w.app.app_id):
            self.memory.release(w.app.app_id, SCRATCH)

    # -- device work ---------------------------------------------------------------------
    def next_work(self, seq: int, now: float) -> Work | None:
        """The next thing for the device (``seq`` numbers its request), or None. A Work
        whose ``request`` is None needs no device: call its ``done`` at once."""
        for _ in range(len(self.work)):
            w = self.work.popleft()
            if w.round is None:
                return w
            status = self._start_round(w, seq, now)
            if status == "go":
                return w
            if status == "wait":
                self.work.append(w)  # waits for a qubit; others may go first
            elif isinstance(status, Work):
                self.work.appendleft(w)  # after the move that makes room for it
                return status
        return None

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
        if want.phys is None:
            virt = want.msg.qubits[r.pair] if want.msg.kind == "K" else SCRATCH
            try:
                want.phys = self.memory.alloc_comm(want.app.app_id, virt)
            except (ProgramError, QuotaError) as exc:
                self._abort_later(w, e.Code.NORES, str(exc))
                return "go"
            if want.phys is None:
                move = self._make_room()
                if move is not None:
                    return move
                if now >= r.expires_s:
                    self._abort_later(w, e.Code.NORES, "no free communication qubit")
                    return "go"
                return "wait"
        self.rounds += 1
        w.request = m.Entangle(
            seq=seq,
            peer=w.peer,
            key=r.key,
            qubit=want.phys,
            max_attempts=r.max_attempts,
            expires_s=r.expires_s,
            after=self._after(r, want.phys, self.links[w.peer].nodes[0] == self.node),
        )
        return "go"

    def _after(self, r: e.Round, phys: int, owner: bool) -> list[list[m.PhysOp]]:
        """What the quantum process does right after a herald, per Bell index: measure
        (M), or at the link's first node turn the pair into Phi+ (K)."""
        if r.kind == "M":
            ops = [
                op
                for g, theta in BASIS_ROTATION[r.basis]
                for op in self.lowering.lower(g, (phys,), theta)
            ]
            ops.append(m.PhysOp("meas", (phys,)))
            return [ops] * 4
        if not owner:
            return []
        return [
            [op for g in CORRECTION[b] for op in self.lowering.lower(g, (phys,))] for b in range(4)
        ]

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
        """How round ``key`` on the link to ``peer`` ended on the device."""
        egp = self.egps[peer]
        r = egp.by_round.get(key)
        if not isinstance(reply, m.EntangleDone) or reply.error is not None:
            error = getattr(reply, "error", None) or "the device did not run the round"
            log.warning("entanglement round %s failed on the device: %s", key, error)
            if r is None:
                return []
            return self._egp(peer, egp.abort(r.key, e.Code.OTHER, error, now), now)
        if r is None:
            if reply.heralded:  # its request ended while the round ran: void at both ends
                return [self._expire_at(peer, [reply.herald], "its request ended meanwhile")]
            return []
        msg: Heralded | NoHerald | Rejected
        if reply.heralded:
            self._outcomes[reply.key] = reply.outcomes
            msg = Heralded(
                key=reply.key,
                seq=reply.herald,
                attempts=reply.attempts,
                at_ns=reply.at_ns,
                bell_index=reply.bell_index,
                rho=np.zeros((4, 4), dtype=complex),  # the state is in the quantum process
            )
        else:
            msg = NoHerald(
                key=reply.key,
                attempts=reply.attempts,
                at_ns=reply.at_ns,
                reason=reply.reason,
                again=reply.again,
            )
        return self._egp(peer, egp.station_message(msg, now), now)

    def _ok(self, ok: e.Ok, now: float) -> list[Out]:
        """A pair is here (already corrected or measured by the quantum process)."""
        w = self.wants.get((ok.origin, ok.create_id))
        key = f"{ok.origin}:{ok.create_id}:{ok.pair}"
        outcomes = next(
            (self._outcomes.pop(k) for k in list(self._outcomes) if k.startswith(key + ":")), []
        )
        seq = ok.ent_id[2]
        peer = ok.ent_id[1] if ok.ent_id[0] == self.node else ok.ent_id[0]
        if w is None or w.phys is None:
            # Nobody here can have this pair (its request or app ended meanwhile).
            return [self._expire_at(peer, [seq], "it heralded after its request ended here")]
        voided = self.ledger.void_early(peer, seq)
        if voided is not None:
            if w.msg.kind == "K":
                self.memory.release(w.app.app_id, w.msg.qubits[len(w.pairs)])
            w.phys = None
            self._drop_scratch(w)
            outs = self.egps[peer].abort((ok.origin, ok.create_id), e.Code.EXPIRE, voided, now)
            return self._egp(peer, outs, now)
        w.phys = None
        pair = m.EprPair(
            ent_id=ok.ent_id,
            bell_index=ok.bell_index,
            goodness=ok.goodness,
            attempts=ok.attempts,
            at_ns=int(ok.at_ns),
        )
        if w.msg.kind == "K":
            pair = _with(pair, qubit=w.msg.qubits[len(w.pairs)])
        else:
            self._drop_scratch(w)
            owner = self.links[w.peer].nodes[0] == self.node
            flip = owner and ok.bell_index in FLIPS[ok.basis]
            pair = _with(pair, basis=ok.basis, outcome=outcomes[-1] ^ int(flip) if outcomes else -1)
        w.pairs.append(pair)
        return self._delivered(w) if len(w.pairs) == w.msg.number else []

    def _delivered(self, w: Want) -> list[Out]:
        if w.key is not None:
            self.wants.pop(w.key, None)
        self.pairs_delivered += len(w.pairs)
        self.ledger.delivered(w.app.app_id, w.app.addr, w.msg.req, w.peer, w.pairs)
        return [ToApp(w.app.addr, m.EprDone(req=w.msg.req, pairs=w.pairs))]


def _log_error(reply: m.DeviceReply | m.EntangleDone | None, _now: float) -> list[Out]:
    if isinstance(reply, m.DeviceReply) and reply.error:
        log.warning("moving a qubit's state failed: %s", reply.error)
    return []


def _with(pair: m.EprPair, **changes: int | str) -> m.EprPair:
    import msgspec

    return msgspec.structs.replace(pair, **changes)
