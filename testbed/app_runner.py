"""Runs one app in its own OS process: ``python -m testbed.app_runner MODULE NODE``
(``qnodeos run`` forks it from its fork server and calls ``main`` with those arguments).

The app module defines ``async def main(node: str, **args) -> dict``. The result is
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


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="testbed.app_runner")
    p.add_argument("module")
    p.add_argument("node")
    p.add_argument("--args", default="{}", help="JSON object of keyword arguments")
    p.add_argument("--result", required=True)
    a = p.parse_args(argv)
    out: dict[str, Any]
    code = 0
    try:
        mod = importlib.import_module(a.module)
        kwargs = json.loads(a.args)
        out = {"result": trio.run(lambda: mod.main(a.node, **kwargs))}
    except Exception as exc:  # report any app failure as data, for the launcher
        traceback.print_exc()
        out = {"error": f"{type(exc).__name__}: {exc}"}
        code = 1
    Path(a.result).write_text(json.dumps(out, indent=2))
    return code


if __name__ == "__main__":
    sys.exit(main())
