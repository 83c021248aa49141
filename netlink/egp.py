"""Link-layer entanglement generation protocol (EGP) endpoint, sans-IO, after Dahlberg et
al., "A link layer protocol for quantum networks" (SIGCOMM 2019).

How it works. One EGP sits at each end of a link. A local ``Create`` (create-and-keep
"K" or measure-directly "M", number of pairs, minimum fidelity, maximum time) is checked
against the link model (a fidelity the link cannot deliver is refused with UNSUPP before
anything is sent) and proposed to the peer EGP. The peer accepts it only if an app
listens on that purpose id (else REJECTED). Requests form one queue that both ends
order the same way: the *master* end (the smaller node name) numbers them, as in the
paper's distributed queue. Only the head of the queue generates entanglement.

Each pair is made in rounds: both ends send the heralding station an ``Attempt`` with
the same round key; the station answers both ends with the same ``Heralded`` or
``NoHerald``. A herald yields ``Ok`` at both ends with the same entanglement id
(node A, node B, station sequence number); no herald starts the next round, unless the
request's deadline has passed, which then fails with TIMEOUT at both ends, because both
judge the deadline against the same station times. A pair is thus delivered to both
ends or to neither.

State per request (one place, a table; an illegal event raises naming the request,
its state and the event, and changes nothing):

    PROPOSED --accept--> ACTIVE --last pair--> DONE
    PROPOSED --reject--> FAILED       ACTIVE --deadline / station error--> FAILED
"""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass, field

import numpy as np

from qnodeos.errors import LocalError
from qnodeos.statemachine import next_state

from .models import LinkModel, Matrix
from .station import Attempt, Heralded, NoHerald, Rejected


class Code(enum.StrEnum):
    """Error codes of the link-layer paper."""

    UNSUPP = "UNSUPP"  # request cannot be served by this link (e.g. fidelity too high)
    NOTIME = "NOTIME"  # the maximum time is shorter than one attempt
    NORES = "NORES"  # no resources (e.g. no free communication qubit)
    TIMEOUT = "TIMEOUT"  # the maximum time passed before all pairs were made
    REJECTED = "REJECTED"  # the peer refused (nobody listens on that purpose)
    OTHER = "OTHER"  # anything else; the message says what
    EXPIRE = "EXPIRE"  # a delivered pair was lost


@dataclass(frozen=True, kw_only=True)
class Create:
    """A request from the local node for ``number`` pairs with ``remote``."""

    remote: str
    purpose: int
    type: str = "K"
    number: int = 1
    min_fidelity: float = 0.0
    max_time_ns: float = math.inf
    random_bases: bool = False


@dataclass(frozen=True, kw_only=True)
class PeerRequest:
    origin: str
    create_id: int
    purpose: int
    type: str
    number: int
    min_fidelity: float
    deadline_ns: float
    random_bases: bool
    queue: int | None  # set when the master proposes


@dataclass(frozen=True, kw_only=True)
class PeerAccept:
    origin: str
    create_id: int
    queue: int  # the position the master gave it


@dataclass(frozen=True, kw_only=True)
class PeerReject:
    origin: str
    create_id: int
    code: Code
    message: str


PeerMessage = PeerRequest | PeerAccept | PeerReject


@dataclass(frozen=True, kw_only=True)
class Ok:
    """One pair delivered at this end."""

    origin: str
    create_id: int
    purpose: int
    type: str
    pair: int
    ent_id: tuple[str, str, int]
    bell_index: int
    goodness: float
    at_ns: float
    rho: Matrix
    basis: str | None  # for "M" with random bases: X, Y or Z


@dataclass(frozen=True, kw_only=True)
class Err:
    origin: str
    create_id: int
    code: Code
    message: str


@dataclass(frozen=True)
class ToPeer:
    msg: PeerMessage


@dataclass(frozen=True)
class ToStation:
    attempt: Attempt


@dataclass(frozen=True)
class ToLocal:
    event: Ok | Err


Out = ToPeer | ToStation | ToLocal


class State(enum.Enum):
    PROPOSED = "proposed"
    ACTIVE = "active"
    DONE = "done"
    FAILED = "failed"


class Ev(enum.Enum):
    ACCEPT = "accept"
    REJECT = "reject"
    LAST_PAIR = "last pair"
    FAIL = "fail"


TRANSITIONS: dict[tuple[State, Ev], State] = {
    (State.PROPOSED, Ev.ACCEPT): State.ACTIVE,
    (State.PROPOSED, Ev.REJECT): State.FAILED,
    (State.PROPOSED, Ev.FAIL): State.FAILED,
    (State.ACTIVE, Ev.LAST_PAIR): State.DONE,
    (State.ACTIVE, Ev.FAIL): State.FAILED,
}


@dataclass
class Request:
    """A request as both ends agreed it (``spec``) and this end's progress on it."""

    spec: PeerRequest
    queue: int | None = None
    state: State = State.PROPOSED
    pair: int = 0
    retry: int = 0
    in_round: bool = False
    delivered: list[Ok] = field(default_factory=list)

    @property
    def key(self) -> tuple[str, int]:
        return (self.spec.origin, self.spec.create_id)

    def fire(self, ev: Ev) -> None:
        who = f"request {self.spec.origin}:{self.spec.create_id}"
        self.state = next_state(TRANSITIONS, self.state, ev, who)

    def round_key(self) -> str:
        return f"{self.spec.origin}:{self.spec.create_id}:{self.pair}:{self.retry}"


class EGP:
    """The EGP endpoint of ``node`` on the link to ``peer``."""

    def __init__(
        self,
        *,
        node: str,
        peer: str,
        model: LinkModel,
        rng: np.random.Generator,
        round_attempts: int = 10_000,
        max_pairs: int = 10_000,
    ) -> None:
        if node == peer:
            raise LocalError(f"an EGP cannot link {node!r} to itself")
        self.node = node
        self.peer = peer
        self.model = model
        self.rng = rng
        self.round_attempts = round_attempts
        self.max_pairs = max_pairs
        self.master = node < peer
        self.listening: set[int] = set()
        self.requests: dict[tuple[str, int], Request] = {}
        self.by_round: dict[str, Request] = {}
        self._next_create = 0
        self._next_queue = 0
        self.ends = (min(node, peer), max(node, peer))

    # -- local API ----------------------------------------------------------------------
    def listen(self, purpose: int) -> None:
        """Accept requests from the peer for ``purpose`` (an app has an EPR socket)."""
        self.listening.add(purpose)

    def create(self, req: Create, now_ns: float) -> tuple[int, list[Out]]:
        """Propose a request; returns its create id and what to send."""
        self._next_create += 1
        cid = self._next_create

        def refuse(code: Code, msg: str) -> tuple[int, list[Out]]:
            return cid, [ToLocal(Err(origin=self.node, create_id=cid, code=code, message=msg))]

        f = self.model.expected_fidelity()
        if req.remote != self.peer:
            return refuse(Code.UNSUPP, f"this link goes to {self.peer!r}, not {req.remote!r}")
        if req.type not in ("K", "M"):
            return refuse(Code.UNSUPP, f"request type {req.type!r}; use 'K' or 'M'")
        if not 1 <= req.number <= self.max_pairs:
            return refuse(Code.UNSUPP, f"number of pairs {req.number} not in 1..{self.max_pairs}")
        if req.min_fidelity > f:
            return refuse(
                Code.UNSUPP,
                f"minimum fidelity {req.min_fidelity} is above what "
                f"the {self.model.kind} link delivers ({f:.4f})",
            )
        if req.max_time_ns < self.model.cycle_ns:
            return refuse(
                Code.NOTIME,
                f"maximum time {req.max_time_ns} ns is shorter than "
                f"one attempt ({self.model.cycle_ns} ns)",
            )
        spec = PeerRequest(
            origin=self.node,
            create_id=cid,
            purpose=req.purpose,
            type=req.type,
            number=req.number,
            min_fidelity=req.min_fidelity,
            deadline_ns=now_ns + req.max_time_ns,
            random_bases=req.random_bases,
            queue=self._take_queue() if self.master else None,
        )
        r = Request(spec=spec, queue=spec.queue)
        self.requests[r.key] = r
        return cid, [ToPeer(spec)]

    def _take_queue(self) -> int:
        self._next_queue += 1
        return self._next_queue

    # -- from the peer -------------------------------------------------------------------
    def peer_message(self, msg: PeerMessage, now_ns: float) -> list[Out]:
        if isinstance(msg, PeerRequest):
            return self._peer_request(msg, now_ns)
        r = self.requests.get((msg.origin, msg.create_id))
        if r is None or r.spec.origin != self.node:
            return []  # about a request we no longer hold
        if isinstance(msg, PeerAccept):
            r.queue = msg.queue
            r.fire(Ev.ACCEPT)
            return self._run_head(now_ns)
        r.fire(Ev.REJECT)
        del self.requests[r.key]
        return [
            ToLocal(
                Err(origin=self.node, create_id=msg.create_id, code=msg.code, message=msg.message)
            )
        ]

    def _peer_request(self, msg: PeerRequest, now_ns: float) -> list[Out]:
        def reject(code: Code, text: str) -> list[Out]:
            return [
                ToPeer(
                    PeerReject(origin=msg.origin, create_id=msg.create_id, code=code, message=text)
                )
            ]

        if msg.origin != self.peer:
            return reject(Code.OTHER, f"request from {msg.origin!r} on the link to {self.peer!r}")
        if msg.purpose not in self.listening:
            return reject(
                Code.REJECTED, f"no app on {self.node!r} listens on purpose {msg.purpose}"
            )
        if msg.min_fidelity > self.model.expected_fidelity():
            return reject(Code.UNSUPP, f"minimum fidelity {msg.min_fidelity} unreachable")
        if self.master == (msg.queue is not None):
            return reject(Code.OTHER, "queue number from the wrong end")
        queue = msg.queue if msg.queue is not None else self._take_queue()
        r = Request(spec=msg, queue=queue)
        r.fire(Ev.ACCEPT)
        self.requests[r.key] = r
        out: list[Out] = [
            ToPeer(PeerAccept(origin=msg.origin, create_id=msg.create_id, queue=queue))
        ]
        return out + self._run_head(now_ns)

    # -- rounds --------------------------------------------------------------------------
    def head(self) -> Request | None:
        """The queued request with the smallest number. A queued request still awaiting
        the peer's accept holds the head too, so both ends work on the same one."""
        queued = [r for r in self.requests.values() if r.queue is not None]
        return min(queued, key=lambda r: r.queue or 0, default=None)

    def _run_head(self, now_ns: float) -> list[Out]:
        r = self.head()
        if r is None or r.state is not State.ACTIVE or r.in_round:
            return []
        left = (
            max(1, int((r.spec.deadline_ns - now_ns) // self.model.cycle_ns))
            if math.isfinite(r.spec.deadline_ns)
            else self.round_attempts
        )
        r.in_round = True
        key = r.round_key()
        self.by_round[key] = r
        return [
            ToStation(
                Attempt(
                    node=self.node,
                    key=key,
                    start_ns=max(now_ns, 0.0),
                    max_attempts=min(self.round_attempts, left),
                )
            )
        ]

    def station_message(self, msg: Heralded | NoHerald | Rejected, now_ns: float) -> list[Out]:
        r = self.by_round.pop(msg.key, None)
        if r is None or r.state is not State.ACTIVE:
            return []
        r.in_round = False
        if isinstance(msg, Rejected):
            return self._fail(r, Code.OTHER, f"heralding station refused: {msg.reason}", now_ns)
        if isinstance(msg, NoHerald):
            if msg.at_ns + self.model.cycle_ns > r.spec.deadline_ns:
                return self._fail(
                    r,
                    Code.TIMEOUT,
                    f"{r.pair} of {r.spec.number} pair(s) made before the maximum time",
                    now_ns,
                )
            r.retry += 1
            return self._run_head(max(now_ns, msg.at_ns))
        basis = None
        if r.spec.type == "M" and r.spec.random_bases:
            basis = "XYZ"[int(self.rng.integers(3))]
        ok = Ok(
            origin=r.spec.origin,
            create_id=r.spec.create_id,
            purpose=r.spec.purpose,
            type=r.spec.type,
            pair=r.pair,
            ent_id=(self.ends[0], self.ends[1], msg.seq),
            bell_index=msg.bell_index,
            goodness=self.model.expected_fidelity(),
            at_ns=msg.at_ns,
            rho=msg.rho,
            basis=basis,
        )
        r.delivered.append(ok)
        r.pair += 1
        r.retry = 0
        out: list[Out] = [ToLocal(ok)]
        if r.pair == r.spec.number:
            r.fire(Ev.LAST_PAIR)
            del self.requests[r.key]
        return out + self._run_head(max(now_ns, msg.at_ns))

    def _fail(self, r: Request, code: Code, text: str, now_ns: float) -> list[Out]:
        r.fire(Ev.FAIL)
        del self.requests[r.key]
        out: list[Out] = [
            ToLocal(Err(origin=r.spec.origin, create_id=r.spec.create_id, code=code, message=text))
        ]
        return out + self._run_head(now_ns)

    # -- timers --------------------------------------------------------------------------
    def next_deadline(self) -> float:
        """When a proposed request (peer silent) reaches its maximum time."""
        return min(
            (r.spec.deadline_ns for r in self.requests.values() if r.state is State.PROPOSED),
            default=math.inf,
        )

    def handle_timer(self, now_ns: float) -> list[Out]:
        out: list[Out] = []
        for r in list(self.requests.values()):
            if r.state is State.PROPOSED and r.spec.deadline_ns <= now_ns:
                out += self._fail(
                    r,
                    Code.TIMEOUT,
                    f"{self.peer!r} did not answer the request before its maximum time",
                    now_ns,
                )
        return out
