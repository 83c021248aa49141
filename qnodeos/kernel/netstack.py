"""The node's network stack, sans-IO: apps' EPR requests, one link-layer EGP per quantum
link, and the device work entanglement needs.

How it works. An app's ``EprRequest`` with role "create" becomes an EGP ``Create`` on
the link to the remote node; role "recv" tells that EGP the app waits for the peer's
request (``listen``). Both apps name each other, so both ends derive the same
*purpose* (the EPR socket) from the two (node, app) names (``wants``). The EGP asks
for attempt rounds, which wait for the device (``roundwork``); what the EGPs say comes
back as pairs or failures for the app, or for the block, that asked (``delivery``).

This module takes what comes from outside: apps' requests, acknowledgements and
departures, blocks that end, the peer node's link-layer messages, its silence or its
return, and timers. An app that leaves voids every pair it did not acknowledge (the
other end expires it) and ends its requests; a request from another node for an app
that left is refused soon (``GONE_GRACE_S``), not at its deadline, unless an app of
that name comes back first. A peer that stops answering ends its requests here and
voids the pairs its apps did not confirm.
"""

from __future__ import annotations

import logging
import math
from collections import OrderedDict, deque
from collections.abc import Callable, Collection, Mapping
from typing import Any

import numpy as np

from ..config.network import LinkConfig
from ..lang import messages as m
from ..netlink import egp as e
from ..netlink.protocols import load as load_protocol
from ..netlink.routing import Topology
from ..runtime.timeline import Recorder
from .circuits import NetworkLayer
from .ledger import Ledger
from .lower import Lowering
from .memory import MemoryManager
from .outputs import Out, ToApp, ToNode
from .processes import App
from .roundwork import RoundWork
from .wants import Want, Work, local_app, purpose

log = logging.getLogger("qnodeos.netstack")

GONE_KEPT = 256  # apps that left, remembered to refuse requests for them soon
GONE_GRACE_S = 1.0  # a request for an app that left waits this long for one of its name


class NetStack(NetworkLayer, RoundWork):
    """A node's network stack: one EGP per link, the apps' requests on them, and the
    device work and pairs they make (see the module's docstring)."""

    def __init__(
        self,
        *,
        node: str,
        links: Collection[LinkConfig],
        speed: float,
        memory: MemoryManager,
        lowering: Lowering,
        seed: int | None = None,
        topology: Collection[tuple[str, str]] = (),
        protocol: str = "",
        protocol_args: Mapping[str, Any] | None = None,
    ) -> None:
        """``topology``: every quantum link of the network (pairs of nodes), for routing
        end-to-end pairs (``circuits``); ``protocol``: the repeaters' policy, by import
        path (``netlink.protocols.load``; empty: swap as soon as possible)."""
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
        self.dist_rng = np.random.default_rng(rng.integers(2**63))  # distilled pairs' bases
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
        # what each link costs a path, when the network routes by other than hops
        self.route_costs = topology.costs if isinstance(topology, Topology) else None
        if protocol:
            factory = load_protocol(protocol, protocol_args)
            self.init_network(topology or [lk.nodes for lk in links], factory, protocol)
        else:
            self.init_network(topology or [lk.nodes for lk in links])

    def route(self, dst: str) -> list[str] | None:
        """The path to ``dst``: the topology's cheapest (``[network] route_cost``)."""
        return Topology(self.topology, self.route_costs).path(self.node, dst)

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

        if msg.remote_node not in self.links and self.route(msg.remote_node) is None:
            have = ", ".join(sorted(self.links)) or "none"
            return fail(
                "UNSUPP",
                f"node {self.node!r} has no quantum link to {msg.remote_node!r} (links to: "
                f"{have}), nor a path to it over other nodes",
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
        if msg.remote_node not in self.links or self.one_hop_circuit(want):
            return self.e2e_request(want, now)  # over repeaters, or distilled (``circuits``)
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

    def has_request(self, app: App, req: int) -> bool:
        """Whether app ``app`` has a live request numbered ``req``."""
        return any(w.app is app and w.msg.req == req for w in self.wants.values())

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
        out += self.circuits_app_gone(app, now)
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
        self.now_s = now
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
            if w.peer == peer and self.listening.get(pur) is w:  # (a circuit's may be gone)
                del self.listening[pur]
                egp.unlisten(pur)
                failed = m.EprFailed(req=w.msg.req, code="OTHER", message=reason)
                out += self._tell(w, failed)
        egp.waiting.clear()
        told, voided = self.ledger.peer_down(peer, f"pairs void: {reason}")
        void += voided
        if void:
            out.insert(0, self._expire_at(peer, void, f"{self.node!r} lost contact: {reason}"))
        return out + told

    def busy(self) -> bool:
        """Whether anything here has a deadline: requests, peer requests waiting for
        an app, rounds, circuits (an idle stack needs no timer)."""
        return bool(
            self.wants
            or self.listening
            or self.refuse_at
            or self.work
            or any(egp.requests or egp.waiting for egp in self.egps.values())
            or self.circuits
            or self.setups
            or self.qubit_waits
            or self.e2e_listening
        )

    def next_deadline(self) -> float:
        """When ``handle_timer`` (or a pass over the round work waiting for the device)
        next has something to do: the earliest deadline of what ``busy`` counts (inf:
        nothing). A busy link wakes the node for its messages, not on a clock."""
        times = [*self.refuse_at.values(), *(w.deadline for w in self.listening.values())]
        if self.circuits or self.setups or self.e2e_listening:
            times.append(self.next_circuit_deadline())
        times += [until for _, until in self.qubit_waits.values()]  # (refused then)
        # a request ends by its deadline once no round of it is under way (a round's
        # end is a device reply, after which this is asked again)
        times += [w.deadline + e.ROUND_GRACE_S for w in self.wants.values() if w.round_seq < 0]
        for egp in self.egps.values():
            if egp.requests:
                times += [
                    r.spec.deadline_s for r in egp.requests.values() if r.state is e.State.PROPOSED
                ]
            times += [msg.deadline_s for msg in egp.waiting.values()]
        for w in self.work:  # a round waiting for a qubit gives up at its expiry
            if w.round is not None:
                times.append(w.round.expires_s)
                want = self.wants.get(w.round.request)
                if want is not None:
                    times.append(want.deadline)
        return min(times, default=math.inf)

    def waited_on(self) -> set[str]:
        """The linked nodes whose silence matters now: something here waits on them
        (requests, rounds, pairs they have not confirmed; a circuit waits on all), and
        those that are down: requests to them are refused until one is heard again,
        and a restarted node says nothing unless asked, so they are asked."""
        if self.circuits or self.setups or self.qubit_waits:
            return set(self.egps)
        peers = set(self.down)
        peers.update(w.peer for w in self.wants.values())
        peers.update(w.peer for w in self.listening.values())
        peers.update(p for p, egp in self.egps.items() if egp.requests or egp.waiting)
        peers.update(p for p, book in self.ledger.open.items() if book)
        return peers

    def peer_up(self, peer: str) -> None:
        self.down.pop(peer, None)

    def peer_message(self, msg: m.Egp, now: float) -> list[Out]:
        peer = msg.from_node
        egp = self.egps.get(peer)
        body = msg.msg
        if egp is None:
            # the far end of a circuit: its word on end-to-end pairs (``circuits``)
            if isinstance(body, m.EgpConfirm | m.EgpExpire) and self.e2e_peer(peer):
                if isinstance(body, m.EgpConfirm):
                    return self.ledger.confirmed(peer, body.seqs)[0]
                text = f"{peer!r} voided the pair(s): {body.reason}"
                told, missing = self.ledger.expired(peer, body.seqs, text)
                self.ledger.remember_expired(peer, missing, text)
                return told
            self.ignored += 1
            return []
        if isinstance(body, m.EgpConfirm):
            out, unknown = self.ledger.confirmed(peer, body.seqs)
            if unknown:  # never heralded here: void there too (no answer expected)
                why = f"no such pair heralded at {self.node!r}"
                out.insert(0, self._expire_at(peer, unknown, why, echo=True))
            return out
        if isinstance(body, m.EgpExpire):
            return self._peer_expired(peer, body, now)
        if isinstance(body, m.EgpRequest):
            if local_app(body.purpose, self.node) in self.gone_apps:
                # For an app that was here and left: refused soon (not at its deadline),
                # unless an app of that name comes back first (a restart).
                self.refuse_at[(peer, (body.origin, body.create_id))] = now + GONE_GRACE_S
        return self._egp(peer, egp.peer_message(body, now), now)

    def _peer_expired(self, peer: str, msg: m.EgpExpire, now: float) -> list[Out]:
        """The other end voided these pairs: apps that have them are told; a request
        still collecting them ends with EXPIRE (listing only the pairs still good).
        The pairs voided here are named back to it (an echo), so that if it never sent
        this (a forged expiry) it voids them too and both ends agree. Pairs that
        cannot herald here soon (far past the last one that did) are ignored."""
        text = f"{peer!r} voided the pair(s): {msg.reason}"
        seqs = [s for s in msg.seqs if self.ledger.may_come(peer, s)]
        self.ignored += len(msg.seqs) - len(seqs)
        out, missing = self.ledger.expired(peer, seqs, text)
        gone = set(missing)
        voided_here = sorted(set(seqs) - gone)
        for key, w in list(self.wants.items()):
            hit = [p for p in w.pairs if w.peer == peer and p.ent_id[2] in gone]
            if not hit:
                continue
            gone -= {p.ent_id[2] for p in hit}
            voided_here += [p.ent_id[2] for p in hit]
            for p in hit:
                if p.qubit >= 0:
                    self._free(w, p.qubit)
            w.pairs = [p for p in w.pairs if p not in hit]
            out += self._egp(peer, self.egps[peer].abort(key, e.Code.EXPIRE, text, now), now)
        if msg.echo:  # about pairs we voided ourselves: nothing to remember or answer
            return out
        if gone:  # not heralded here yet: never hand them out
            self.ledger.remember_expired(peer, sorted(gone), text)
        if voided_here:
            out.insert(0, self._expire_at(peer, sorted(voided_here), "voided at your word", True))
        return out

    def handle_timer(self, now: float) -> list[Out]:
        self.now_s = now
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
        for key, w in list(self.wants.items()):
            # A request ends by its deadline whatever the link layer's state (a round
            # under way ends by itself soon after: its window closes at the deadline).
            if now >= w.deadline + e.ROUND_GRACE_S and w.round_seq < 0:
                why = f"not done within its timeout of {w.msg.timeout_s:g} s"
                link = self.egps.get(w.peer)
                ends = link.abort(key, e.Code.TIMEOUT, why, now) if link is not None else []
                if not ends:  # the link layer has it no more: end it here
                    err = e.Err(origin=key[0], create_id=key[1], code=e.Code.TIMEOUT, message=why)
                    ends = [e.ToLocal(event=err)]
                out += self._egp(w.peer, ends, now)
        for pur, w in list(self.listening.items()):
            if now >= w.deadline and self.listening.get(pur) is w:  # (a circuit's may be gone)
                del self.listening[pur]
                self.egps[w.peer].unlisten(pur)
                failed = m.EprFailed(
                    req=w.msg.req,
                    code="TIMEOUT",
                    message=f"no request from {w.msg.remote_app!r} on "
                    f"{w.peer!r} within {w.msg.timeout_s} s",
                )
                out += self._tell(w, failed)
        return out + self.circuits_timer(now)

    def end_block(
        self, app: App, reqs: dict[int, int], ok: bool, reason: str, now: float
    ) -> list[Out]:
        """The app's block ended; ``reqs``: its requests (req -> pairs it took). Done
        (``ok``): the pairs it took are the app's, confirmed to the other ends. Failed:
        they are void at both ends. Either way its requests still under way end, and
        their pairs it never took are void at both ends."""
        out: list[Out] = self.circuits_block_end(app, reason, now)
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
