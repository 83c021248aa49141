"""``squidasm.util.routines`` on qnodeos: the small protocols SquidASM's example
programs call (written here from their textbook definitions; both ends of each
protocol must use these). Generators are used with ``yield from``, as on SquidASM."""

from __future__ import annotations

from collections.abc import Generator
from typing import Any

__all__ = [
    "create_ghz",
    "distributed_CNOT_control",
    "distributed_CNOT_target",
    "distributed_CPhase_control",
    "distributed_CPhase_target",
    "measXY",
    "recv_float",
    "recv_int",
    "recv_remote_state_preparation",
    "remote_state_preparation",
    "send_float",
    "send_int",
    "teleport_recv",
    "teleport_send",
]


def measXY(q: Any, angle: float) -> Any:  # noqa: N802 (SquidASM's name)
    """Measure ``q`` in the basis |0> +- e^(i angle)|1>: Rz(angle), H, measure."""
    q.rot_Z(angle=angle)
    q.H()
    return q.measure()


def remote_state_preparation(epr_socket: Any, theta: float) -> Any:
    """Prepare Rz(theta + m pi)|+> at the other end (m: the returned outcome)."""
    (half,) = epr_socket.create_keep()
    return measXY(half, theta)


def recv_remote_state_preparation(epr_socket: Any) -> Any:
    """The other end's half of a remote state preparation."""
    (half,) = epr_socket.recv_keep()
    return half


def send_float(socket: Any, value: float) -> None:
    socket.send(str(value))


def recv_float(socket: Any) -> Generator[Any, None, float]:
    text = yield from socket.recv()
    return float(text)


def send_int(socket: Any, value: int) -> None:
    socket.send(str(value))


def recv_int(socket: Any) -> Generator[Any, None, int]:
    text = yield from socket.recv()
    return int(text)


def teleport_send(q: Any, context: Any, peer_name: str) -> Generator[Any, None, None]:
    """Teleport ``q`` (consumed) to ``peer_name``, who runs ``teleport_recv``."""
    conn = context.connection
    (half,) = context.epr_sockets[peer_name].create_keep()
    q.cnot(half)
    q.H()
    bz, bx = q.measure(), half.measure()
    yield from conn.flush()
    context.csockets[peer_name].send(f"{int(bz)},{int(bx)}")


def teleport_recv(context: Any, peer_name: str) -> Generator[Any, None, Any]:
    """Receive a qubit ``peer_name`` teleports with ``teleport_send``: the qubit."""
    conn = context.connection
    (half,) = context.epr_sockets[peer_name].recv_keep()
    yield from conn.flush()
    text = yield from context.csockets[peer_name].recv()
    bz, bx = (int(x) for x in str(text).split(","))
    if bx:
        half.X()
    if bz:
        half.Z()
    yield from conn.flush()
    return half


def _control(context: Any, peer_name: str, ctrl_qubit: Any) -> Generator[Any, None, None]:
    """The control's side of a nonlocal controlled gate (Eisert et al. 2000): a shared
    pair, a CNOT onto it, its measurement sent; a Z if the target's end measured 1."""
    conn = context.connection
    sock = context.csockets[peer_name]
    (half,) = context.epr_sockets[peer_name].create_keep()
    ctrl_qubit.cnot(half)
    m = half.measure()
    yield from conn.flush()
    sock.send(str(int(m)))
    back = yield from sock.recv()
    if str(back) == "1":
        ctrl_qubit.Z()
    yield from conn.flush()


def _target(
    context: Any, peer_name: str, target_qubit: Any, gate: str
) -> Generator[Any, None, None]:
    """The target's side: the pair's half, X if the control's end measured 1, the
    controlled ``gate`` onto the target, then the half measured in X and sent."""
    conn = context.connection
    sock = context.csockets[peer_name]
    (half,) = context.epr_sockets[peer_name].recv_keep()
    yield from conn.flush()
    m = yield from sock.recv()
    if str(m) == "1":
        half.X()
    getattr(half, gate)(target_qubit)
    half.H()
    out = half.measure()
    yield from conn.flush()
    sock.send(str(int(out)))


def distributed_CNOT_control(  # noqa: N802 (SquidASM's name)
    context: Any, peer_name: str, ctrl_qubit: Any
) -> Generator[Any, None, None]:
    """CNOT from ``ctrl_qubit`` here onto a qubit of ``peer_name``."""
    yield from _control(context, peer_name, ctrl_qubit)


def distributed_CNOT_target(  # noqa: N802
    context: Any, peer_name: str, target_qubit: Any
) -> Generator[Any, None, None]:
    """CNOT from a qubit of ``peer_name`` onto ``target_qubit`` here."""
    yield from _target(context, peer_name, target_qubit, "cnot")


def distributed_CPhase_control(  # noqa: N802
    context: Any, peer_name: str, ctrl_qubit: Any
) -> Generator[Any, None, None]:
    """CPhase between ``ctrl_qubit`` here and a qubit of ``peer_name``."""
    yield from _control(context, peer_name, ctrl_qubit)


def distributed_CPhase_target(  # noqa: N802
    context: Any, peer_name: str, target_qubit: Any
) -> Generator[Any, None, None]:
    """CPhase between a qubit of ``peer_name`` and ``target_qubit`` here."""
    yield from _target(context, peer_name, target_qubit, "cphase")


def create_ghz(*args: Any, **kwargs: Any) -> Generator[Any, None, Any]:
    """Not provided on qnodeos (refused by name)."""
    raise NotImplementedError(
        "squidasm.util.routines.create_ghz is not provided by qnodeos's SquidASM layer"
    )
