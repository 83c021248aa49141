"""Runs one app in its own OS process: ``python -m qnodeos.testbed.app_runner MODULE NODE``
(``qnodeos run`` forks it from its fork server and calls ``main`` with those arguments).

The app module defines ``async def main(node: str, **args) -> dict`` (or ``main(node:
sdk.Node, ...)`` to get a session opened for it: see ``qnodeos.sdk.apps``). The result is
written as JSON to ``--result``; an exception is written as ``{"error": ...}`` and the
process exits 1.
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys
import traceback
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import trio

from qnodeos.sdk.apps import call_main


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="qnodeos.testbed.app_runner")
    p.add_argument("module")
    p.add_argument("node")
    p.add_argument("--args", default="{}", help="JSON object of keyword arguments")
    p.add_argument("--result", required=True)
    p.add_argument("--name", default="", help="the app's name in the network file")
    a = p.parse_args(argv)
    out: dict[str, Any]
    code = 0
    try:
        mod = importlib.import_module(a.module)
        kwargs = json.loads(a.args)
        name = a.name or a.module.rsplit(".", 1)[-1]
        out = {"result": trio.run(call_main, mod.main, a.node, name, kwargs)}
    except Exception as exc:  # report any app failure as data, for the launcher
        traceback.print_exc()
        out = {"error": f"{type(exc).__name__}: {exc}"}
        code = 1
    Path(a.result).write_text(json.dumps(out, indent=2))
    return code


if __name__ == "__main__":
    sys.exit(main())
