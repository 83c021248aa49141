"""Runs one party of a NetQASM app folder as a qnodeos app (an app module for
``qnodeos run``; ``qnodeos netqasm APP_DIR`` writes the network that names it).

The party's ``app_<party>.py`` is imported from the folder, unchanged, after
``netqasm.sdk.external`` was pointed at qnodeos's classes, and its synchronous
``main(app_config=..., **inputs)`` runs in a worker thread while this process's trio
loop keeps the app's session alive (heartbeats, replies, messages). The return value
becomes the app's result (made JSON-safe: numpy arrays become lists).
"""

from __future__ import annotations

import importlib.util
import inspect
import sys
import tempfile
from pathlib import Path
from typing import Any

import trio

from ..sdk.client import IN_PROCESS, Node
from . import backend


def load_main(app_dir: str, party: str) -> Any:
    """``main`` of ``APP_DIR/app_<party>.py`` (the folder goes on sys.path first, so the
    app's own imports of sibling modules work)."""
    folder = Path(app_dir).resolve()
    path = folder / f"app_{party}.py"
    if not path.is_file():
        found = sorted(p.stem.removeprefix("app_") for p in folder.glob("app_*.py"))
        raise FileNotFoundError(
            f"{path} does not exist; the parties in {folder} are: {', '.join(found) or 'none'}"
        )
    if str(folder) not in sys.path:
        sys.path.insert(0, str(folder))
    spec = importlib.util.spec_from_file_location(f"app_{party}", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    main = getattr(module, "main", None)
    if not callable(main):
        raise AttributeError(f"{path} defines no main()")
    return main


def plain(value: Any) -> Any:
    """``value`` as JSON can carry it (numpy arrays and scalars, tuples, sets)."""
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set):
        return [plain(v) for v in value]
    if hasattr(value, "tolist"):
        return plain(value.tolist())
    if isinstance(value, complex):
        return [value.real, value.imag]
    if value is None or isinstance(value, bool | int | float | str):
        return value
    return repr(value)


async def main(
    node: Node,
    app_dir: str,
    party: str,
    roles: dict[str, str],
    inputs: dict[str, Any] | None = None,
    log_dir: str | None = None,
    states: bool = False,
    num: int = 1,
) -> dict[str, Any]:
    """Run party ``party`` of the NetQASM app in ``app_dir`` on ``node`` (a session
    opened as that party); ``roles`` maps every party to its node; ``inputs`` are its
    keyword arguments (from ``<party>.yaml``).

    With ``states`` (simulation only), the result also holds, under ``qubit_states``,
    the density matrix of every qubit the app still held when its connection closed
    (2x2, entries as [re, im]). With ``num`` > 1 the app runs that many times in a row
    (as ``netqasm simulate --num``), the parties kept in step by their own messages and
    pairs; the result is then ``{"runs": [...]}``."""
    if not 1 <= num <= 100_000:
        raise ValueError(f"num = {num}; give 1..100000 runs")
    if IN_PROCESS.get() is not None:
        raise RuntimeError(
            "NetQASM apps run in a worker thread and need real time: run this network "
            "without --deterministic (qnodeos run, or qnodeos netqasm APP_DIR)"
        )
    backend.install()
    logs = log_dir or tempfile.mkdtemp(prefix=f"qnodeos-netqasm-{party}-")
    await trio.Path(logs).mkdir(parents=True, exist_ok=True)
    runs = []
    for k in range(num):
        if num > 1:
            node.progress(k, num, "runs")
        runs.append(await _once(node, app_dir, party, roles, inputs or {}, logs, states))
    return runs[0] if num == 1 else {"runs": runs}


async def _once(
    node: Node,
    app_dir: str,
    party: str,
    roles: dict[str, str],
    inputs: dict[str, Any],
    logs: str,
    states: bool,
) -> dict[str, Any]:
    from netqasm.runtime.app_config import AppConfig
    from netqasm.sdk.config import LogConfig

    app_main = load_main(app_dir, party)  # afresh: module-level state starts over
    log_config = LogConfig(app_dir=app_dir, log_dir=logs, log_subroutines_dir=logs)
    kwargs = dict(inputs)
    if "app_config" in inspect.signature(app_main).parameters:
        kwargs["app_config"] = AppConfig(
            app_name=party,
            node_name=roles[party],
            main_func=app_main,
            log_config=log_config,
            inputs=dict(inputs),
        )
    recorded: dict[str, Any] | None = {} if states else None
    token = trio.lowlevel.current_trio_token()
    ctx = backend.Context(
        session=node, party=party, roles=dict(roles), token=token, states=recorded
    )
    backend.set_context(ctx)
    try:
        result = await trio.to_thread.run_sync(lambda: app_main(**kwargs))
    finally:
        backend.set_context(None)
    out = {} if result is None else plain(result)
    out = out if isinstance(out, dict) else {"result": out}
    if recorded is not None:
        out["qubit_states"] = recorded
    return out
