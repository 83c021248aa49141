"""How a runner (``qnodeos run``, ``qnodeos.Network.run``) calls an app's ``main``.

``async def main(node: str, **args)`` gets its node's name and connects itself
(``sdk.connect(node, app=..., qubits=...)``). ``async def main(node: sdk.Node, **args)``
(the first parameter annotated ``Node``) gets a session already open, as the app named
in the network file, with ``qubits`` and ``priority`` taken from its ``args`` (else
from ``main``'s own defaults for them, else 1 and 0); the session closes when ``main``
returns.

``check_main`` checks an app's ``args`` against ``main``'s signature before anything
starts: a runner calls it for every app before it starts any node.

>>> async def main(node: str, *, rounds: int = 10, angle: float = 0.0) -> dict: ...
>>> check_main(main, {"rounds": 5, "angle": 1})  # an int is a fine float
>>> check_main(main, {"roundz": 5})
Traceback (most recent call last):
  ...
TypeError: main(): got an unexpected keyword argument 'roundz' (it takes rounds, angle)
>>> check_main(main, {"rounds": "5"})
Traceback (most recent call last):
  ...
TypeError: args.rounds = '5' is a str; main() wants int
"""

from __future__ import annotations

import inspect
import types
import typing
from collections.abc import Awaitable, Callable
from contextlib import AsyncExitStack
from typing import Any

from ..errors import RemoteError
from .client import APP_NAME, Node, connect

SESSION_ARGS = {"qubits": 1, "priority": 0}  # a session main's quota and priority


def wants_session(main: Callable[..., Any]) -> bool:
    params = list(inspect.signature(main).parameters.values())
    if not params:
        return False
    ann = params[0].annotation
    return ann is Node or (isinstance(ann, str) and ann.rsplit(".", 1)[-1] == "Node")


def _session_args(
    main: Callable[..., Any], args: dict[str, Any]
) -> tuple[dict[str, Any], dict[str, Any]]:
    """A session main's (session settings, arguments left for ``main``): ``qubits`` and
    ``priority`` from ``args``, else ``main``'s defaults for them, else 1 and 0; passed
    on to ``main`` too when it names them."""
    params = inspect.signature(main).parameters
    rest = dict(args)
    session = {}
    for key, default in SESSION_ARGS.items():
        p = params.get(key)
        mine = p.default if p is not None and p.default is not inspect.Parameter.empty else default
        session[key] = rest.pop(key, mine)
        if p is not None:
            rest[key] = session[key]
    return session, rest


def _accepts(value: Any, hint: Any) -> bool:
    """Does ``value`` (from a network file) fit the annotation ``hint``? Only plain
    types and unions of them are judged; anything else is taken as fitting."""
    if hint is Any or hint is inspect.Parameter.empty:
        return True
    origin = typing.get_origin(hint)
    if origin is typing.Union or origin is types.UnionType:
        return any(_accepts(value, h) for h in typing.get_args(hint))
    if hint is None or hint is type(None):
        return value is None
    kind = origin or hint
    if not isinstance(kind, type):
        return True
    if kind is float:
        return isinstance(value, int | float) and not isinstance(value, bool)
    if kind is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if kind in (list, tuple, dict, str, bool):
        return isinstance(value, list if kind is tuple else kind)
    return True


def check_main(main: Any, args: dict[str, Any]) -> None:
    """TypeError saying what is wrong if ``main`` cannot be called with ``args`` as a
    runner would call it: not an ``async def``, a keyword it does not take, a required
    one missing, a value of the wrong type (plain annotated types only)."""
    if not callable(main):
        raise TypeError("main is not a function")
    if not inspect.iscoroutinefunction(main):
        raise TypeError("main must be an `async def` (a runner awaits it)")
    sig = inspect.signature(main)
    if wants_session(main):
        _, args = _session_args(main, args)
    try:
        bound = sig.bind("node", **args)
    except TypeError as exc:
        takes = [
            p.name
            for p in list(sig.parameters.values())[1:]
            if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)
        ]
        raise TypeError(f"main(): {exc} (it takes {', '.join(takes) or 'no arguments'})") from None
    try:
        hints = typing.get_type_hints(main)
    except Exception:  # annotations naming what cannot be resolved: nothing to judge by
        hints = {}
    first = next(iter(sig.parameters))
    for name, value in bound.arguments.items():
        param = sig.parameters[name]
        if name == first or param.kind in (param.VAR_KEYWORD, param.VAR_POSITIONAL):
            continue
        hint = hints.get(name, inspect.Parameter.empty)
        if not _accepts(value, hint):
            want = getattr(hint, "__name__", None) or str(hint).replace("typing.", "")
            raise TypeError(
                f"args.{name} = {value!r} is a {type(value).__name__}; main() wants {want}"
            )


async def call_main(
    main: Callable[..., Awaitable[Any]], node: str, app: str, args: dict[str, Any]
) -> Any:
    """Run an app's ``main`` as the network file says: ``node`` its node, ``app`` its
    name there (``sdk.app_name()`` inside, the default of ``sdk.connect``), ``args``
    its arguments."""
    APP_NAME.set(app)  # this task's context: main and the tasks it starts
    if not wants_session(main):
        return await main(node, **args)
    session, rest = _session_args(main, args)
    async with AsyncExitStack() as stack:
        try:
            conn = await stack.enter_async_context(connect(node, app=app, **session))
        except RemoteError as exc:
            if exc.code != "quota":
                raise
            # say where the quota came from: the reader fixes it there
            given = "the network file" if "qubits" in args else "main's default"
            raise RemoteError(
                f"{exc} (the quota is args.qubits = {session['qubits']}, from {given})",
                code=exc.code,
            ) from None
        return await main(conn, **rest)
