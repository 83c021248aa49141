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

from typing import Union

import msgspec

from .program import Subroutine

# -- app API ---------------------------------------------------------------------------


class Register(msgspec.Struct, frozen=True, kw_only=True, tag="register"):
    """App -> node: start a session with a qubit quota and a scheduling priority."""

    app: str
    qubits: int
    priority: int = 0


class Registered(msgspec.Struct, frozen=True, kw_only=True, tag="registered"):
    """Node -> app: the session is open."""

    app_id: int
    node: str
    device: str
    native_gates: list[str]
    lease_s: float


class Submit(msgspec.Struct, frozen=True, kw_only=True, tag="submit"):
    """App -> node: run a subroutine as one block. ``deadline_s`` (relative) is used by
    the EDF scheduling policy."""

    block: int
    sub: Subroutine
    deadline_s: float | None = None


class BlockDone(msgspec.Struct, frozen=True, kw_only=True, tag="done"):
    """Node -> app: the block ran; ``values`` holds what its ``ret`` instructions named."""

    block: int
    values: dict[str, Union[int, list[int]]]  # noqa: UP007
    instructions: int
    device_ns: int


class BlockFailed(msgspec.Struct, frozen=True, kw_only=True, tag="failed"):
    """Node -> app: the block was refused or aborted. Qubits the block allocated are
    released; qubits from earlier blocks stay allocated (their state may have changed)."""

    block: int
    code: str
    message: str
    held: list[int] = []


class Heartbeat(msgspec.Struct, frozen=True, kw_only=True, tag="heartbeat"):
    """App -> node: keeps the app's lease alive (sent by the SDK on its own)."""


class Alive(msgspec.Struct, frozen=True, kw_only=True, tag="alive"):
    """Node -> app: answer to Heartbeat, so the app notices a dead node."""


class Stop(msgspec.Struct, frozen=True, kw_only=True, tag="stop"):
    """App -> node: end the session and free everything it holds."""


class Stopped(msgspec.Struct, frozen=True, kw_only=True, tag="stopped"):
    """Node -> app: the session ended; ``reason`` says why."""

    reason: str


class ErrorReply(msgspec.Struct, frozen=True, kw_only=True, tag="error"):
    """Node -> app: a message could not be used (malformed, wrong state...)."""

    code: str
    message: str


class SendMsg(msgspec.Struct, frozen=True, kw_only=True, tag="send"):
    """App -> node: a classical message for app ``to_app`` on node ``to_node``."""

    to_node: str
    to_app: str
    seq: int
    data: bytes


class SendDone(msgspec.Struct, frozen=True, kw_only=True, tag="sent"):
    """Node -> app: the destination node accepted message ``seq``."""

    seq: int


class SendFailed(msgspec.Struct, frozen=True, kw_only=True, tag="send_failed"):
    """Node -> app: message ``seq`` was not delivered; ``code`` and ``message`` say why."""

    seq: int
    code: str
    message: str


class Delivered(msgspec.Struct, frozen=True, kw_only=True, tag="deliver"):
    """Node -> app: a classical message from app ``from_app`` on ``from_node``."""

    from_node: str
    from_app: str
    data: bytes


AppToNode = Union[Register, Submit, Heartbeat, Stop, SendMsg]  # noqa: UP007
NodeToApp = Union[  # noqa: UP007
    Registered, BlockDone, BlockFailed, Alive, Stopped, ErrorReply, SendDone, SendFailed, Delivered
]

# -- classical process <-> classical process (node to node) --------------------------


class Carry(msgspec.Struct, frozen=True, kw_only=True, tag="carry"):
    """Node -> node: an app's classical message, to be acknowledged."""

    from_node: str
    id: int
    from_app: str
    to_app: str
    data: bytes


class CarryAck(msgspec.Struct, frozen=True, kw_only=True, tag="carry_ack"):
    """Node -> node: message ``id`` was accepted (delivered or queued for its app)."""

    from_node: str
    id: int


class CarryNack(msgspec.Struct, frozen=True, kw_only=True, tag="carry_nack"):
    """Node -> node: message ``id`` was refused; ``reason`` says why."""

    from_node: str
    id: int
    reason: str


NodeToNode = Union[Carry, CarryAck, CarryNack]  # noqa: UP007

# -- classical process <-> quantum process -------------------------------------------


class PhysOp(msgspec.Struct, frozen=True, array_like=True):
    """One physical instruction: ``op`` is a native gate name or init/meas/wait/discard;
    ``qubits`` are physical indices; ``param`` is the angle (rad) or, for wait, ns."""

    op: str
    qubits: tuple[int, ...] = ()
    param: float = 0.0


class DeviceRequest(msgspec.Struct, frozen=True, kw_only=True, tag="dreq"):
    """Classical -> quantum process: run ``ops`` in order."""

    seq: int
    ops: list[PhysOp]


class DeviceReply(msgspec.Struct, frozen=True, kw_only=True, tag="drep"):
    """Quantum -> classical process: one outcome per executed op (-1 = no outcome);
    ``error`` is set if op number ``len(outcomes)`` was refused (later ops not run)."""

    seq: int
    outcomes: list[int]
    error: str | None
    now_ns: int  # device time when the last executed op ended
    start_ns: int = 0  # device time when the first op started


class Ping(msgspec.Struct, frozen=True, kw_only=True, tag="ping"):
    """Liveness / readiness probe."""

    seq: int


class Pong(msgspec.Struct, frozen=True, kw_only=True, tag="pong"):
    """Answer to Ping, with what the quantum process runs."""

    seq: int
    device: str
    num_qubits: int


ToDevice = Union[DeviceRequest, Ping]  # noqa: UP007
FromDevice = Union[DeviceReply, Pong, ErrorReply]  # noqa: UP007
