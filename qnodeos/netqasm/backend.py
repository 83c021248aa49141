"""The NetQASM SDK's backend on qnodeos (app side): ``NetQASMConnection``, ``Socket``,
``BroadcastChannel`` and ``get_qubit_state`` as ``netqasm.sdk.external`` exports them.

A NetQASM app is synchronous: it runs in a worker thread of the app process (see
``qnodeos.netqasm.runner``), and everything here reaches the app's qnodeos session,
which lives in that process's trio loop, through ``trio.from_thread``. One session
serves the app's connection and its classical sockets.

- ``flush()`` of a connection sends the subroutine as netqasm encodes it (binary,
  vanilla flavour) in one ``SubmitNetQASM``; the node reads and runs it as one block
  and returns what its ``ret_reg``/``ret_arr`` named, which fills the connection's
  shared memory, where the SDK's futures read it.
- EPR sockets: each is sent with every subroutine (id, remote node id, remote node and
  app names, minimum fidelity; NetQASM's 100 % means no constraint).
- Classical sockets: messages go over qnodeos's node-to-node messaging, ordered and
  acknowledged; several sockets between the same two apps are told apart by id.
- ``get_qubit_state`` (simulation only, as on NetQASM's simulators) reads a qubit's
  density matrix with a ``peek`` block: its reduced 2x2 state, or with
  ``reduced_dm=False`` the joint state of every qubit that shares a state with it (a
  pair's both halves, on both nodes), as NetSquid returns it.
"""

from __future__ import annotations

import os
import sys
from collections import deque
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

import trio
from netqasm.backend.messages import (
    InitNewAppMessage,
    OpenEPRSocketMessage,
    SignalMessage,
    StopAppMessage,
)
from netqasm.sdk.classical_communication.broadcast_channel import (
    BroadcastChannelBySockets,
)
from netqasm.sdk.classical_communication.message import StructuredMessage
from netqasm.sdk.classical_communication.socket import Socket as _Socket
from netqasm.sdk.connection import BaseNetQASMConnection
from netqasm.sdk.network import NetworkInfo
from netqasm.sdk.shared_memory import SharedMemory

from ..lang import messages as m
from ..lang.program import INT_MIN as UNDEFINED
from ..sdk.client import ClassicalSocket, Node

T = TypeVar("T")
IDS = range(256)  # NetQASM socket ids
MAX_BUFFERED = 65_536  # messages kept for sockets of this app that are not reading


@dataclass
class Context:
    """What the NetQASM classes of one app process share: the app's session, and the
    network as NetQASM sees it (party -> node name; node ids are the sorted names'
    positions)."""

    session: Node
    party: str
    roles: dict[str, str]
    token: trio.lowlevel.TrioToken  # of the trio run the session lives in
    states: dict[str, Any] | None = None  # record qubit states at the connection's end
    inboxes: dict[str, dict[int, deque[Any]]] = field(default_factory=dict)
    channels: dict[str, ClassicalSocket] = field(default_factory=dict)

    @property
    def node_ids(self) -> dict[str, int]:
        return {n: i for i, n in enumerate(sorted(set(self.roles.values())))}

    def call(self, fn: Callable[..., Awaitable[T]], *args: Any) -> T:
        """Run ``fn(*args)`` in the session's trio loop, from any thread of the app."""
        return trio.from_thread.run(fn, *args, trio_token=self.token)

    def node_of(self, party: str) -> str:
        try:
            return self.roles[party]
        except KeyError:
            raise ValueError(
                f"no party {party!r} in this network (parties: {', '.join(sorted(self.roles))})"
            ) from None

    def channel(self, party: str) -> ClassicalSocket:
        ch = self.channels.get(party)
        if ch is None:
            ch = self.channels[party] = self.session.socket(self.node_of(party), party)
        return ch


_context: Context | None = None


def set_context(ctx: Context | None) -> None:
    global _context
    _context = ctx


def context() -> Context:
    if _context is None:
        raise RuntimeError(
            "the qnodeos NetQASM backend has no session: run NetQASM apps with "
            "`qnodeos netqasm APP_DIR` (or qnodeos.netqasm.runner as an app module)"
        )
    return _context


def network_info(
    ids: Mapping[str, int], node_of: Callable[[str], str], what: str = "node"
) -> type[NetworkInfo]:
    """NetQASM's view of the network: node names and their NetQASM ids, and the node
    of each app (``node_of``); ``what`` names the nodes in errors (SquidASM: "stack")."""
    names = {i: n for n, i in ids.items()}

    class QNodeOSNetworkInfo(NetworkInfo):  # type: ignore[misc]
        @classmethod
        def _get_node_id(cls, node_name: str) -> int:
            if node_name not in ids:
                known = ", ".join(sorted(ids))
                raise ValueError(f"no {what} {node_name!r} ({what}s: {known})")
            return ids[node_name]

        @classmethod
        def _get_node_name(cls, node_id: int) -> str:
            return names[node_id]

        @classmethod
        def get_node_id_for_app(cls, app_name: str) -> int:
            return cls._get_node_id(node_of(app_name))

        @classmethod
        def get_node_name_for_app(cls, app_name: str) -> str:
            node = node_of(app_name)
            cls._get_node_id(node)
            return node

    return QNodeOSNetworkInfo


class QNodeOSConnection(BaseNetQASMConnection):  # type: ignore[misc]
    """A NetQASM connection to the app's qnodeos node."""

    def __init__(self, app_name: str, *args: Any, **kwargs: Any) -> None:
        self._ctx = context()
        if app_name != self._ctx.party:
            raise ValueError(
                f"this process runs party {self._ctx.party!r}, not {app_name!r} "
                f"(app_name must be app_config.app_name)"
            )
        self._memory = SharedMemory()
        self._sockets: dict[tuple[int, int], m.NqSocket] = {}
        self._epr_list = list(kwargs.get("epr_sockets") or [])
        self._fresh = True
        kwargs.pop("hardware_config", None)  # generic: qnodeos places qubits itself
        super().__init__(app_name, *args, **kwargs)

    @property
    def shared_memory(self) -> SharedMemory:
        return self._memory

    def _get_network_info(self) -> type[NetworkInfo]:
        return network_info(self._ctx.node_ids, self._ctx.node_of)

    def _commit_serialized_message(
        self, raw_msg: bytes, block: bool = True, callback: Any = None
    ) -> None:
        raise NotImplementedError("qnodeos sends message objects (_commit_message)")

    def block(self) -> None:
        """Every flush already waited for its results."""

    def commit_subroutine(self, subroutine: Any, block: bool = True, callback: Any = None) -> None:
        """Run a compiled subroutine on the node, encoded in the flavour it needs."""
        self._run(bytes(subroutine), stop=False, flavour=flavour_of(subroutine))
        if callback is not None:
            callback()

    def _commit_message(self, msg: Any, block: bool = True, callback: Any = None) -> None:
        if isinstance(msg, OpenEPRSocketMessage):
            self._open(msg)
        elif isinstance(msg, StopAppMessage):
            if self._ctx.states is not None:  # what the app leaves in its qubits
                for q in self.active_qubits:
                    rho = self._ctx.call(self._ctx.session.state, int(q.qubit_id))
                    self._ctx.states[f"Q{q.qubit_id}"] = [
                        [[z.real, z.imag] for z in row] for row in rho.tolist()
                    ]
            self._run(b"", stop=True)
        elif isinstance(msg, InitNewAppMessage | SignalMessage):
            pass  # the session is open already; stopping is the runner's job
        else:
            raise TypeError(f"qnodeos cannot send NetQASM message {type(msg).__name__}")

    def _open(self, msg: Any) -> None:
        sid, nid = int(msg.epr_socket_id), int(msg.remote_node_id)
        sock = next(
            (s for s in self._epr_list if s.epr_socket_id == sid and s.remote_node_id == nid),
            None,
        )
        if sock is None:
            raise ValueError(f"EPR socket {sid} with node {nid} was not given to the connection")
        remote = sock.remote_app_name
        fid = int(msg.min_fidelity)
        self._sockets[(nid, sid)] = m.NqSocket(
            id=sid,
            node_id=int(msg.remote_node_id),
            node=self._ctx.node_of(remote),
            app=remote,
            min_fidelity=0.0 if fid >= 100 else max(fid, 0) / 100,
        )

    def _run(self, code: bytes, *, stop: bool, flavour: str = "vanilla") -> None:
        session = self._ctx.session
        values = self._ctx.call(
            lambda: session.run_netqasm(
                code,
                flavour=flavour,
                sockets=list(self._sockets.values()),
                fresh=self._fresh,
                stop=stop,
            )
        )
        self._fresh = False
        for key, value in values.items():
            if key.startswith("@"):
                assert isinstance(value, list)
                arr = [None if v == UNDEFINED else v for v in value]
                self._memory.init_new_array(int(key[1:]), new_array=arr)
            else:
                assert isinstance(value, int)
                self._memory.set_register(key, value)


def flavour_of(subroutine: Any) -> str:
    """The flavour a subroutine's binary encoding needs (a transpiler, such as
    netqasm's NVSubroutineTranspiler, puts NV instructions in it; their ids mean other
    instructions in the vanilla flavour)."""
    modules = {type(i).__module__.rsplit(".", 1)[-1] for i in subroutine.instructions}
    for name in ("nv", "trapped_ion"):
        if name in modules:
            return name
    return "vanilla"


def socket_message(got: Any) -> tuple[int, list[Any]]:
    """A message of a NetQASM socket as it crossed qnodeos: (socket id, ["s", text]
    or ["m", header, payload]); ValueError naming anything else."""
    kinds = {"s": 3, "m": 4}
    if not (
        isinstance(got, list)
        and len(got) > 1
        and isinstance(got[0], int)
        and got[0] in IDS
        and isinstance(got[1], str)
        and kinds.get(got[1]) == len(got)
    ):
        raise ValueError(f"not a NetQASM socket message: {repr(got)[:200]}")
    return got[0], got[1:]


class QNodeOSSocket(_Socket):  # type: ignore[misc]
    """A NetQASM classical socket over qnodeos's node-to-node messages."""

    def __init__(
        self,
        app_name: str,
        remote_app_name: str,
        socket_id: int = 0,
        timeout: float | None = None,
        use_callbacks: bool = False,
        log_config: Any = None,
    ) -> None:
        self._ctx = context()
        if app_name != self._ctx.party:
            raise ValueError(f"this process runs party {self._ctx.party!r}, not {app_name!r}")
        self._ctx.node_of(remote_app_name)  # a clear error for an unknown party
        self.app_name = app_name
        self.remote_app_name = remote_app_name
        self.id = int(socket_id)
        self.timeout = timeout
        boxes = self._ctx.inboxes.setdefault(remote_app_name, {})
        self._box: deque[Any] = boxes.setdefault(self.id, deque())

    def _send(self, item: list[Any]) -> None:
        ch = self._ctx.channel(self.remote_app_name)
        self._ctx.call(ch.send, [self.id, *item])

    def _recv(self, block: bool, timeout: float | None) -> list[Any]:
        if self._box:
            return list(self._box.popleft())
        ch = self._ctx.channel(self.remote_app_name)
        boxes = self._ctx.inboxes[self.remote_app_name]
        limit = timeout if timeout is not None else self.timeout

        async def pull() -> list[Any] | None:
            with trio.move_on_after(limit if limit is not None else float("inf")):
                while True:
                    if not block:
                        try:
                            got = ch.recv_nowait()
                        except trio.WouldBlock:
                            return None
                    else:
                        got = await ch.recv()
                    sid, item = socket_message(got)
                    if sid == self.id:
                        return item
                    if sum(len(b) for b in boxes.values()) >= MAX_BUFFERED:
                        raise RuntimeError(
                            f"{self.remote_app_name!r} sent more than {MAX_BUFFERED} messages "
                            f"on sockets this app does not read"
                        )
                    boxes.setdefault(sid, deque()).append(item)
            raise TimeoutError(
                f"no message from {self.remote_app_name!r} on socket {self.id} in {limit} s"
            )

        item = self._ctx.call(pull)
        if item is None:
            raise RuntimeError("no message received")
        return item

    def send(self, msg: str) -> None:
        if not isinstance(msg, str):
            raise TypeError(f"Socket.send takes a str, not {type(msg).__name__}")
        self._send(["s", msg])

    def recv(self, block: bool = True, timeout: float | None = None, maxsize: Any = None) -> str:
        item = self._recv(block, timeout)
        if item[0] == "m":
            raise TypeError("got a structured message; use recv_structured")
        return str(item[1])

    def send_structured(self, msg: StructuredMessage) -> None:
        self._send(["m", msg.header, msg.payload])

    def recv_structured(
        self, block: bool = True, timeout: float | None = None, maxsize: Any = None
    ) -> StructuredMessage:
        item = self._recv(block, timeout)
        if item[0] == "m":
            return StructuredMessage(item[1], item[2])
        return StructuredMessage(None, item[1])

    def send_silent(self, msg: str) -> None:
        self.send(msg)

    def recv_silent(
        self, block: bool = True, timeout: float | None = None, maxsize: Any = None
    ) -> str:
        return self.recv(block, timeout, maxsize)


class QNodeOSBroadcastChannel(BroadcastChannelBySockets):  # type: ignore[misc]
    """NetQASM's broadcast channel: one classical socket per remote party."""

    @property
    def _socket_class(self) -> type[QNodeOSSocket]:
        return QNodeOSSocket


def get_qubit_state(qubit: Any, reduced_dm: bool = True) -> Any:
    """The density matrix of ``qubit`` (a netqasm ``Qubit`` of this app) now, as a numpy
    array: simulation only, as on NetQASM's simulators. ``reduced_dm=True``: the
    qubit's own 2x2 state; ``False``: the joint state of its entangled group (4x4 for
    one half of a pair), qubits ordered by node name, then physical qubit, so both
    ends of a pair read the same matrix. The state is not disturbed."""
    if isinstance(qubit, list | tuple):
        raise TypeError(
            "get_qubit_state on qnodeos takes one qubit; for the joint state of a "
            "pair or group, give one of its qubits with reduced_dm=False"
        )
    ctx = context()
    return ctx.call(ctx.session.state, int(qubit.qubit_id), not reduced_dm)


def _no_simulate(*args: Any, **kwargs: Any) -> None:
    raise RuntimeError("on qnodeos, run NetQASM app folders with `qnodeos netqasm APP_DIR`")


def install() -> None:
    """Make ``netqasm.sdk.external`` export the qnodeos classes, and
    ``netqasm.sdk.toolbox.sim_states`` qnodeos's (``qnodeos.netqasm.sim_states``),
    before an app imports them. Apps see ``get_simulator() == Simulator.DEBUG``: the
    value that takes no simulator-specific branch (apps test for ``NETSQUID`` to use
    NetSquid's own toolbox, which is not here; sim_states's helpers work either way)."""
    import types

    import netqasm.sdk
    from netqasm.runtime import settings

    os.environ["NETQASM_SIMULATOR"] = settings.Simulator.DEBUG.value
    ext = types.ModuleType("netqasm.sdk.external", "qnodeos's NetQASM backend")
    ext.__dict__.update(
        simulator=settings.Simulator.DEBUG,
        is_using_hardware=False,
        Simulator=settings.Simulator,
        get_simulator=settings.get_simulator,
        get_is_using_hardware=settings.get_is_using_hardware,
        NetQASMConnection=QNodeOSConnection,
        Socket=QNodeOSSocket,
        BroadcastChannel=QNodeOSBroadcastChannel,
        get_qubit_state=get_qubit_state,
        simulate_application=_no_simulate,
        run_application=_no_simulate,
    )
    sys.modules["netqasm.sdk.external"] = ext
    netqasm.sdk.external = ext
    import netqasm.sdk.toolbox

    from . import sim_states

    sys.modules["netqasm.sdk.toolbox.sim_states"] = sim_states
    netqasm.sdk.toolbox.sim_states = sim_states
