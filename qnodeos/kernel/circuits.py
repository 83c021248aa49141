"""The network layer, sans-IO: end-to-end pairs between nodes with no direct link, over
circuits of link pairs joined by entanglement swapping at the repeaters between them.

How it works. An app's EPR request to a node it has no link to (``e2e_request``) takes
the fewest-hops path of the network file's topology (``netlink.routing``: the same path
both ways). The creating end installs a *circuit* along it: it sends ``NetSetup`` to
every node on the path, each of which knows the circuit, its two neighbours on it and
its resource limits (a repeater holds at most one link pair per side: ``REPEATER_QUBITS``
qubits it reserves for the circuit, or it refuses it). Every hop then makes link pairs
through the ordinary link layer (one internal request per hop, its news going to the
circuit instead of an app): on the end hops the end makes them (measured at once for
M, kept in the app's qubits for K), on the middle hops the node nearer the creator
does. A repeater swaps as soon as it holds a half from each side, as network work on
its device: a Bell measurement (CNOT, H, measure both) with the device's own gate and
readout noise; it tells both ends the outcomes (``NetSwapped``) and frees its qubits,
which lets the next link pairs come. No app runs at a repeater.

The ends (``ends``) join their own link pair to the repeaters' records (each record
names the link pair on either side of the swap), which gives the end-to-end pair its one id at both
ends (the creator's hop's link-pair number) and its Bell index (``netlink.frames``:
the XOR of every swap's). The receiving end makes it Phi+: a Pauli on its kept half, or
a flip of its measured outcome, so both ends report Phi+-frame results as the link layer
does. Delivered pairs go to the ledger with the far end as the peer, so the ends confirm
them to each other exactly as linked nodes do.

One hop. A request to a neighbour that distils (``EprRequest.distill``) takes a circuit
too, of one hop and no repeater: its ends make the link's pairs and distil them as
end-to-end ones (``distill``). A receiving app waiting on the link is moved to it when
the creator's setup comes.

Both or neither. Any failure on the circuit (a hop's link request fails or times out, a
repeater's device fails, a node goes silent or dies, an app leaves) ends it: the node
that saw it sends ``NetTeardown`` to the others, each end voids the pairs the other end
has not confirmed (and tells it to void them too), and every node frees what the
circuit held. A node is never told about pairs it did not hear the whole story of, so
no end keeps a pair the other end did not get.

Trust. A setup is taken only from the path's first node, for a path of real links that
names us; swap records only from the repeater at their index; teardowns only from nodes
on the path. What a peer can make us hold is capped (circuits per peer, records per
circuit, setups waiting for an app, records for circuits not open here yet).

Records before the circuit. At the receiving end a setup waits until the app asks, but
the repeaters swap on the other hops meanwhile: their records are kept (``early``, in
``ends``) and checked and used once the circuit opens. Dropping them left the creating end with a
pair the receiving end could never deliver, and the repeaters with their qubits.
"""

from __future__ import annotations

import logging
import math
from collections import OrderedDict, deque
from collections.abc import Callable, Collection
from functools import partial
from typing import Any, cast

import msgspec

from ..config.network import LinkConfig
from ..lang import messages as m
from ..netlink import egp as e
from ..netlink.distill import SCHEMES
from ..netlink.protocols import (
    LEFT,
    POLICIES,
    RIGHT,
    Action,
    Discard,
    NetworkProtocol,
    Send,
    Swap,
    SwapAsap,
    View,
    Wake,
)
from ..netlink.routing import shortest_path
from ..runtime.timeline import Recorder
from .circuit import (
    EXTRA_QUBIT,
    FINISHED_KEPT,
    KINDS,
    MAX_CIRCUITS_PER_PEER,
    MAX_SETUPS_WAITING,
    REPEATER_QUBITS,
    TIMEOUT_GRACE_S,
    WINDOW,
    Circuit,
    Key,
    link_pairs,
)
from .distill import LAND, EndDistil
from .ends import EndWork, measures_late
from .ledger import Ledger
from .lower import Lowering
from .memory import MemoryManager
from .outputs import Out, ToNode
from .processes import App
from .repeaters import RepeaterWork
from .roundwork import SCRATCH
from .wants import Want, Work, purpose, purpose_nodes

log = logging.getLogger("qnodeos.network")

SWAP_LOG = 4096  # swaps remembered (``swap_log``), for tests and tools


def body_path(layer: NetworkLayer, body: m.NetTeardown) -> list[str]:
    """The path of a circuit waiting for qubits here (empty if none is)."""
    waiting = layer.qubit_waits.get((body.origin, body.circuit))
    return list(waiting[0].path) if waiting is not None else []


def _timer(protocol: NetworkProtocol, view: View, *, now: float) -> list[Action]:
    return protocol.timer(view, now)


def _distill_problem(msg: m.EprRequest) -> str | None:
    """What is wrong with an end-to-end request's distillation options (None: nothing)."""
    if msg.distill not in SCHEMES:
        return f"distill={msg.distill!r}; known: {', '.join(SCHEMES)}"
    if msg.kind not in ("M", "K") or msg.rotations or msg.remote_rotations or msg.sequential:
        return "distillation: for pairs kept (K, not sequential) or measured in bases (M)"
    if not (msg.rounds or msg.target_fidelity):
        return "distillation needs rounds (1 to 8) or a target fidelity"
    return None


class NetworkLayer(RepeaterWork, EndDistil, EndWork):
    """The network stack's end-to-end part (``NetStack`` is one)."""

    node: str
    memory: MemoryManager
    lowering: Lowering
    links: dict[str, LinkConfig]
    egps: dict[str, e.EGP]
    wants: dict[tuple[str, int], Want]
    listening: dict[str, Want]
    work: deque[Work]
    ledger: Ledger
    timeline: Recorder | None
    down: dict[str, str]
    topology: list[tuple[str, str]]
    circuits: dict[Key, Circuit]
    finished: OrderedDict[Key, Circuit]
    e2e_listening: dict[str, Want]
    setups: dict[str, tuple[m.NetSetup, float]]  # by purpose: waiting for the app
    qubit_waits: OrderedDict[Key, tuple[m.NetSetup, float]]  # repeater: waiting for qubits
    # receiving end: swap records for circuits not open here yet (by sender, in order)
    early: OrderedDict[Key, list[tuple[str, list[m.NetSwapped]]]]
    early_records: int
    early_from: dict[str, int]  # of them, by sender
    _next_circuit: int
    _next_own_app: int
    protocol_factory: Callable[[], NetworkProtocol]
    protocol_name: str
    discards: int
    oldest_swapped_s: float
    ignored: int
    now_s: float  # the time of the input being handled (the link layer's news has none)

    # the bridge to the link layer (``delivery``)
    _egp: Callable[[str, list[e.Out], float], list[Out]]
    _tell: Callable[[Want, m.EprPairs | m.EprDone | m.EprFailed], list[Out]]
    _hand_out: Callable[[Want], list[m.EprPair]]
    _expire_at: Callable[..., ToNode]

    def init_network(
        self,
        topology: Collection[tuple[str, str]],
        protocol: Callable[[], NetworkProtocol] = SwapAsap,
        protocol_name: str = "SwapAsap",
    ) -> None:
        self.topology = [tuple(t) for t in topology]  # type: ignore[misc]
        self.protocol_factory = protocol
        self.protocol_name = protocol_name
        self.discards = 0
        self.distill_ok = 0  # distillation rounds at the ends here that succeeded, failed
        self.distill_failed = 0
        self.swap_log = deque(maxlen=SWAP_LOG)
        self.oldest_swapped_s = 0.0  # the age of the oldest half any swap here used
        self._actions: dict[type, Callable[[Circuit, Any, float, list[Out]], str | None]] = {
            Swap: self._act_swap,
            Discard: self._act_discard,
            Send: self._act_send,
            Wake: self._act_wake,
        }
        self.circuits = {}
        self.finished = OrderedDict()
        self.e2e_listening = {}
        self.setups = {}
        self.qubit_waits = OrderedDict()
        self.early = OrderedDict()
        self.early_records = 0
        self.early_from = {}
        self._next_circuit = 0
        self._next_own_app = 0
        self.now_s = 0.0

    def route(self, dst: str) -> list[str] | None:
        return shortest_path(self.topology, self.node, dst)

    def one_hop_circuit(self, want: Want) -> bool:
        """Whether ``want``, to a neighbour, takes a circuit of one hop (no repeater)
        instead of the link layer directly: distilled pairs do (the ends distil the link
        pairs as they would end-to-end ones), and so does the app that receives them,
        once the creator's setup is here."""
        msg = want.msg
        if msg.role == "create":
            return bool(msg.distill)
        waiting = self.setups.get(want.purpose)
        return waiting is not None and len(waiting[0].path) == 2

    # -- an app's request ----------------------------------------------------------------
    def e2e_request(self, want: Want, now: float) -> list[Out]:
        """The app's request ``want`` (checked like any other) to a node with no link."""
        msg = want.msg

        def fail(code: str, text: str) -> list[Out]:
            return self._tell(want, m.EprFailed(req=msg.req, code=code, message=text))

        path = self.route(msg.remote_node)
        if msg.remote_node in self.egps:  # a neighbour: one hop, to distil (or receive)
            path = [self.node, msg.remote_node]
        elif path is not None and len(path) < 3:
            path = None
        if path is None:
            have = ", ".join(sorted(self.egps)) or "none"
            return fail(
                "UNSUPP",
                f"node {self.node!r} has no quantum link to {msg.remote_node!r} (links to: "
                f"{have}), nor a path to it over other nodes",
            )
        if msg.kind not in KINDS:
            return fail("UNSUPP", f"end-to-end pairs of kind {msg.kind!r}: K, M or R only")
        if path[1] in self.down:
            return fail("OTHER", f"{self.down[path[1]]}; ask again once it is back")
        if msg.distill and msg.role == "create":
            problem = _distill_problem(msg)
            if problem is not None:
                return fail("UNSUPP", problem)
        if msg.policy and msg.policy not in POLICIES:
            return fail("UNSUPP", f"policy={msg.policy!r}; known: {', '.join(POLICIES)}")
        if msg.role == "recv":
            if want.purpose in self.e2e_listening:
                return fail("OTHER", f"this app already waits for pairs on {want.purpose}")
            self.e2e_listening[want.purpose] = want
            waiting = self.setups.get(want.purpose)
            if waiting is not None and waiting[0].path[0] == msg.remote_node:
                del self.setups[want.purpose]
                return self._accept_setup(waiting[0], now)
            return []
        self._next_circuit += 1
        key = (self.node, self._next_circuit)
        c = Circuit(
            key=key, path=path, me=0, purpose=want.purpose, kind=msg.kind, number=msg.number,
            deadline=want.deadline, app=want.app, want=want,
        )  # fmt: skip
        if msg.distill:  # its protocol picks the pairs to distil (``distil``)
            try:
                c.protocol = POLICIES[msg.policy]() if msg.policy else self.protocol_factory()
            except Exception as exc:  # the protocol's constructor: refuse, saying why
                why = f"network protocol {self.protocol_name} failed to start: {exc}"
                return fail("OTHER", why)
            problem = self._dist_open(c, msg.distill, msg.rounds, msg.target_fidelity)
            if problem is not None:
                return fail("NORES", problem)
            c.hop_pairs = link_pairs(msg.number, msg.distill, msg.rounds)
        self.circuits[key] = c
        setup = m.NetSetup(
            circuit=key[1], path=path, purpose=want.purpose, kind=msg.kind, number=msg.number,
            timeout_s=msg.timeout_s, remote_chosen=msg.remote_chosen,
            remote_rotations=list(msg.remote_rotations), distill=msg.distill, rounds=msg.rounds,
            policy=msg.policy,
        )  # fmt: skip
        log.info("circuit %s for %r: path %s", key, want.app.name, "-".join(path))
        out: list[Out] = [ToNode(n, m.Net(from_node=self.node, msg=setup)) for n in path[1:]]
        return out + self._open_hop(c, 0, now)

    # -- messages from other nodes' network layers --------------------------------------
    def net_message(self, msg: m.Net, now: float) -> list[Out]:
        body, frm = msg.msg, msg.from_node
        if isinstance(body, m.NetSetup):
            return self._setup(frm, body, now)
        if isinstance(body, m.NetSwaps):
            return self._records(frm, body.records, now)
        c = self.circuits.get((body.origin, body.circuit))
        if isinstance(body, m.NetSwapped):
            return self._records(frm, [body], now)
        if c is None:
            if isinstance(body, m.NetTeardown) and body.error and frm in body_path(self, body):
                self.qubit_waits.pop((body.origin, body.circuit), None)  # it ended elsewhere
            if isinstance(body, m.NetTeardown) and body.error:
                self._forget_setup((body.origin, body.circuit), frm)
            old = self.finished.get((body.origin, body.circuit))
            if isinstance(body, m.NetTeardown) and old is not None and frm in old.path:
                if body.error and old.end:
                    return self._void_unconfirmed(old, body.reason)
            return []
        if frm not in c.path:
            self.ignored += 1
            return []
        if isinstance(body, m.NetDiscarded):
            return self._discarded(c, frm, body, now)
        if isinstance(body, m.NetDistil):
            return self._dist_message(c, frm, body, now)
        if isinstance(body, m.NetPeer):
            if c.end:
                return []
            try:
                data = msgspec.msgpack.decode(body.data)
            except msgspec.DecodeError:
                self.ignored += 1
                return []
            return self._protocol(c, lambda v: c.protocol.message(v, frm, data, now), now)
        if not body.error:  # an end is done: a repeater ends once both are
            if c.end or frm not in (c.path[0], c.path[-1]):
                return []
            c.ends_done.add(frm)
            return self._close(c, "both ends are done", now) if len(c.ends_done) == 2 else []
        return self._fail(c, f"{frm!r} ended the circuit: {body.reason}", now, tell=False)

    def _setup(self, frm: str, s: m.NetSetup, now: float) -> list[Out]:
        key = (frm, s.circuit)
        path = s.path
        links = {frozenset(t) for t in self.topology}
        bad = (
            path[0] != frm
            or self.node not in path[1:]
            or len(set(path)) != len(path)
            or any(frozenset(h) not in links for h in zip(path, path[1:], strict=False))
            or s.kind not in KINDS
            # its apps are at its two ends: a node cannot pose as another to an app
            or sorted(purpose_nodes(s.purpose)) != sorted([path[0], path[-1]])
            or (len(path) == 2 and not s.distill)  # one hop: only to distil
            or (s.distill and (s.distill not in SCHEMES or s.kind not in ("M", "K")))
            or (s.policy and s.policy not in POLICIES)
            or key in self.circuits
            or key in self.finished
        )
        if bad:
            self.ignored += 1
            return []
        i = path.index(self.node)
        gone = [n for n in path[i - 1 : i + 2 : 2] if n in self.down]
        if gone:  # a neighbour on the path is down: say so now, not at the timeout
            return self._refuse_setup(s, frm, f"{self.down[gone[0]]}; ask again once it is back")
        mine = sum(1 for k in self.circuits if k[0] == frm)
        if mine >= MAX_CIRCUITS_PER_PEER:
            return self._refuse_setup(s, frm, f"{frm!r} has {mine} circuits here already")
        if path[-1] == self.node:
            listen = self.listening.get(s.purpose)
            if len(path) == 2 and listen is not None and listen.peer == frm:
                if s.purpose not in self.e2e_listening:  # the app waits on the link
                    self.e2e_listening[s.purpose] = self.listening.pop(s.purpose)
                    self.egps[listen.peer].unlisten(s.purpose)
            want = self.e2e_listening.get(s.purpose)
            if want is None or want.msg.remote_node != frm:
                waiting = sum(1 for x, _ in self.setups.values() if x.path[0] == frm)
                if waiting >= MAX_SETUPS_WAITING or s.purpose in self.setups:
                    return self._refuse_setup(s, frm, "too many circuits wait for apps here")
                self.setups[s.purpose] = (s, now + s.timeout_s)
                return []
            return self._accept_setup(s, now)
        out = self._start_repeater(s, now, now + s.timeout_s)
        if out is not None:
            return out
        # no qubits free now (another circuit holds them): wait, up to its timeout
        if sum(1 for x, _ in self.qubit_waits.values() if x.path[0] == frm) >= MAX_SETUPS_WAITING:
            return self._refuse_setup(s, frm, f"no qubits for the circuit at {self.node!r}")
        self.qubit_waits[key] = (s, now + s.timeout_s)
        return []

    def _start_repeater(self, s: m.NetSetup, now: float, until: float) -> list[Out] | None:
        """Set up our part of circuit ``s`` as a repeater (None: no qubits free now)."""
        frm, path = s.path[0], s.path
        key = (frm, s.circuit)
        try:
            protocol = POLICIES[s.policy]() if s.policy else self.protocol_factory()
            window = int(protocol.window)
        except Exception as exc:  # the protocol's constructor: refuse, saying why
            why = f"network protocol {self.protocol_name} at {self.node!r} failed to start: {exc}"
            return self._refuse_setup(s, frm, why)
        free = self.memory.spec.num_qubits - self.memory.reserved
        if free < REPEATER_QUBITS:
            return None
        # a window of halves per side, as many as the protocol allows and qubits are free
        # (distilling ends hold few pairs and need them in the same order at both: one)
        each = 1 if s.distill else max(1, min(window, WINDOW, free // 2, s.number))
        self._next_own_app += 1
        app = App(
            app_id=-self._next_own_app, name=f"~circuit {frm}.{s.circuit}", addr=b"",
            priority=0, quota=2 * each,
        )  # fmt: skip
        self.memory.open(app.app_id, 2 * each)
        c = Circuit(
            key=key, path=list(path), me=path.index(self.node), purpose=s.purpose, kind="K",
            number=s.number, deadline=until, app=app, protocol=protocol,
            hop_pairs=link_pairs(s.number, s.distill, s.rounds), window=each,
            waiting={LEFT: [], RIGHT: []},
        )  # fmt: skip
        self.circuits[key] = c
        i = c.me
        # the middle hops are made by the node nearer the creator; the end hops by the ends
        out = self._open_hop(c, i - 1, now)
        return out + self._open_hop(c, i, now)

    def _accept_setup(self, s: m.NetSetup, now: float) -> list[Out]:
        want = self.e2e_listening.pop(s.purpose)
        frm = s.path[0]
        key = (frm, s.circuit)
        kind = "K" if s.kind == "R" else s.kind  # a keeping receiver of R asks K
        if (want.msg.kind, want.msg.number) != (kind, s.number):
            text = (
                f"{frm!r} asks for {s.number} pair(s) of kind {s.kind!r}, the app here for "
                f"{want.msg.number} of kind {want.msg.kind!r}"
            )
            out = self._tell(want, m.EprFailed(req=want.msg.req, code="OTHER", message=text))
            return out + self._refuse_setup(s, frm, text)
        if s.distill and (want.msg.rotations or want.msg.peer_bases or want.msg.sequential):
            text = "distilled pairs are kept, or measured in bases (no rotations, no peer_bases)"
            out = self._tell(want, m.EprFailed(req=want.msg.req, code="UNSUPP", message=text))
            return out + self._refuse_setup(s, frm, text)
        if want.msg.peer_bases:  # measure where the creator asks (else in Z)
            want.msg = msgspec.structs.replace(
                want.msg, chosen=s.remote_chosen, rotations=s.remote_rotations
            )
        c = Circuit(
            key=key, path=list(s.path), me=len(s.path) - 1, purpose=s.purpose, kind=s.kind,
            number=s.number, deadline=want.deadline, app=want.app, want=want,
        )  # fmt: skip
        if s.distill:
            problem = self._dist_open(c, s.distill, s.rounds, 0.0)
            if problem is not None:
                out = self._tell(want, m.EprFailed(req=want.msg.req, code="NORES", message=problem))
                return out + self._refuse_setup(s, frm, problem)
            c.hop_pairs = link_pairs(s.number, s.distill, s.rounds)
        self.circuits[key] = c
        out = self._open_hop(c, c.me - 1, now)
        # swap records that came while the setup waited for the app (the repeaters swap
        # on the other hops meanwhile): they are this circuit's story too
        for frm, records in self._unkeep(key):
            if not c.done:
                out += self._records(frm, records, now)
        return out

    def _refuse_setup(self, s: m.NetSetup, frm: str, why: str) -> list[Out]:
        log.info("circuit %s.%d refused: %s", frm, s.circuit, why)
        self._unkeep((frm, s.circuit))
        down = m.NetTeardown(origin=frm, circuit=s.circuit, reason=why)
        return [ToNode(n, m.Net(from_node=self.node, msg=down)) for n in s.path if n != self.node]

    # -- link pairs for the circuit ------------------------------------------------------
    def _open_hop(
        self, c: Circuit, hop: int, now: float, dead: int = -1, instead: m.EprPair | None = None
    ) -> list[Out]:
        """Ask the link layer for hop ``hop``'s pairs (between path[hop] and path[hop+1]);
        ``dead`` >= 0: one pair, in the place of that hop's pair ``dead``, which is void
        (``instead``: our half of it, at an end). Both nodes of the hop name the request
        after the void pair, so they find each other whatever order they learn it in."""
        extra = dead >= 0
        if extra:
            log.debug(
                "%s: circuit %s: another pair on hop %d for void %d", self.node, c.key, hop, dead
            )
        last = len(c.path) - 2
        peer = c.path[hop + 1] if hop == c.me else c.path[hop]
        # the index of the node that creates: an end on its hop (the first on one hop)
        creator = 0 if hop == 0 else last + 1 if hop == last else hop
        tag = f"~{c.key[0]}.{c.key[1]}.{hop}" + (f".x{dead}" if extra else "")
        pur = purpose((self.node, tag), (peer, tag))
        if c.end and c.dist is not None:  # kept in the circuit's qubits, to distil
            base = m.EprRequest(req=0, remote_node=peer, remote_app=tag, role="recv",
                                qubits=[LAND], sequential=True)  # fmt: skip
        elif c.end and measures_late(c):
            # rotated bases at the receiving end: keep the half (in the scratch qubit),
            # correct it once the frame is known, then rotate and measure (``_deliver``)
            assert c.want is not None
            base = msgspec.structs.replace(
                c.want.msg, kind="K", qubits=[SCRATCH], sequential=True, rotations=[],
                chosen="", bases="Z",
            )  # fmt: skip
        elif c.end:
            assert c.want is not None
            # the ends make their hops' pairs: "R" when this end measures them at once
            base = msgspec.structs.replace(c.want.msg, kind="R" if c.want.msg.measures() else "K")
        else:  # a repeater: an id per pair (the round takes as many as the side's qubits)
            side = LEFT if hop < c.me else RIGHT
            n = c.hop_pairs or c.number
            ids = [EXTRA_QUBIT + 2 * dead + side] if extra else range(side, 2 * n, 2)
            base = m.EprRequest(req=0, remote_node=peer, remote_app=tag, role="recv",
                                qubits=cast(list[int], ids))  # fmt: skip
        if c.end and instead is not None:  # in the void pair's place
            if base.kind == "K" and not base.sequential:
                base = msgspec.structs.replace(base, qubits=[instead.qubit])
            if base.chosen:
                base = msgspec.structs.replace(base, chosen=instead.basis)
        msg = msgspec.structs.replace(
            base, remote_node=peer, remote_app=tag, role="create" if creator == c.me else "recv",
            number=1 if extra else c.hop_pairs or c.number,
            timeout_s=max(1e-3, c.deadline - now),
        )  # fmt: skip
        w = Want(app=c.holder, msg=msg, peer=peer, purpose=pur)
        if not c.end:
            w.room = partial(self._room, c, LEFT if hop < c.me else RIGHT)
        w.sink = partial(self._link_news, c.key, hop)
        w.deadline = c.deadline
        c.links[(hop, dead)] = w
        egp = self.egps[peer]
        if creator != c.me:
            self.listening[pur] = w
            return self._egp(peer, egp.listen(pur, msg.kind, msg.number, now), now)
        create = e.Create(
            remote=peer, purpose=pur, type=msg.kind, number=msg.number,
            max_time_s=msg.timeout_s, bases=msg.bases,
        )  # fmt: skip
        cid, outs = egp.create(create, now)
        w.key = (self.node, cid)
        self.wants[w.key] = w
        return self._egp(peer, outs, now)

    def _link_news(
        self, key: Key, hop: int, w: Want, msg: m.EprPairs | m.EprDone | m.EprFailed
    ) -> list[Out]:
        now = self.now_s
        c = self.circuits.get(key)
        if c is None:  # the circuit ended: pairs that still come are freed
            for p in msg.pairs:
                self._free_pair(w.app, p)
            return []
        out: list[Out] = []
        for p in msg.pairs:
            if not c.done:
                out += self._link_pair(c, hop, p, now)
        if not c.end:  # the protocol hears of the new halves once all are in: one batch
            out += self._run_promoted(c, now)
        if isinstance(msg, m.EprFailed) and not c.done and c.ends_done:
            pass  # an end is done and ended its requests: the other one needs us no more
        elif isinstance(msg, m.EprFailed) and not c.done and self._dist_settled(c):
            pass  # on one hop the other end, done, ended the link: our last pairs are made
        elif isinstance(msg, m.EprFailed) and not c.done:
            why = f"link {c.path[hop]}-{c.path[hop + 1]}: {msg.message} ({msg.code})"
            out += self._fail(c, why, now, code=msg.code)
        elif isinstance(msg, m.EprDone) and not c.done and c.end:
            c.busy = False
            out += self._next_extra(c, hop, now)
        return out

    def _link_pair(self, c: Circuit, hop: int, p: m.EprPair, now: float) -> list[Out]:
        if (hop, p.ent_id[2]) in c.discarded:  # its other half is void already
            c.discarded.discard((hop, p.ent_id[2]))
            if c.end:
                return self._replace(c, hop, p, now)
            self._free_pair(c.app, p)
            return self._open_hop(c, hop, now, dead=p.ent_id[2])
        if c.end:
            c.own[p.ent_id[2]] = p
            c.ready_at[p.ent_id[2]] = now
            return self._assemble(c, now)
        side = LEFT if hop < c.me else RIGHT
        c.waiting[side].append((p, now))  # in line; the front one is what the protocol sees
        self._promote(c, side)
        return []

    # -- ending --------------------------------------------------------------------------
    def _close(self, c: Circuit, reason: str, now: float) -> list[Out]:
        """The circuit's work here is over (done or failed): its link requests end, and
        what it held is freed."""
        self.circuits.pop(c.key, None)
        c.done = True
        out: list[Out] = []
        for w in c.links.values():
            if w.key is not None and self.wants.get(w.key) is w:
                peer = w.peer
                out += self._egp(peer, self.egps[peer].abort(w.key, e.Code.OTHER, reason, now), now)
        for w in c.links.values():
            if self.listening.get(w.purpose) is w:
                del self.listening[w.purpose]
                self.egps[w.peer].unlisten(w.purpose)
        for p in c.own.values():  # an end's (a repeater's go with its qubits, below)
            self._free_pair(c.holder, p)
        if c.dist is not None:
            self.memory.close(c.dist.app.app_id)
        c.own.clear()
        c.held.clear()
        c.records.clear()
        c.ready_at.clear()
        c.came.clear()
        if not c.end:
            self.memory.close(c.app.app_id)
            c.waiting.clear()
            c.inflight.clear()
            for key, (s, until) in list(self.qubit_waits.items()):  # their turn, in order
                if now >= until:  # its timeout passed: refused (the timer's check)
                    continue
                started = self._start_repeater(s, now, until)
                if started is None:
                    break
                del self.qubit_waits[key]
                out += started
        self.finished[c.key] = c
        while len(self.finished) > FINISHED_KEPT:
            self.finished.popitem(last=False)
        return out

    def _fail(
        self, c: Circuit, reason: str, now: float, *, tell: bool = True, code: str = "OTHER"
    ) -> list[Out]:
        """End circuit ``c`` here with an error (``tell``: and at the other nodes)."""
        if c.done:
            return []
        log.info("circuit %s ends at %r: %s", c.key, self.node, reason)
        out: list[Out] = []
        if tell:
            down = m.NetTeardown(origin=c.key[0], circuit=c.key[1], reason=reason)
            net = m.Net(from_node=self.node, msg=down)
            out += [ToNode(n, net) for n in c.path if n != self.node]
        out += self._close(c, reason, now)
        if c.want is not None and c.want.made < c.number:
            w = c.want
            text = f"end-to-end pairs over {'-'.join(c.path)}: {reason}"
            out += self._tell(w, m.EprFailed(req=w.msg.req, code=code, message=text, pairs=[]))
            c.want = w
        if c.end:
            out += self._void_unconfirmed(c, reason)
        return out

    def _void_unconfirmed(self, c: Circuit, reason: str) -> list[Out]:
        """Pairs of ``c`` delivered here that the far end has not confirmed are void, at
        both ends (its confirmation may cross our expiry: an expiry wins)."""
        book = self.ledger.open.get(c.far)
        seqs = [s for s in c.delivered if book is not None and s in book]
        c.delivered = [s for s in c.delivered if s not in seqs]
        if not seqs:
            return []
        text = f"the circuit over {'-'.join(c.path)} failed: {reason}"
        told, _ = self.ledger.expired(c.far, seqs, text)
        return [*told, self._expire_at(c.far, seqs, text)]

    def _room(self, c: Circuit, side: int) -> int:
        """Qubits the repeater's ``side`` of circuit ``c`` may take now."""
        return c.window - sum(1 for v in self.memory.held(c.app.app_id) if v % 2 == side)

    def _free_pair(self, app: App, p: m.EprPair) -> None:
        if app.app_id not in self.memory.quota:  # its qubits were freed with it
            return
        if p.qubit >= 0 and p.qubit in self.memory.held(app.app_id):
            self.memory.release(app.app_id, p.qubit)

    # -- the node's other inputs ---------------------------------------------------------
    def circuits_app_gone(self, app: App, now: float) -> list[Out]:
        out: list[Out] = []
        for pur, w in list(self.e2e_listening.items()):
            if w.app is app:
                del self.e2e_listening[pur]
        for c in list(self.circuits.values()):
            if c.app is app:
                out += self._fail(c, f"app {app.name!r} on {self.node!r} ended", now)
        return out

    def circuits_block_end(self, app: App, reason: str, now: float) -> list[Out]:
        out: list[Out] = []
        for pur, w in list(self.e2e_listening.items()):
            if w.app is app and w.index >= 0:
                del self.e2e_listening[pur]
        for c in list(self.circuits.values()):
            if c.app is app and c.want is not None and c.want.index >= 0:
                out += self._fail(c, f"the block that asked {reason}", now)
        return out

    def circuits_timer(self, now: float) -> list[Out]:
        out: list[Out] = []
        for pur, (s, until) in list(self.setups.items()):
            if now >= until:
                del self.setups[pur]
                out += self._refuse_setup(s, s.path[0], f"no app on {self.node!r} asked for it")
        for key, (s, until) in list(self.qubit_waits.items()):
            if now >= until:
                del self.qubit_waits[key]
                why = f"no qubits for the circuit at {self.node!r} within its timeout"
                out += self._refuse_setup(s, s.path[0], why)
        for pur, w in list(self.e2e_listening.items()):
            if now >= w.deadline:
                del self.e2e_listening[pur]
                text = (
                    f"no request from {w.msg.remote_app!r} on {w.peer!r} within {w.msg.timeout_s} s"
                )
                out += self._tell(w, m.EprFailed(req=w.msg.req, code="TIMEOUT", message=text))
        for c in list(self.circuits.values()):
            if now >= c.deadline + TIMEOUT_GRACE_S:
                out += self._fail(c, "it timed out", now, code="TIMEOUT")
            elif now >= c.wake_at:
                c.wake_at = math.inf
                out += self._protocol(c, partial(_timer, c.protocol, now=now), now)
        return out

    def next_circuit_deadline(self) -> float:
        t = min(
            (min(c.deadline + TIMEOUT_GRACE_S, c.wake_at) for c in self.circuits.values()),
            default=math.inf,
        )
        t = min([t, *(u for _, u in self.setups.values())])
        return min([t, *(w.deadline for w in self.e2e_listening.values())])

    def e2e_peer(self, peer: str) -> bool:
        """Whether ``peer`` is (or was lately) the far end of a circuit here."""
        return any(c.far == peer for c in (*self.circuits.values(), *self.finished.values()))
