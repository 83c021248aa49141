"""Every message that crosses a process boundary, as frozen keyword-only structs.

Three conversations:
- app <-> classical process (the app API): Register/Registered, Submit/BlockDone/
  BlockFailed, Heartbeat, Stop/Stopped, SendMsg/SendDone/SendFailed and Delivered for
  classical messages between apps, and ErrorReply for input the node could not use;
- classical process <-> quantum process: DeviceRequest/DeviceReply (a batch of
  physical instructions, one outcome per instruction) and Ping/Pong;
- classical process <-> classical process of another node: Carry/CarryAck/CarryNack,
  apps' classical messages, acknowledged node to node.
Encoding and validation live in ``codec``.
"""

from __future__ import annotations

from typing import Annotated, Union

import msgspec

from .bounds import (
    MAX_LIST,
    Count,
    Data,
    DeviceNs,
    DeviceNsInt,
    Epoch,
    Key,
    Name,
    Probability,
    Seconds,
    Short,
    SignedCount,
    Text,
    WallTime,
)
from .program import MAX_BLOCK_PAIRS, Angles, Subroutine

Qubits = Annotated[list[Count], msgspec.Meta(max_length=MAX_LIST)]
Outcomes = Annotated[list[int], msgspec.Meta(max_length=MAX_LIST)]
Priority = Annotated[int, msgspec.Meta(ge=-1000, le=1000)]
QubitCount = Annotated[int, msgspec.Meta(ge=0, le=1024)]


class ProcId(msgspec.Struct, frozen=True, kw_only=True):
    """An OS process, as it names itself (``qnodeos.runtime.procinfo``): pid, start time (clock
    ticks after boot: with the pid, it names one process, never a later one that reuses
    the pid) and ``host``, the machine's boot id and pid namespace. Sent so that whoever
    judges this process's silence can ask the OS whether it is alive, stopped or gone."""

    pid: Annotated[int, msgspec.Meta(ge=1, le=1 << 31)]
    start: Annotated[int, msgspec.Meta(ge=0, le=1 << 62)]
    host: Annotated[str, msgspec.Meta(max_length=128)]


# -- app API ---------------------------------------------------------------------------


class Register(msgspec.Struct, frozen=True, kw_only=True, tag="register"):
    """App -> node: start a session with a qubit quota and a scheduling priority.
    ``exclusive``: no other app may hold qubits while this one is connected (e.g. to
    use collective gates on a trapped-ion device, or to keep others' pulses away)."""

    app: Name
    qubits: QubitCount
    priority: Priority = 0
    exclusive: bool = False
    proc: ProcId | None = None  # the app's process (see ProcId)


class Registered(msgspec.Struct, frozen=True, kw_only=True, tag="registered"):
    """Node -> app: the session is open."""

    app_id: Count
    node: Name
    device: Name
    native_gates: Annotated[list[Short], msgspec.Meta(max_length=64)]
    lease_s: Seconds
    proc: ProcId | None = None  # the node's classical process (see ProcId)


class Submit(msgspec.Struct, frozen=True, kw_only=True, tag="submit"):
    """App -> node: run a subroutine as one block. ``deadline_s`` (relative) is used by
    the EDF scheduling policy."""

    block: Count
    sub: Subroutine
    deadline_s: Seconds | None = None


NQ_MAX_BYTES = 4 + 7 * 4096  # a NetQASM binary subroutine: metadata + 7-byte commands
NQ_MAX_SOCKETS = 64


class NqSocket(msgspec.Struct, frozen=True, kw_only=True, array_like=True):
    """A NetQASM EPR socket of the submitting app: its id, the node id NetQASM uses for
    the remote node, and who that is (node and app names); ``min_fidelity`` in 0..1
    (0: no constraint)."""

    id: Annotated[int, msgspec.Meta(ge=0, le=255)]
    node_id: Annotated[int, msgspec.Meta(ge=0, le=1 << 20)]
    node: Name
    app: Name
    min_fidelity: Probability = 0.0


class SubmitNetQASM(msgspec.Struct, frozen=True, kw_only=True, tag="submit_nq"):
    """App -> node: run a NetQASM subroutine as one block. ``code`` is its binary
    encoding (``form`` "binary", as netqasm's ``bytes(subroutine)``) or its text
    (``form`` "text"); ``flavour`` says how to read instruction ids (vanilla, nv,
    trapped_ion). The app's NetQASM registers and arrays persist from block to block
    until it sends ``fresh`` (a new NetQASM connection); ``stop`` (the connection's end)
    releases every qubit the app holds and forgets them. ``sockets``: its EPR sockets."""

    block: Count
    code: Annotated[bytes, msgspec.Meta(max_length=NQ_MAX_BYTES * 8)]
    form: Short = "binary"
    flavour: Short = "vanilla"
    sockets: Annotated[list[NqSocket], msgspec.Meta(max_length=NQ_MAX_SOCKETS)] = []
    fresh: bool = False
    stop: bool = False
    deadline_s: Seconds | None = None


class BlockDone(msgspec.Struct, frozen=True, kw_only=True, tag="done"):
    """Node -> app: the block ran; ``values`` holds what its ``ret`` instructions named.
    ``crosstalk_hits``: other apps' collective pulses that have hit this app's qubits
    since it connected (qubit-pulses); ``crosstalk_fidelity``: the fidelity a pure state
    keeps under their errors since its qubit was allocated, for the most disturbed
    qubit the block held (1.0: untouched)."""

    block: Count
    values: dict[str, Union[int, list[int]]]  # noqa: UP007
    instructions: Count
    device_ns: DeviceNsInt
    crosstalk_hits: Count = 0
    crosstalk_fidelity: Probability = 1.0
    states: Annotated[dict[Short, State], msgspec.Meta(max_length=1024)] = {}


class BlockFailed(msgspec.Struct, frozen=True, kw_only=True, tag="failed"):
    """Node -> app: the block was refused or aborted. Qubits the block allocated are
    released; qubits from earlier blocks stay allocated (their state may have changed)."""

    block: Count
    code: Short
    message: Text
    held: Qubits = []


class Heartbeat(msgspec.Struct, frozen=True, kw_only=True, tag="heartbeat"):
    """App -> node: keeps the app's lease alive (sent by the SDK on its own)."""


class Alive(msgspec.Struct, frozen=True, kw_only=True, tag="alive"):
    """Node -> app: answer to Heartbeat, so the app notices a dead node."""


class Stop(msgspec.Struct, frozen=True, kw_only=True, tag="stop"):
    """App -> node: end the session and free everything it holds."""


class Stopped(msgspec.Struct, frozen=True, kw_only=True, tag="stopped"):
    """Node -> app: the session ended; ``reason`` says why."""

    reason: Text


class ErrorReply(msgspec.Struct, frozen=True, kw_only=True, tag="error"):
    """Node -> app: a message could not be used (malformed, wrong state...)."""

    code: Short
    message: Text


class SendMsg(msgspec.Struct, frozen=True, kw_only=True, tag="send"):
    """App -> node: a classical message for app ``to_app`` on node ``to_node``."""

    to_node: Name
    to_app: Name
    seq: Count
    data: Data


class SendDone(msgspec.Struct, frozen=True, kw_only=True, tag="sent"):
    """Node -> app: the destination node accepted message ``seq``."""

    seq: Count


class SendFailed(msgspec.Struct, frozen=True, kw_only=True, tag="send_failed"):
    """Node -> app: message ``seq`` was not delivered; ``code`` and ``message`` say why."""

    seq: SignedCount
    code: Short
    message: Text


class Delivered(msgspec.Struct, frozen=True, kw_only=True, tag="deliver"):
    """Node -> app: a classical message from app ``from_app`` on ``from_node``."""

    from_node: Name
    from_app: Name
    data: Data


class EprRequest(msgspec.Struct, frozen=True, kw_only=True, tag="epr"):
    """App -> node: entangled pairs with app ``remote_app`` on node ``remote_node``.

    ``role`` "create" asks the link for them; "recv" accepts the peer's create (both
    apps must ask, with the same ``kind`` and ``number``; a receiver asking "K" also
    takes a creator's "R"). ``kind`` "K" keeps each pair
    in the app's qubit ``qubits[i]`` (delivered as Phi+); "M" measures each half at once
    in a basis from ``bases`` (one chosen at random per pair, independently at each
    end), or in ``chosen[i]``, or after ``rotations`` (as in ``EprSpec``). "R" (remote
    state preparation): the creator measures as in M, the receiver keeps as in K.
    ``sequential``: K pairs come one at a time into the one qubit ``qubits[0]``, each
    once the previous one was freed. ``min_fidelity`` and ``timeout_s`` apply to the
    creator's request. ``remote_chosen``/``remote_rotations`` (creator, M): the bases
    the receiver measures in, if its request says ``peer_bases`` (NetQASM's
    ``basis_remote``/``rotations_remote``)."""

    req: Count
    remote_node: Name
    remote_app: Name
    role: Short
    kind: Short = "K"
    number: Count = 1
    min_fidelity: Probability = 0.0
    timeout_s: Seconds = 30.0
    qubits: Qubits = []
    bases: Short = "Z"
    chosen: Annotated[str, msgspec.Meta(max_length=MAX_BLOCK_PAIRS)] = ""
    rotations: Annotated[list[Angles], msgspec.Meta(max_length=MAX_BLOCK_PAIRS)] = []
    sequential: bool = False
    remote_chosen: Annotated[str, msgspec.Meta(max_length=MAX_BLOCK_PAIRS)] = ""
    remote_rotations: Annotated[list[Angles], msgspec.Meta(max_length=MAX_BLOCK_PAIRS)] = []
    peer_bases: bool = False
    # end-to-end distillation (creator, M, to a node over repeaters): ``distill``
    # "bbpssw" or "dejmps", for ``rounds`` rounds or as many as ``target_fidelity`` needs
    distill: Short = ""
    rounds: Annotated[int, msgspec.Meta(ge=0, le=8)] = 0
    target_fidelity: Probability = 0.0
    # how the repeaters swap for this request (creator, over repeaters): "asap" or
    # "nested" (built-in protocols); "" the network file's protocol
    policy: Short = ""

    def measures(self) -> bool:
        """Whether this end measures its halves (else it keeps them)."""
        return self.kind == "M" or (self.kind == "R" and self.role == "create")


class EprPair(msgspec.Struct, frozen=True, kw_only=True, array_like=True):
    """One delivered pair: entanglement id (node A, node B, station sequence), the
    heralded Bell index (0 Phi+, 1 Phi-, 2 Psi+, 3 Psi-; corrected to Phi+ before
    delivery), the link's fidelity estimate, attempts it took and the device time of
    the herald. K: ``qubit`` is the app's qubit id; M: ``outcome`` and ``basis``."""

    ent_id: tuple[Name, Name, Count]
    bell_index: Annotated[int, msgspec.Meta(ge=0, le=3)]
    goodness: Probability
    attempts: Count
    at_ns: DeviceNsInt
    qubit: Annotated[int, msgspec.Meta(ge=-1, le=1 << 20)] = -1
    outcome: Annotated[int, msgspec.Meta(ge=-1, le=1)] = -1
    basis: Short = ""


Outcome = Annotated[int, msgspec.Meta(ge=-1, le=1)]
BellIndex = Annotated[int, msgspec.Meta(ge=0, le=3)]


class MeasuredPairs(msgspec.Struct, frozen=True, kw_only=True, array_like=True):
    """Measured pairs as columns, pair i in entry i of each (letter i of ``bases``): what
    an ``EprPair`` list says of them, with ``nodes`` the first two parts of every
    entanglement id and ``seqs`` the third. A node sends an app's measured pairs so (in
    ``EprPairs``, ``EprDone`` or ``EprFailed``): one list of numbers per field, not a
    struct per pair, for streams of a million pairs."""

    nodes: tuple[Name, Name]
    seqs: Annotated[list[Count], msgspec.Meta(max_length=MAX_LIST)]
    bell_index: Annotated[list[BellIndex], msgspec.Meta(max_length=MAX_LIST)]
    goodness: Annotated[list[Probability], msgspec.Meta(max_length=MAX_LIST)]
    attempts: Annotated[list[Count], msgspec.Meta(max_length=MAX_LIST)]
    at_ns: Annotated[list[DeviceNsInt], msgspec.Meta(max_length=MAX_LIST)]
    outcomes: Annotated[list[Outcome], msgspec.Meta(max_length=MAX_LIST)]
    bases: Annotated[str, msgspec.Meta(max_length=MAX_LIST, pattern="^[XYZR]*$")]

    def __post_init__(self) -> None:
        n = len(self.seqs)
        cols = (self.bell_index, self.goodness, self.attempts, self.at_ns, self.outcomes)
        if any(len(c) != n for c in cols) or len(self.bases) != n:
            lengths = [n, *(len(c) for c in cols), len(self.bases)]
            raise ValueError(f"columns of measured pairs differ in length: {lengths}")

    def ent_ids(self) -> list[tuple[str, str, int]]:
        a, b = self.nodes
        return [(a, b, seq) for seq in self.seqs]

    @staticmethod
    def of(pairs: list[EprPair]) -> MeasuredPairs | None:
        """``pairs`` as columns, if every one is a measured pair of the same two nodes
        (its basis one letter); else None."""
        if not pairs:
            return None
        nodes = pairs[0].ent_id[:2]
        bases = "".join(p.basis for p in pairs)
        if len(bases) != len(pairs) or any(p.qubit >= 0 or p.ent_id[:2] != nodes for p in pairs):
            return None
        return MeasuredPairs(
            nodes=(nodes[0], nodes[1]),
            seqs=[p.ent_id[2] for p in pairs],
            bell_index=[p.bell_index for p in pairs],
            goodness=[p.goodness for p in pairs],
            attempts=[p.attempts for p in pairs],
            at_ns=[p.at_ns for p in pairs],
            outcomes=[p.outcome for p in pairs],
            bases=bases,
        )


class EprPairs(msgspec.Struct, frozen=True, kw_only=True, tag="epr_pairs"):
    """Node -> app: more pairs of request ``req``, which goes on (pairs stream to the app
    as they are made; ``EprDone`` or ``EprFailed`` brings the last ones). Measured
    pairs may come as columns, in ``measured`` (after those in ``pairs``)."""

    req: Count
    pairs: Annotated[list[EprPair], msgspec.Meta(max_length=MAX_LIST)]
    measured: MeasuredPairs | None = None


class EprDone(msgspec.Struct, frozen=True, kw_only=True, tag="epr_done"):
    """Node -> app: the last pairs of request ``req`` (the others came in ``EprPairs``);
    measured pairs may come as columns, in ``measured`` (after those in ``pairs``)."""

    req: Count
    pairs: Annotated[list[EprPair], msgspec.Meta(max_length=MAX_LIST)]
    measured: MeasuredPairs | None = None


class EprFailed(msgspec.Struct, frozen=True, kw_only=True, tag="epr_failed"):
    """Node -> app: request ``req`` failed with a link-layer code (UNSUPP, NOTIME, NORES,
    TIMEOUT, REJECTED, OTHER, EXPIRE); pairs made before the failure and not sent yet
    are listed (with those sent in ``EprPairs``, they are the app's: their qubits stay
    allocated). Measured pairs may come as columns, in ``measured``."""

    req: Count
    code: Short
    message: Text
    pairs: Annotated[list[EprPair], msgspec.Meta(max_length=MAX_LIST)] = []
    measured: MeasuredPairs | None = None


class EprAck(msgspec.Struct, frozen=True, kw_only=True, tag="epr_ack"):
    """App -> node: the app has received the first ``count`` pairs of request ``req``
    (sent by the SDK as they arrive). A pair the app never acknowledged is expired at
    the other end if the app goes away, so no pair is ever held by one side only."""

    req: Count
    count: Count


class EprExpired(msgspec.Struct, frozen=True, kw_only=True, tag="epr_expired"):
    """Node -> app: pairs of request ``req`` the app received are void: the other end
    never got them (its app or node went away first) or lost them. The app should drop
    them (a kept qubit of such a pair stays allocated, in no useful state)."""

    req: Count
    ent_ids: Annotated[list[tuple[Name, Name, Count]], msgspec.Meta(max_length=MAX_LIST)]
    reason: Text


class EprConfirmed(msgspec.Struct, frozen=True, kw_only=True, tag="epr_confirmed"):
    """Node -> app: the other end's app has these pairs of request ``req`` too (its
    node confirmed it), and this node has the app's acknowledgement: they are settled.
    Pairs still unsettled when the session with the node ends are in doubt (the other
    end may have voided them); the SDK reports them in ``node.expired``."""

    req: Count
    ent_ids: Annotated[list[tuple[Name, Name, Count]], msgspec.Meta(max_length=MAX_LIST)]


AppToNode = Union[  # noqa: UP007
    Register, Submit, SubmitNetQASM, Heartbeat, Stop, SendMsg, EprRequest, EprAck
]
NodeToApp = Union[  # noqa: UP007
    Registered,
    BlockDone,
    BlockFailed,
    Alive,
    Stopped,
    ErrorReply,
    SendDone,
    SendFailed,
    Delivered,
    EprPairs,
    EprDone,
    EprFailed,
    EprExpired,
    EprConfirmed,
]

# -- classical process <-> classical process (node to node) --------------------------


class Carry(msgspec.Struct, frozen=True, kw_only=True, tag="carry"):
    """Node -> node: an app's classical message, to be acknowledged."""

    from_node: Name
    id: Count
    from_app: Name
    to_app: Name
    data: Data


class CarryAck(msgspec.Struct, frozen=True, kw_only=True, tag="carry_ack"):
    """Node -> node: message ``id`` was accepted (delivered or queued for its app)."""

    from_node: Name
    id: Count


class CarryNack(msgspec.Struct, frozen=True, kw_only=True, tag="carry_nack"):
    """Node -> node: message ``id`` was refused; ``reason`` says why."""

    from_node: Name
    id: Count
    reason: Text


class EgpRequest(msgspec.Struct, frozen=True, kw_only=True, tag="egp_req"):
    """Link layer, node -> node: a request for pairs as the origin proposed it. The
    master end (smaller name) sets ``queue``; the other end's accept carries it."""

    origin: Name
    create_id: Count
    purpose: Key
    kind: Short
    number: Count
    min_fidelity: Probability
    deadline_s: WallTime  # wall clock (unix seconds) by which all pairs must be made
    bases: Short
    queue: Count | None
    schedule: Text = ""  # the origin's time bins for this link ("": continuous)
    # M: the bases the receiving end measures in, when its app lets the creator choose
    remote_chosen: Annotated[str, msgspec.Meta(max_length=MAX_BLOCK_PAIRS)] = ""
    remote_rotations: Annotated[list[Angles], msgspec.Meta(max_length=MAX_BLOCK_PAIRS)] = []


class EgpAccept(msgspec.Struct, frozen=True, kw_only=True, tag="egp_ok"):
    origin: Name
    create_id: Count
    queue: Count


class EgpReject(msgspec.Struct, frozen=True, kw_only=True, tag="egp_no"):
    origin: Name
    create_id: Count
    code: Short
    message: Text


class EgpExpire(msgspec.Struct, frozen=True, kw_only=True, tag="egp_expire"):
    """Link layer: the pairs with these station numbers are void at the sender (its app
    went away before receiving them, or the herald came when nobody waited for it):
    the receiver must not keep them either. The receiver answers with the same pairs
    (``echo``) once it voided them at the sender's word, so that an expiry the sender
    never sent (forged) still ends with both ends agreeing; an echo is not answered."""

    seqs: Annotated[list[Count], msgspec.Meta(max_length=MAX_LIST)]
    reason: Text
    echo: bool = False


class EgpConfirm(msgspec.Struct, frozen=True, kw_only=True, tag="egp_confirm"):
    """Link layer: the sender's apps have received the pairs with these station numbers.
    Until it hears this, a node expires its own copies if the sender goes away."""

    seqs: Annotated[list[Count], msgspec.Meta(max_length=MAX_LIST)]


EgpMessage = Union[EgpRequest, EgpAccept, EgpReject, EgpExpire, EgpConfirm]  # noqa: UP007


class Egp(msgspec.Struct, frozen=True, kw_only=True, tag="egp"):
    """Node -> node: a link-layer message from ``from_node``'s EGP."""

    from_node: Name
    msg: EgpMessage


class NodePing(msgspec.Struct, frozen=True, kw_only=True, tag="node_ping"):
    """Node -> node: still here (any message counts), and which process this node is
    (``proc``, see ProcId). Sent every quarter second while something waits on the
    other node, with ``ask``: the other node answers at once (a ping without ``ask``)."""

    from_node: Name
    proc: ProcId | None = None
    ask: bool = False


class NodeBye(msgspec.Struct, frozen=True, kw_only=True, tag="node_bye"):
    """Node -> node: this node is stopping; treat it as gone at once."""

    from_node: Name
    reason: Text


# -- network layer (end-to-end pairs over repeaters; see kernel/network) --------------
MAX_PATH = 32  # nodes on a circuit's path
Bit = Annotated[int, msgspec.Meta(ge=0, le=1)]


class NetSetup(msgspec.Struct, frozen=True, kw_only=True, tag="net_setup"):
    """Node -> node on ``path``: circuit (``path[0]``, ``circuit``) for ``number`` end-to-
    end pairs of ``kind`` between the apps of ``purpose``, along ``path`` (the sender is
    ``path[0]``, the creating end). It ends at ``timeout_s`` after it was set up. A
    path of two nodes (one link, no repeater) is for distilled pairs only."""

    circuit: Count
    path: Annotated[list[Name], msgspec.Meta(min_length=2, max_length=MAX_PATH)]
    purpose: Text
    kind: Short
    number: Count
    timeout_s: Seconds
    policy: Short = ""  # the repeaters' protocol: "" the network file's, "asap", "nested"
    cutoff_s: Seconds = 0.0
    # what the creator chose for the receiver (EprRequest's remote_chosen/_rotations)
    remote_chosen: Annotated[str, msgspec.Meta(max_length=MAX_BLOCK_PAIRS)] = ""
    remote_rotations: Annotated[list[Angles], msgspec.Meta(max_length=MAX_BLOCK_PAIRS)] = []
    distill: Short = ""  # the ends distil: scheme, rounds (the creator's choice)
    rounds: Annotated[int, msgspec.Meta(ge=0, le=8)] = 0


class NetSwapped(msgspec.Struct, frozen=True, kw_only=True, tag="net_swap"):
    """Repeater ``path[index]`` -> the circuit's ends: it swapped its link pair ``left``
    (on the hop towards ``path[0]``) with ``right``; Bell-measurement outcomes ``m1``
    (the left half, after H) and ``m2`` (the right half)."""

    origin: Name
    circuit: Count
    index: Count
    left: Count
    right: Count
    m1: Bit
    m2: Bit
    goodness: Probability = 1.0  # the fidelity estimate of its right link pair


class NetSwaps(msgspec.Struct, frozen=True, kw_only=True, tag="net_swaps"):
    """Repeater -> the circuit's ends: several swaps of one circuit at once (as
    ``NetSwapped`` each, all from the sender)."""

    records: Annotated[list[NetSwapped], msgspec.Meta(min_length=1, max_length=64)]


class NetTeardown(msgspec.Struct, frozen=True, kw_only=True, tag="net_down"):
    """Node -> the other nodes on the circuit: it ended here (``error``: it failed,
    saying ``reason``; every end voids the end-to-end pairs it did not have confirmed)."""

    origin: Name
    circuit: Count
    reason: Text
    error: bool = True


class NetDiscarded(msgspec.Struct, frozen=True, kw_only=True, tag="net_discard"):
    """Repeater -> the end on hop ``hop``: its protocol discarded link pair ``seq`` of
    that hop; the end drops its half and makes replacement number ``extra`` (one pair,
    on the hop's purpose with that number)."""

    origin: Name
    circuit: Count
    hop: Count
    seq: Count
    extra: Count


class NetPeer(msgspec.Struct, frozen=True, kw_only=True, tag="net_peer"):
    """Network protocol -> the protocol of another node on circuit (origin, circuit):
    ``data``, msgpack-encoded."""

    origin: Name
    circuit: Count
    data: Annotated[bytes, msgspec.Meta(max_length=1024)]


Twirl = Annotated[int, msgspec.Meta(ge=0, lt=12)]  # one of netlink.distill.TWIRLS


class NetDistil(msgspec.Struct, frozen=True, kw_only=True, tag="net_distil"):
    """One end of circuit (origin, circuit) -> the other: it ran a distillation round
    on end-to-end pairs ``keep`` and ``target`` (both at ``level`` rounds so far) and
    measured ``outcome``; the round succeeded if the other end's outcome is the same.
    ``rounds``: the rounds each delivered pair goes through. ``fidelity`` (from the
    creator): its estimate of a raw pair; both ends report the distilled pairs'
    predicted fidelity from it. ``twirl`` (from the creator, BBPSSW): the twirl it
    drew for ``keep`` and for ``target`` (``netlink.distill.TWIRLS``), which the other
    end applies too."""

    origin: Name
    circuit: Count
    keep: Count
    target: Count
    level: Annotated[int, msgspec.Meta(ge=0, le=8)]
    outcome: Bit
    rounds: Annotated[int, msgspec.Meta(ge=1, le=8)]
    fidelity: Probability = 0.0
    twirl: Annotated[list[Twirl], msgspec.Meta(max_length=2)] = []


NetMessage = Union[  # noqa: UP007
    NetSetup, NetSwapped, NetSwaps, NetTeardown, NetDiscarded, NetPeer, NetDistil
]


class Net(msgspec.Struct, frozen=True, kw_only=True, tag="net"):
    """Node -> node: a network-layer message from ``from_node``."""

    from_node: Name
    msg: NetMessage


NodeToNode = Union[Carry, CarryAck, CarryNack, Egp, Net, NodePing, NodeBye]  # noqa: UP007

# -- classical process <-> quantum process -------------------------------------------


class PhysOp(msgspec.Struct, frozen=True, array_like=True):
    """One physical instruction: ``op`` is a native gate name or init/meas/wait/discard;
    ``qubits`` are physical indices; ``param`` is the angle (rad) or, for wait, ns."""

    op: Short
    qubits: Annotated[tuple[Count, ...], msgspec.Meta(max_length=2)] = ()
    param: Annotated[float, msgspec.Meta(ge=-1e14, le=1e14)] = 0.0


class DeviceRequest(msgspec.Struct, frozen=True, kw_only=True, tag="dreq"):
    """Classical -> quantum process: run ``ops`` in order."""

    seq: Count
    ops: Annotated[list[PhysOp], msgspec.Meta(max_length=MAX_LIST)]


# A density matrix, row-major, as (re, im) pairs: what a ``peek`` read (one qubit) or a
# ``peek_group`` (a group of up to MAX_PEEK_GROUP qubits).
MAX_PEEK_GROUP = 5
State = Annotated[
    list[Annotated[float, msgspec.Meta(ge=-2.0, le=2.0)]],
    msgspec.Meta(max_length=2 * 4**MAX_PEEK_GROUP),
]


class DeviceReply(msgspec.Struct, frozen=True, kw_only=True, tag="drep"):
    """Quantum -> classical process: one outcome per executed op (-1 = no outcome);
    ``error`` is set if op number ``len(outcomes)`` was refused (later ops not run)."""

    seq: Count
    outcomes: Outcomes
    error: Text | None
    now_ns: DeviceNsInt  # device time when the last executed op ended
    start_ns: DeviceNsInt = 0  # device time when the first op started
    states: Annotated[list[State], msgspec.Meta(max_length=MAX_LIST)] = []  # peeks, in order


class Abort(msgspec.Struct, frozen=True, kw_only=True, tag="abort"):
    """Classical -> quantum process: the block whose request ``seq`` is on the device was
    abandoned (its app left). Free the device now; nothing waits for the reply."""

    seq: Count


class Ping(msgspec.Struct, frozen=True, kw_only=True, tag="ping"):
    """Liveness / readiness probe. The first one also claims the quantum process for
    its classical process: ``token`` is the secret it was started with."""

    seq: Count
    token: Key = ""


class Pong(msgspec.Struct, frozen=True, kw_only=True, tag="pong"):
    """Answer to Ping, with what the quantum process runs."""

    seq: Count
    device: Name
    num_qubits: QubitCount
    epoch_ns: Epoch = 0  # wall time (ns) of device time 0: the node's view of device time


Recipe = Annotated[list[list[PhysOp]], msgspec.Meta(min_length=4, max_length=4)]


class Entangle(msgspec.Struct, frozen=True, kw_only=True, tag="ent"):
    """Classical -> quantum process: one round of entanglement attempts on the link to
    ``peer``, for up to ``pairs`` pairs: from now, every cycle, at most ``max_attempts``
    times in all, waiting for the peer's attempt until wall time ``expires_s``. Both
    ends use the same round ``key``. ``qubits``: the communication qubit(s), one reused
    for every pair (each pair's ops free it) or one per pair. ``recipes[r][b]``: ops
    run at once after a herald of Bell index ``b`` (a correction, a basis rotation and a
    measurement...); pair ``i`` gets recipe ``plan[i]`` (no plan: recipe 0).
    ``peer_measures``: this end keeps, the other measures (remote state preparation):
    the link's first node hands each pair to the other end, where it is measured."""

    seq: Count
    peer: Name
    key: Key
    qubits: Annotated[list[Count], msgspec.Meta(min_length=1, max_length=4096)]
    max_attempts: Count
    expires_s: WallTime
    pairs: Annotated[int, msgspec.Meta(ge=1, le=4096)] = 1
    recipes: Annotated[list[Recipe], msgspec.Meta(max_length=64)] = []
    plan: Annotated[list[Count], msgspec.Meta(max_length=4096)] = []
    peer_measures: bool = False  # we keep, the other end measures: it gets the pair


class PairHerald(msgspec.Struct, frozen=True, array_like=True):
    """One pair of a round, as a quantum process reports it: station number, attempts
    since the previous pair, device time, Bell index, outcomes of its recipe's ops."""

    seq: Count
    attempts: Count
    at_ns: DeviceNsInt
    bell_index: Annotated[int, msgspec.Meta(ge=0, le=3)]
    outcomes: Annotated[list[int], msgspec.Meta(max_length=256)] = []


class EntangleDone(msgspec.Struct, frozen=True, kw_only=True, tag="ent_done"):
    """Quantum -> classical process: pairs of round ``key`` (its heralds so far, if not
    ``final``: more may come), then how it ended: ``attempts`` more in vain, at
    ``at_ns``, ``reason`` why it stopped short. ``error`` is set if the round could not
    start at all; ``again``: it never ran (the ends disagreed), retry the same key."""

    seq: Count
    key: Key
    pairs: Annotated[list[PairHerald], msgspec.Meta(max_length=4096)] = []
    final: bool = True
    attempts: Count = 0
    at_ns: DeviceNsInt = 0
    reason: Text = ""
    error: Text | None = None
    start_ns: DeviceNsInt = 0
    again: bool = False


class LateHerald(msgspec.Struct, frozen=True, kw_only=True, tag="late_herald"):
    """Quantum -> classical process: round ``key`` heralded pairs (station numbers
    ``heralds``) after this end had stopped waiting for it; they are void here, so the
    node tells the other end to expire them."""

    key: Key
    heralds: Annotated[list[Count], msgspec.Meta(max_length=4096)]
    peer: Name


ToDevice = Union[DeviceRequest, Ping, Entangle, Abort]  # noqa: UP007
FromDevice = Union[DeviceReply, Pong, ErrorReply, EntangleDone, LateHerald]  # noqa: UP007

# -- quantum process <-> quantum process of another node -----------------------------

GlobalQubit = tuple[Name, Count]  # (node, physical qubit)


# A custody token: a secret the owner of a qubit gives with its state when the state
# goes into another quantum process's keeping, and that must come back with it (see
# ``qdevice.groups``): nobody who never held the state can push one in its place.
Token = Annotated[bytes, msgspec.Meta(min_length=8, max_length=8)]


class QAttempt(msgspec.Struct, frozen=True, kw_only=True, tag="q_att"):
    """To the link's station (in the owner's quantum process): ``frm`` attempts round
    ``key`` with its qubit(s) ``qubits`` (one reused, or one per pair) from ``start_ns``
    (sender's device time), for up to ``pairs`` pairs, needing ``dead_ns`` after each.
    ``token``: the custody token of its halves of kept pairs, which stay in the
    owner's process."""

    frm: Name
    key: Key
    qubits: Annotated[list[Count], msgspec.Meta(min_length=1, max_length=4096)]
    token: Token
    start_ns: DeviceNs
    max_attempts: Count
    expires_s: WallTime
    epoch_ns: Epoch  # wall ns at the sender's device time 0 (to convert times)
    pairs: Annotated[int, msgspec.Meta(ge=1, le=4096)] = 1
    dead_ns: DeviceNs = 0.0


class QHerald(msgspec.Struct, frozen=True, array_like=True):
    """One herald of a round, from the owner to the other end. ``half``: when the owner
    has already measured its half, the other end's qubit is alone: its 2x2 density
    matrix (complex128, row-major, little-endian); empty when the pair's state stays
    with the owner. When the other end measures and the owner keeps (remote state
    preparation), the whole pair goes to it: ``half`` is the 4x4 state of (the owner's
    qubit ``home``, the other end's qubit), and the owner's half comes home once measured
    apart."""

    seq: Count
    attempts: Count
    at_ns: DeviceNs
    bell_index: Annotated[int, msgspec.Meta(ge=0, le=3)]
    half: Annotated[bytes, msgspec.Meta(max_length=256)] = b""
    home: Annotated[int, msgspec.Meta(ge=-1, le=1023)] = -1
    # with the whole pair: the custody token of the owner's qubit
    token: Annotated[bytes, msgspec.Meta(max_length=8)] = b""


Half = Annotated[bytes, msgspec.Meta(min_length=64, max_length=64)]


class QMeasured(msgspec.Struct, frozen=True, kw_only=True, array_like=True):
    """Heralds of a round whose pairs the owner measured, as columns (herald i in entry
    i of each): what a ``QHerald`` says of each, with ``halves[i]`` the other end's
    qubit's 2x2 state (alone there: ``QHerald.half``). One list per field, not a struct
    per pair, for rounds of thousands of measured pairs."""

    seqs: Annotated[list[Count], msgspec.Meta(max_length=4096)]
    attempts: Annotated[list[Count], msgspec.Meta(max_length=4096)]
    at_ns: Annotated[list[DeviceNs], msgspec.Meta(max_length=4096)]
    bell_index: Annotated[list[BellIndex], msgspec.Meta(max_length=4096)]
    halves: Annotated[list[Half], msgspec.Meta(max_length=4096)]

    def __post_init__(self) -> None:
        n = len(self.seqs)
        cols = (self.attempts, self.at_ns, self.bell_index, self.halves)
        if any(len(c) != n for c in cols):
            lengths = [n, *(len(c) for c in cols)]
            raise ValueError(f"columns of measured heralds differ in length: {lengths}")

    def heralds(self) -> list[QHerald]:
        """One ``QHerald`` each."""
        cols = (self.seqs, self.attempts, self.at_ns, self.bell_index, self.halves)
        return [QHerald(s, a, t, b, h) for s, a, t, b, h in zip(*cols, strict=True)]


class QRound(msgspec.Struct, frozen=True, kw_only=True, tag="q_round"):
    """From the station's node to the other end: round ``key``'s heralds, then how it
    ended (times in the station's device time, with its ``epoch_ns``). A round whose
    pairs the owner measured sends them in ``measured`` (after those in ``heralds``)."""

    frm: Name
    key: Key
    heralds: Annotated[list[QHerald], msgspec.Meta(max_length=4096)]
    attempts: Count
    at_ns: DeviceNs
    reason: Text
    epoch_ns: Epoch
    again: bool = False
    measured: QMeasured | None = None

    def __post_init__(self) -> None:
        n = len(self.heralds) + (len(self.measured.seqs) if self.measured is not None else 0)
        if n > 4096:
            raise ValueError(f"{n} heralds in one round (at most 4096)")

    def all_heralds(self) -> list[QHerald]:
        """Every herald, one ``QHerald`` each, in order."""
        if self.measured is None:
            return self.heralds
        return self.heralds + self.measured.heralds()

    def seqs(self) -> list[int]:
        """Every herald's station number, in order."""
        more = self.measured.seqs if self.measured is not None else []
        return [h.seq for h in self.heralds] + more


class QPull(msgspec.Struct, frozen=True, kw_only=True, tag="q_pull"):
    """``frm`` needs the state group holding ``qubit`` for ``for_node``; whoever holds
    it sends the group to ``for_node``."""

    frm: Name
    for_node: Name
    qubit: GlobalQubit


class QGroup(msgspec.Struct, frozen=True, kw_only=True, tag="q_group"):
    """A state group moving to the receiver: its qubits (first = most significant),
    density matrix (complex128, row-major, little-endian) and each qubit's custody
    token."""

    frm: Name
    qubits: Annotated[list[GlobalQubit], msgspec.Meta(max_length=16)]
    rho: Annotated[bytes, msgspec.Meta(max_length=16 * 4**8)]
    tokens: Annotated[list[Token], msgspec.Meta(max_length=16)]


MAX_LOST_TEXT = 256  # characters of a QNotHere's reason


class QNotHere(msgspec.Struct, frozen=True, kw_only=True, tag="q_gone"):
    """Answer to a QPull by a process that neither holds the group nor knows where it
    went; the asker tries again. With ``lost``: the group is gone for good (it was
    sent to the asker, but the message was dropped, never sent), so the asker's ops on
    the qubit fail, saying why, instead of waiting."""

    frm: Name
    qubit: GlobalQubit
    lost: Annotated[str, msgspec.Meta(max_length=MAX_LOST_TEXT)] = ""


class QPing(msgspec.Struct, frozen=True, kw_only=True, tag="q_ping"):
    """Quantum process -> linked quantum process: still here, and which process it is
    (``proc``, see ProcId); ``ask``: answer at once (see NodePing)."""

    frm: Name
    proc: ProcId | None = None
    ask: bool = False


QPeer = Union[QAttempt, QRound, QPull, QGroup, QNotHere, QPing]  # noqa: UP007
