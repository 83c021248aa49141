"""The application SDK: connect to a node, record quantum blocks, read their results.

>>> import trio
>>> from qnodeos import sdk
>>> async def main() -> None:                                   # doctest: +SKIP
...     async with sdk.connect("alice", app="demo", qubits=1) as node:
...         async with node.block() as b:
...             q = b.qubit()
...             q.h()
...             m = q.measure()
...         print(m.value)
"""

from ..errors import ConnectionClosed, RemoteError
from .builder import Block, Future, LoopVar, Qubit
from .client import (
    BlockError,
    ClassicalSocket,
    Node,
    app_name,
    connect,
    network_config,
    peer_node,
    resolve_endpoint,
)
from .epr import EprError, EprSocket, Pair

__all__ = [
    "Block",
    "ClassicalSocket",
    "BlockError",
    "ConnectionClosed",
    "RemoteError",
    "EprError",
    "EprSocket",
    "Pair",
    "Future",
    "LoopVar",
    "Node",
    "Qubit",
    "app_name",
    "connect",
    "network_config",
    "peer_node",
    "resolve_endpoint",
]
