"""Connecting goes wrong clearly and at once: a node that is not up, and the SDK used
from asyncio (a Jupyter cell's top-level ``await`` without ``%autoawait trio``)."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest
import trio

from qnodeos import sdk
from qnodeos.errors import LocalError


def test_a_node_that_is_not_up_is_reported_at_once(tmp_path: Path) -> None:
    async def main() -> None:
        ep = f"ipc://{tmp_path}/bob-app.sock"
        async with sdk.connect("bob", app="x", qubits=1, endpoint=ep, timeout=10):
            pass

    start = time.monotonic()
    with pytest.raises(sdk.ConnectionClosed, match="node 'bob' is not up: nothing listens"):
        trio.run(main)
    assert time.monotonic() - start < 1.0  # not after the 10 s timeout


def test_the_sdk_from_asyncio_says_how_to_switch_to_trio() -> None:
    async def cell() -> None:  # what a notebook cell's top-level await runs under asyncio
        async with sdk.connect("bob", app="x", qubits=1, endpoint="mem://bob"):
            pass

    with pytest.raises(LocalError, match="`%autoawait trio`"):
        asyncio.run(cell())
