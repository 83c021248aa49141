"""Link-layer entanglement generation protocol (EGP) endpoint, sans-IO, after Dahlberg et
al., "A link layer protocol for quantum networks" (SIGCOMM 2019).

How it works. One EGP sits at each end of a link. A local ``Create`` (create-and-keep
"K" or measure-directly "M", number of pairs, minimum fidelity, maximum time) is checked
against the link model (a fidelity the link cannot deliver is refused with UNSUPP before
anything is sent) and proposed to the peer EGP. The peer accepts it once an app there
asks for the same pairs (``listen``); a request for a purpose nobody asked for waits
there until its deadline. Requests form one queue that both ends order the same way:
the *master* end (the smaller node name) numbers them, as in the paper's distributed
queue. Only the head of the queue generates entanglement; a request is in the queue
once accepted, so one the peer holds for an app that has not asked yet blocks nobody.

Pairs are made in rounds: both ends hand their quantum process a ``Round`` with the
same round key (for up to ``pairs`` pairs, up to all the request still needs), which
sends an attempt to the link's heralding station; the station answers both ends with
the same ``RoundEnd``, listing every herald. Each herald yields ``Ok`` at both ends with
the same entanglement id (node A, node B, station sequence number); a quantum process
may report heralds before its round ends (``final=False``). A round that ends short of
its pairs starts the next, unless the request's deadline (a wall-clock time both ends
share) has passed, which fails it with TIMEOUT. A herald needs both ends' attempts, and
an end that has given up sends none, so a pair is delivered to both ends or to neither
even if the two ends' clocks disagree slightly about the deadline.

All times are wall-clock seconds (``now``), except device times reported by heralds.

State per request (one place, a table; an illegal event raises naming the request,
its state and the event, and changes nothing):

    PROPOSED --accept--> ACTIVE --last pair--> DONE
    PROPOSED --reject--> FAILED       ACTIVE --deadline / station error--> FAILED
"""

from __future__ import annotations

import enum
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from qnodeos.errors import LocalError
from qnodeos.lang.messages import EgpAccept, EgpReject, EgpRequest
from qnodeos.runtime.statemachine import next_state

from .models import LinkModel
from .station import Herald, Rejected, RoundEnd

ROUND_GRACE_S = 0.5  # how long past its window an attempt waits for the peer's
WAITING_MAX = 256  # peer requests held for purposes nobody asked for yet


MAX_PAIRS = 1_000_000  # pairs in one request (the app gets them streamed as they come)


def request_problem(kind: str, number: int, bases: str) -> str | None:
    """What is wrong with a request's type, number of pairs or bases (None: nothing)."""
    if kind not in ("K", "M", "R"):
        return (
            f"request type {kind!r}; use 'K' (keep), 'M' (measure) or 'R' (remote state "
            f"preparation: the creator measures, the receiver keeps)"
        )
    if not 1 <= number <= MAX_PAIRS:
        return f"number of pairs {number} not in 1..{MAX_PAIRS}"
    if not bases or set(bases) - set("XYZ"):
        return f"bases {bases!r}: use letters from X, Y, Z"
    return None


def remote_problem(kind: str, number: int, chosen: str, rotations: list[Any]) -> str | None:
    """What is wrong with the bases a creator chooses for the receiver (None: nothing)."""
    if not chosen and not rotations:
        return None
    if kind != "M":
        return f"the receiver's bases are chosen for measured pairs (M), not {kind}"
    if chosen and (len(chosen) != number or set(chosen) - set("XYZ")):
        return f"the receiver's chosen bases must be {number} letters from X, Y, Z"
    if rotations and len(rotations) not in (1, number):
        return f"give the receiver 1 or {number} rotations, not {len(rotations)}"
    if chosen and rotations:
        return "give the receiver chosen bases or rotations, not both"
    return None


class Code(enum.StrEnum):
    """Error codes of the link-layer paper."""

    UNSUPP = "UNSUPP"  # request cannot be served by this link (e.g. fidelity too high)
    NOTIME = "NOTIME"  # the maximum time is shorter than one attempt
    NORES = "NORES"  # no resources (e.g. no free communication qubit)
    TIMEOUT = "TIMEOUT"  # the maximum time passed before all pairs were made
    REJECTED = "REJECTED"  # the peer refused (nobody asked for these pairs)
    OTHER = "OTHER"  # anything else; the message says what
    EXPIRE = "EXPIRE"  # a delivered pair was lost


@dataclass(frozen=True, kw_only=True)
class Create:
    """A request from the local node for ``number`` pairs with ``remote``. ``bases``:
    for "M", each end measures each pair in one of these (chosen at random per end)."""

    remote: str
    purpose: str
    type: str = "K"
    number: int = 1
    min_fidelity: float = 0.0
    max_time_s: float = math.inf
    bases: str = "Z"
    remote_chosen: str = ""  # M: the receiver's bases, if it lets the creator choose
    remote_rotations: list[tuple[float, float, float]] = field(default_factory=list)


@dataclass(frozen=True, kw_only=True)
class Ok:
    """One pair delivered at this end."""

    origin: str
    create_id: int
    purpose: str
    type: str
    pair: int
    ent_id: tuple[str, str, int]
    bell_index: int
    goodness: float
    attempts: int  # in all rounds for this pair
    at_ns: float
    basis: str  # for "M": the basis this end measures in
    index: int = 0  # which pair of its round it was (0 = first)


@dataclass(frozen=True, kw_only=True)
class Oks:
    """Pairs ``pair`` onwards of one request delivered at this end, as columns: one
    event for a round's heralds (what ``Ok`` says of one pair, ``oks()`` says of each).
    ``outcomes``: per pair, what its herald carried (``Heralds.outcomes``)."""

    origin: str
    create_id: int
    purpose: str
    type: str
    pair: int
    ends: tuple[str, str]  # the entanglement ids' nodes (their station numbers: seqs)
    seqs: Sequence[int]
    bell_index: Sequence[int]
    goodness: float
    attempts: Sequence[int]
    at_ns: Sequence[float]
    bases: Sequence[str]  # for "M": where this end measures each pair
    index: int  # which pair of its round the first was
    outcomes: Sequence[Sequence[int]]

    def __len__(self) -> int:
        return len(self.seqs)

    def oks(self) -> list[Ok]:
        """The pairs one by one."""
        return [
            Ok(
                origin=self.origin,
                create_id=self.create_id,
                purpose=self.purpose,
                type=self.type,
                pair=self.pair + i,
                ent_id=(self.ends[0], self.ends[1], seq),
                bell_index=self.bell_index[i],
                goodness=self.goodness,
                attempts=self.attempts[i],
                at_ns=self.at_ns[i],
                basis=self.bases[i] if self.bases else "",
                index=self.index + i,
            )
            for i, seq in enumerate(self.seqs)
        ]


@dataclass(frozen=True, kw_only=True)
class Heralds:
    """A station's ``RoundEnd`` as a node's quantum process reports it, with the heralds
    as columns (in time order): station numbers, attempts since the previous herald,
    device times, Bell indices, and per herald the outcomes of its recipe (passed on
    in ``Oks``). ``attempts`` and ``again`` as in ``RoundEnd``."""

    key: str
    seqs: Sequence[int]
    herald_attempts: Sequence[int]
    at_ns: Sequence[float]
    bell_index: Sequence[int]
    outcomes: Sequence[Sequence[int]]
    attempts: int = 0
    again: bool = False


@dataclass(frozen=True, kw_only=True)
class Err:
    origin: str
    create_id: int
    code: Code
    message: str


@dataclass(frozen=True, kw_only=True)
class Accepted:
    """This end accepted the peer's request (an app here asked for it)."""

    spec: EgpRequest


@dataclass(frozen=True)
class ToPeer:
    msg: EgpRequest | EgpAccept | EgpReject


@dataclass(frozen=True, kw_only=True)
class Round:
    """Attempt round ``key`` for request ``request``, for its pairs ``pair`` onwards (up
    to ``pairs`` of them): at most ``max_attempts`` attempts, waiting for the peer's
    attempt until wall time ``expires_s``. For "M", ``bases[i]`` is where this end
    measures the round's i-th pair (drawn independently at each end, per pair)."""

    key: str
    request: tuple[str, int]
    pair: int
    max_attempts: int
    expires_s: float
    kind: str = "K"
    pairs: int = 1
    bases: tuple[str, ...] = ()


@dataclass(frozen=True)
class ToLocal:
    event: Ok | Oks | Err | Accepted


Out = ToPeer | Round | ToLocal


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

    spec: EgpRequest
    queue: int | None = None
    state: State = State.PROPOSED
    pair: int = 0
    retry: int = 0
    attempts: int = 0  # attempts for the current pair in earlier rounds
    bases: tuple[str, ...] = ()  # for "M": where this end measures the pairs to come
    round_first: int = 0  # the first pair of the round under way
    in_round: bool = False

    @property
    def key(self) -> tuple[str, int]:
        return (self.spec.origin, self.spec.create_id)

    def fire(self, ev: Ev) -> None:
        who = f"request {self.spec.origin}:{self.spec.create_id}"
        self.state = next_state(TRANSITIONS, self.state, ev, who)

    def round_key(self) -> str:
        return f"{self.spec.origin}:{self.spec.create_id}:{self.pair}:{self.retry}"


class EGP:
    """The EGP endpoint of ``node`` on the link to ``peer``. ``speed`` is device ns per
    wall ns (``inf``: the device runs as fast as it can)."""

    def __init__(
        self,
        *,
        node: str,
        peer: str,
        model: LinkModel,
        rng: np.random.Generator,
        speed: float = 1.0,
        round_attempts: int = 10_000,
        round_pairs: int = 1000,
        schedule: str = "",
    ) -> None:
        if node == peer:
            raise LocalError(f"an EGP cannot link {node!r} to itself")
        self.node = node
        self.peer = peer
        self.model = model
        self.rng = rng
        self.speed = speed
        self.round_attempts = round_attempts
        self.round_pairs = round_pairs
        self.schedule = schedule  # our time bins for this link, as text ("": continuous)
        self.master = node < peer
        self.listening: dict[str, tuple[str, int]] = {}  # purpose -> (type, number)
        self.waiting: dict[tuple[str, int], EgpRequest] = {}  # peer requests not yet asked for
        self.requests: dict[tuple[str, int], Request] = {}
        self.by_round: dict[str, Request] = {}
        self._next_create = 0
        self._next_queue = 0
        self.ends = (min(node, peer), max(node, peer))

    def _cycle_s(self) -> float:
        return self.model.cycle_ns * 1e-9 / self.speed

    # -- local API ----------------------------------------------------------------------
    def listen(self, purpose: str, type: str, number: int, now: float) -> list[Out]:
        """An app here asks for ``number`` pairs of ``type`` on ``purpose``: accept the
        peer's matching request (now, if it already came; else when it comes)."""
        self.listening[purpose] = (type, number)
        out: list[Out] = []
        for key, msg in list(self.waiting.items()):
            if msg.purpose == purpose:
                del self.waiting[key]
                out += self._peer_request(msg, now)
                if purpose not in self.listening:
                    break
        return out

    def unlisten(self, purpose: str) -> None:
        self.listening.pop(purpose, None)

    def create(self, req: Create, now: float) -> tuple[int, list[Out]]:
        """Propose a request; returns its create id and what to send."""
        self._next_create += 1
        cid = self._next_create

        def refuse(code: Code, msg: str) -> tuple[int, list[Out]]:
            return cid, [ToLocal(Err(origin=self.node, create_id=cid, code=code, message=msg))]

        f = self.model.expected_fidelity()
        if req.remote != self.peer:
            return refuse(Code.UNSUPP, f"this link goes to {self.peer!r}, not {req.remote!r}")
        problem = request_problem(req.type, req.number, req.bases)
        if problem is not None:
            return refuse(Code.UNSUPP, problem)
        if not 0.0 <= req.min_fidelity <= 1.0:
            return refuse(Code.UNSUPP, f"minimum fidelity {req.min_fidelity} not in [0, 1]")
        if req.min_fidelity > f:
            return refuse(
                Code.UNSUPP,
                f"minimum fidelity {req.min_fidelity} is above what "
                f"the {self.model.kind} link delivers ({f:.4f})",
            )
        if not req.max_time_s > self._cycle_s():
            return refuse(
                Code.NOTIME,
                f"maximum time {req.max_time_s} s is not longer than "
                f"one attempt ({self._cycle_s():.3g} s)",
            )
        spec = EgpRequest(
            origin=self.node,
            create_id=cid,
            purpose=req.purpose,
            kind=req.type,
            number=req.number,
            min_fidelity=req.min_fidelity,
            deadline_s=now + req.max_time_s,
            bases=req.bases,
            queue=self._take_queue() if self.master else None,
            schedule=self.schedule,
            remote_chosen=req.remote_chosen,
            remote_rotations=req.remote_rotations,
        )
        r = Request(spec=spec, queue=spec.queue)
        self.requests[r.key] = r
        return cid, [ToPeer(spec)]

    def _take_queue(self) -> int:
        self._next_queue += 1
        return self._next_queue

    def abort(self, key: tuple[str, int], code: Code, text: str, now: float) -> list[Out]:
        """Fail request ``key`` here (this end cannot go on: no qubit, device error) and
        tell the peer, which fails it too. Call it between rounds: this end then makes
        no more attempts for it, so no pair can herald at the peer alone."""
        r = self.requests.get(key)
        if r is None:
            return []
        tell: list[Out] = [
            ToPeer(
                EgpReject(
                    origin=r.spec.origin,
                    create_id=r.spec.create_id,
                    code=code,
                    message=f"{self.node!r} gave up: {text}",
                )
            )
        ]
        return tell + self._fail(r, code, text, now)

    # -- from the peer -------------------------------------------------------------------
    def peer_message(self, msg: EgpRequest | EgpAccept | EgpReject, now: float) -> list[Out]:
        if isinstance(msg, EgpRequest):
            return self._peer_request(msg, now)
        if isinstance(msg, EgpReject) and (msg.origin, msg.create_id) in self.waiting:
            del self.waiting[(msg.origin, msg.create_id)]  # withdrawn before an app asked
            return []
        r = self.requests.get((msg.origin, msg.create_id))
        if r is not None and r.state is State.ACTIVE and isinstance(msg, EgpReject):
            code = Code(msg.code) if msg.code in Code.__members__ else Code.OTHER
            return self._fail(r, code, msg.message, now)  # the peer gave up on it
        if r is None or r.spec.origin != self.node or r.state is not State.PROPOSED:
            return []  # about a request we no longer hold (or a duplicate)
        if isinstance(msg, EgpAccept):
            r.queue = msg.queue
            r.fire(Ev.ACCEPT)
            return self._run_head(now)
        r.fire(Ev.REJECT)
        del self.requests[r.key]
        code = Code(msg.code) if msg.code in Code.__members__ else Code.OTHER
        out: list[Out] = [
            ToLocal(Err(origin=self.node, create_id=msg.create_id, code=code, message=msg.message))
        ]
        return out + self._run_head(now)

    def _peer_request(self, msg: EgpRequest, now: float) -> list[Out]:
        def reject(code: Code, text: str) -> list[Out]:
            return [
                ToPeer(
                    EgpReject(origin=msg.origin, create_id=msg.create_id, code=code, message=text)
                )
            ]

        if msg.origin != self.peer:
            return reject(Code.OTHER, f"request from {msg.origin!r} on the link to {self.peer!r}")
        if (msg.origin, msg.create_id) in self.requests:
            return []  # a duplicate
        if self.master == (msg.queue is not None):
            return reject(Code.OTHER, "queue number from the wrong end")
        if msg.schedule != self.schedule:
            theirs, ours = msg.schedule or "continuous", self.schedule or "continuous"
            return reject(
                Code.UNSUPP,
                f"the two ends disagree on the link's time bins ({msg.origin!r}: {theirs}; "
                f"{self.node!r}: {ours}); give both the same links[].schedule",
            )
        if msg.min_fidelity > self.model.expected_fidelity():
            return reject(Code.UNSUPP, f"minimum fidelity {msg.min_fidelity} unreachable")
        problem = request_problem(msg.kind, msg.number, msg.bases) or remote_problem(
            msg.kind, msg.number, msg.remote_chosen, msg.remote_rotations
        )
        if problem is not None:
            return reject(Code.UNSUPP, f"bad request: {problem}")
        want = self.listening.get(msg.purpose)
        if want is None:
            if len(self.waiting) >= WAITING_MAX:
                return reject(Code.REJECTED, f"{self.node!r} holds too many unasked requests")
            self.waiting[(msg.origin, msg.create_id)] = msg
            return []
        # a receiver that keeps (K) takes a creator's R too: it keeps either way
        if want[1] != msg.number or want[0] not in (msg.kind, "K" if msg.kind == "R" else ""):
            return reject(
                Code.REJECTED,
                f"the app on {self.node!r} asked for {want[1]} pair(s) of type {want[0]}, "
                f"not {msg.number} of type {msg.kind}",
            )
        del self.listening[msg.purpose]
        queue = msg.queue if msg.queue is not None else self._take_queue()
        r = Request(spec=msg, queue=queue)
        r.fire(Ev.ACCEPT)
        self.requests[r.key] = r
        out: list[Out] = [
            ToLocal(Accepted(spec=msg)),
            ToPeer(EgpAccept(origin=msg.origin, create_id=msg.create_id, queue=queue)),
        ]
        return out + self._run_head(now)

    # -- rounds --------------------------------------------------------------------------
    def head(self) -> Request | None:
        """The accepted request with the smallest queue number. While an accept is in
        flight the two ends may briefly disagree on it; the station then answers both
        attempts at once and they try again (see ``HeraldingStation``)."""
        queued = [r for r in self.requests.values() if r.state is State.ACTIVE]
        return min(queued, key=lambda r: r.queue or 0, default=None)

    def _run_head(self, now: float) -> list[Out]:
        r = self.head()
        if r is None or r.state is not State.ACTIVE or r.in_round:
            return []
        left_s = r.spec.deadline_s - now
        if left_s <= 0:
            return self._fail(r, Code.TIMEOUT, self._timeout_text(r), now)
        attempts = self.round_attempts
        if math.isfinite(self.speed) and math.isfinite(left_s):
            attempts = max(1, min(attempts, int(left_s / self._cycle_s())))
        window_s = attempts * self._cycle_s() if math.isfinite(self.speed) else 0.0
        r.in_round = True
        r.round_first = r.pair
        key = r.round_key()
        self.by_round[key] = r
        pairs = min(r.spec.number - r.pair, self.round_pairs)
        if r.spec.kind in ("M", "R") and len(r.bases) < pairs:
            # Each pair's basis, drawn at this end alone; drawn once, so a round that
            # retries (or makes fewer pairs) keeps the bases of the pairs still to make.
            draws = self.rng.integers(len(r.spec.bases), size=pairs - len(r.bases))
            r.bases += tuple(map(r.spec.bases.__getitem__, draws.tolist()))
        return [
            Round(
                key=key,
                request=r.key,
                pair=r.pair,
                max_attempts=attempts,
                expires_s=min(r.spec.deadline_s, now + window_s + ROUND_GRACE_S),
                kind=r.spec.kind,
                pairs=pairs,
                bases=r.bases[:pairs],
            )
        ]

    def _timeout_text(self, r: Request) -> str:
        return f"{r.pair} of {r.spec.number} pair(s) made before the maximum time"

    def station_message(
        self, msg: RoundEnd | Heralds | Rejected, now: float, *, final: bool = True
    ) -> list[Out]:
        """The station's answer for a round of ours: its heralds, and (``final``) how
        it ended. A quantum process may pass heralds on before the round ends. Heralds
        in a ``RoundEnd`` give an ``Ok`` each; in ``Heralds``, one ``Oks`` for all."""
        r = self.by_round.get(msg.key)
        if r is None or r.state is not State.ACTIVE:
            return []
        if isinstance(msg, Rejected):
            del self.by_round[msg.key]
            r.in_round = False
            return self._fail(r, Code.OTHER, f"heralding station refused: {msg.reason}", now)
        out: list[Out] = []
        if isinstance(msg, Heralds):
            n = min(len(msg.seqs), r.spec.number - r.pair)
            if n:
                out.append(ToLocal(self._oks(r, msg, n)))
            if r.pair == r.spec.number:
                return out + self._last_pair(r, msg.key, now)
        else:
            for h in msg.heralds:
                out.append(ToLocal(self._ok(r, h)))
                if r.pair == r.spec.number:
                    return out + self._last_pair(r, msg.key, now)
        if not final:
            return out
        del self.by_round[msg.key]
        r.in_round = False
        r.bases = r.bases[r.pair - r.round_first :]  # drop those the round's pairs used
        if not msg.again:  # a round that ran: both ends count it
            r.retry += 1
            r.attempts += msg.attempts
        if now >= r.spec.deadline_s:
            return out + self._fail(r, Code.TIMEOUT, self._timeout_text(r), now)
        return out + self._run_head(now)

    def _last_pair(self, r: Request, key: str, now: float) -> list[Out]:
        r.fire(Ev.LAST_PAIR)
        del self.requests[r.key]
        del self.by_round[key]
        return self._run_head(now)

    def _ok(self, r: Request, h: Herald) -> Ok:
        """Pair ``r.pair`` of request ``r`` heralded: ``h``."""
        index = r.pair - r.round_first
        ok = Ok(
            origin=r.spec.origin,
            create_id=r.spec.create_id,
            purpose=r.spec.purpose,
            type=r.spec.kind,
            pair=r.pair,
            ent_id=(self.ends[0], self.ends[1], h.seq),
            bell_index=h.bell_index,
            goodness=self.model.expected_fidelity(),
            attempts=r.attempts + h.attempts,
            at_ns=h.at_ns,
            basis=r.bases[index] if r.spec.kind in ("M", "R") else "",
            index=index,
        )
        r.pair += 1
        r.attempts = 0
        return ok

    def _oks(self, r: Request, h: Heralds, n: int) -> Oks:
        """Pairs ``r.pair`` onwards of request ``r`` heralded: the first ``n`` of ``h``."""
        index = r.pair - r.round_first
        attempts = list(h.herald_attempts[:n])
        attempts[0] += r.attempts
        oks = Oks(
            origin=r.spec.origin,
            create_id=r.spec.create_id,
            purpose=r.spec.purpose,
            type=r.spec.kind,
            pair=r.pair,
            ends=self.ends,
            seqs=h.seqs[:n],
            bell_index=h.bell_index[:n],
            goodness=self.model.expected_fidelity(),
            attempts=attempts,
            at_ns=h.at_ns[:n],
            bases=r.bases[index : index + n] if r.spec.kind in ("M", "R") else (),
            index=index,
            outcomes=h.outcomes[:n],
        )
        r.pair += n
        r.attempts = 0
        return oks

    def _fail(self, r: Request, code: Code, text: str, now: float) -> list[Out]:
        r.fire(Ev.FAIL)
        del self.requests[r.key]
        for k, v in list(self.by_round.items()):
            if v is r:  # a round still under way ends with its request
                del self.by_round[k]
        out: list[Out] = [
            ToLocal(Err(origin=r.spec.origin, create_id=r.spec.create_id, code=code, message=text))
        ]
        return out + self._run_head(now)

    # -- timers --------------------------------------------------------------------------
    def handle_timer(self, now: float) -> list[Out]:
        """Fail proposals the peer never answered, and drop peer requests nobody here
        asked for, once their maximum time has passed."""
        out: list[Out] = []
        for r in list(self.requests.values()):
            if r.state is State.PROPOSED and r.spec.deadline_s <= now:
                out += self._fail(
                    r,
                    Code.TIMEOUT,
                    f"{self.peer!r} did not accept the request before its maximum time "
                    f"(no app there asked for these pairs, or the node does not answer)",
                    now,
                )
        for key, msg in list(self.waiting.items()):
            if msg.deadline_s <= now:
                del self.waiting[key]
        return out
