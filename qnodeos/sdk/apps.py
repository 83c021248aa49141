"""How a runner (``qnodeos run``, ``qnodeos.Network.run``) calls an app's ``main``.

``async def main(node: str, **args)`` gets its node's name and connects itself
(``sdk.connect(node, app=..., qubits=...)``). ``async def main(node: sdk.Node, **args)``
(the first parameter annotated ``Node``) gets a session already open, as the app named
in the network file, with ``qubits`` (default 1) and ``priority`` (default 0) taken
from its ``args``; the session closes when ``main`` returns.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable
from typing import Any

from .client import Node, connect


def wants_session(main: Callable[..., Any]) -> bool:
    params = list(inspect.signature(main).parameters.values())
    if not params:
        return False
    ann = params[0].annotation
    return ann is Node or (isinstance(ann, str) and ann.rsplit(".", 1)[-1] == "Node")


async def call_main(
    main: Callable[..., Awaitable[Any]], node: str, app: str, args: dict[str, Any]
) -> Any:
    """Run an app's ``main`` as the network file says: ``node`` its node, ``app`` its
    name there, ``args`` its arguments."""
    if not wants_session(main):
        return await main(node, **args)
    rest = dict(args)
    qubits, priority = rest.pop("qubits", 1), rest.pop("priority", 0)
    async with connect(node, app=app, qubits=qubits, priority=priority) as session:
        return await main(session, **rest)
