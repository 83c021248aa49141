"""What a SquidASM program holds while it runs on a qnodeos node: its NetQASM
connection, classical sockets and EPR sockets (``squidasm.sim.stack.connection`` and
``csocket``).

A program runs in a worker thread of the run (``qnodeos.squidasm.host``); everything
here reaches the program's qnodeos session, in the run's trio loop, through
:class:`Bridge`. While the program's own Python code runs, simulated time stands
still (as in NetSquid, where no simulated time passes between a program's yields):
the bridge holds the run's mock clock from jumping until every program waits on the
node again.

``connection.flush()`` and ``csocket.recv()`` do their work when called and return a
generator that is already finished, with the value (``yield from`` takes it), so
programs written for SquidASM's generators run unchanged; a program that yields
anything else (NetSquid's event expressions) is refused by name.
"""

from __future__ import annotations

import math
from collections.abc import Awaitable, Callable, Generator
from typing import Any, TypeVar

import trio
import trio.testing
from netqasm.sdk.build_types import GenericHardwareConfig
from netqasm.sdk.classical_communication.message import StructuredMessage
from netqasm.sdk.classical_communication.socket import Socket
from netqasm.sdk.connection import BaseNetQASMConnection
from netqasm.sdk.network import NetworkInfo
from netqasm.sdk.shared_memory import SharedMemory

from ..lang import messages as m
from ..lang.program import INT_MIN as UNDEFINED
from ..netqasm.backend import flavour_of, network_info
from ..sdk.client import ClassicalSocket as QSocket
from ..sdk.client import Node

T = TypeVar("T")

__all__ = ["Bridge", "ClassicalSocket", "SquidConnection", "done", "network_info"]


def done(value: T) -> Generator[Any, None, T]:
    """A generator that returns ``value`` at once: what ``yield from`` needs where
    SquidASM's calls wait in simulated time (here the call already waited)."""
    return value
    yield  # a generator function; never reached


class Bridge:
    """One program's way into its session: ``call(fn, *args)`` runs ``fn`` in the
    run's trio loop and waits for it, from the program's thread. ``programs``
    counts programs whose Python code is running now (shared by a run's bridges):
    while it is above 0 a mock clock does not jump."""

    def __init__(self, node: Node, token: trio.lowlevel.TrioToken, gate: ClockGate) -> None:
        self.node = node
        self.token = token
        self.gate = gate

    def call(self, fn: Callable[..., Awaitable[T]], *args: Any) -> T:
        async def waiting() -> T:
            self.gate.leave()
            try:
                return await fn(*args)
            finally:
                self.gate.enter()

        return trio.from_thread.run(waiting, trio_token=self.token)


class ClockGate:
    """Holds a ``trio.testing.MockClock`` still while programs compute (any other
    clock: nothing to do)."""

    def __init__(self, clock: trio.abc.Clock) -> None:
        self.clock = clock
        self.running = 0

    def enter(self) -> None:
        self.running += 1
        self._set()

    def leave(self) -> None:
        self.running -= 1
        self._set()

    def _set(self) -> None:
        if isinstance(self.clock, trio.testing.MockClock):
            self.clock.autojump_threshold = math.inf if self.running > 0 else 0.0


def stack_network_info(ids: dict[str, int]) -> type[NetworkInfo]:
    """NetQASM's view of the network: stack names and their ids (an app is named as
    its stack)."""
    return network_info(ids, lambda app: app, "stack")


class SquidConnection(BaseNetQASMConnection):  # type: ignore[misc]
    """A program's NetQASM connection: each flush runs the subroutine on the node
    as one block (NV devices: compiled by netqasm's NV transpiler, as SquidASM does)."""

    def __init__(
        self,
        bridge: Bridge,
        stack: str,
        *,
        max_qubits: int,
        info: type[NetworkInfo],
        sockets: list[m.NqSocket],
        compiler: Any = None,
    ) -> None:
        self._bridge = bridge
        self._info = info
        self._memory = SharedMemory()
        self._sockets = sockets
        self._fresh = True
        super().__init__(
            app_name=stack,
            node_name=stack,
            max_qubits=max_qubits,
            # netqasm's builder leaves the wait for a pair out of subroutines for a
            # one-qubit device (SquidASM's create_epr blocks; NetQASM's, and qnodeos's,
            # does not): describe at least two qubits, the node enforces the quota
            hardware_config=GenericHardwareConfig(max(2, max_qubits)),
            compiler=compiler,
            _init_app=False,
            _setup_epr_sockets=False,
        )

    @property
    def shared_memory(self) -> SharedMemory:
        return self._memory

    def _get_network_info(self) -> type[NetworkInfo]:
        return self._info

    def __enter__(self) -> SquidConnection:
        return self

    def __exit__(self, *exc: object) -> None:
        """As SquidASM's: leaving the context sends nothing (programs flush)."""

    def _commit_serialized_message(
        self, raw_msg: bytes, block: bool = True, callback: Any = None
    ) -> None:
        raise NotImplementedError("a SquidASM program's connection only sends subroutines")

    def _commit_message(self, msg: Any, block: bool = True, callback: Any = None) -> None:
        raise TypeError(f"a SquidASM program cannot send NetQASM message {type(msg).__name__}")

    def flush(self, block: bool = True, callback: Any = None) -> Generator[Any, None, None]:
        """Run what the program recorded since the last flush, as one block."""
        proto = self._builder.subrt_pop_pending_subroutine()
        if proto is not None:
            sub = self._builder.subrt_compile_subroutine(proto)
            sub.instantiate(self.app_id)
            self._builder._reset()
            self._run(bytes(sub), stop=False, flavour=flavour_of(sub))
            if callback is not None:
                callback()
        return done(None)

    def commit_subroutine(
        self, subroutine: Any, block: bool = True, callback: Any = None
    ) -> Generator[Any, None, None]:
        self._run(bytes(subroutine), stop=False, flavour=flavour_of(subroutine))
        if callback is not None:
            callback()
        return done(None)

    def stop(self) -> None:
        """The program's end: the node frees every qubit it held."""
        self._run(b"", stop=True)

    def _run(self, code: bytes, *, stop: bool, flavour: str = "vanilla") -> None:
        node, sockets, fresh = self._bridge.node, list(self._sockets), self._fresh
        values = self._bridge.call(
            lambda: node.run_netqasm(
                code, flavour=flavour, sockets=sockets, fresh=fresh, stop=stop
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


def wire(got: Any) -> str | StructuredMessage:
    """A classical message as it crossed qnodeos (["s", text] or ["m", header,
    payload]), or ValueError naming what came instead."""
    if isinstance(got, list) and len(got) == 2 and got[0] == "s" and isinstance(got[1], str):
        return got[1]
    if isinstance(got, list) and len(got) == 3 and got[0] == "m":
        return StructuredMessage(got[1], got[2])
    raise ValueError(f"not a SquidASM classical message: {repr(got)[:200]}")


class ClassicalSocket(Socket):  # type: ignore[misc]
    """A classical socket to the program on another stack (SquidASM's
    ``ClassicalSocket``): ``send`` returns at once, ``recv`` is waited on with
    ``yield from``. Messages arrive in order; a structured message arrives as one."""

    def __init__(self, bridge: Bridge, channel: QSocket, app_name: str, remote_app_name: str):
        super().__init__(app_name=app_name, remote_app_name=remote_app_name, socket_id=0)
        self._bridge = bridge
        self._channel = channel

    def _send(self, item: list[Any]) -> None:
        self._bridge.call(self._channel.send, item)

    def _recv(self) -> str | StructuredMessage:
        return wire(self._bridge.call(self._channel.recv))

    def send(self, msg: str) -> None:
        """Send a string (as SquidASM: anything else is sent as its ``str``)."""
        if isinstance(msg, StructuredMessage):
            self.send_structured(msg)
            return
        self._send(["s", msg if isinstance(msg, str) else str(msg)])

    def recv(self, **kwargs: Any) -> Generator[Any, None, Any]:
        return done(self._recv())

    def send_int(self, value: int) -> None:
        self.send(str(value))

    def recv_int(self) -> Generator[Any, None, int]:
        return done(int(str(self._recv())))

    def send_float(self, value: float) -> None:
        self.send(str(value))

    def recv_float(self) -> Generator[Any, None, float]:
        return done(float(str(self._recv())))

    def send_structured(self, msg: StructuredMessage) -> None:
        self._send(["m", msg.header, msg.payload])

    def recv_structured(self, **kwargs: Any) -> Generator[Any, None, Any]:
        return done(self._recv())

    def send_silent(self, msg: str) -> None:
        self.send(msg)

    def recv_silent(self, **kwargs: Any) -> Any:
        return self._recv()
