"""SquidASM's program interface (``squidasm.sim.stack.program``): a program is a class
with ``meta`` (a :class:`ProgramMeta`: its name, the stacks it has classical and EPR
sockets with, the qubits it needs) and ``run(context)``, a generator that waits with
``yield from connection.flush()`` and ``yield from csocket.recv()`` and returns a dict
of results."""

from __future__ import annotations

import abc
from dataclasses import dataclass
from typing import Any

__all__ = ["Program", "ProgramContext", "ProgramMeta"]


class ProgramContext:
    """What a program gets to run with: the connection to its node, and its classical
    and EPR sockets by remote stack name."""

    def __init__(
        self,
        netqasm_connection: Any,
        csockets: dict[str, Any],
        epr_sockets: dict[str, Any],
        app_id: int,
    ) -> None:
        self._connection = netqasm_connection
        self._csockets = csockets
        self._epr_sockets = epr_sockets
        self._app_id = app_id

    @property
    def connection(self) -> Any:
        """The NetQASM connection to this program's node."""
        return self._connection

    @property
    def csockets(self) -> dict[str, Any]:
        """Classical sockets, by remote stack name."""
        return self._csockets

    @property
    def epr_sockets(self) -> dict[str, Any]:
        """EPR sockets, by remote stack name."""
        return self._epr_sockets

    @property
    def app_id(self) -> int:
        return self._app_id


@dataclass
class ProgramMeta:
    """What a program declares: its name, the stacks it opens classical sockets
    (``csockets``) and EPR sockets (``epr_sockets``) with, and ``max_qubits``."""

    name: str
    csockets: list[str]
    epr_sockets: list[str]
    max_qubits: int


class Program(abc.ABC):  # noqa: B024 (SquidASM's base class has no abstract methods)
    """Base class of programs: define ``meta`` and ``run``."""

    @property
    def meta(self) -> ProgramMeta:
        raise NotImplementedError

    def run(self, context: ProgramContext) -> Any:
        raise NotImplementedError
