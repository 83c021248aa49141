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


def test_a_node_that_is_not_up_is_reported_at_once_over_tcp() -> None:
    """Over tcp too: a refused connection says so within a second, naming the endpoint,
    not after the 10 s timeout (zmq alone would retry in silence)."""
    import socket

    with socket.socket() as s:  # a port nobody listens on once this socket is closed
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    ep = f"tcp://127.0.0.1:{port}"

    async def main() -> None:
        async with sdk.connect("bob", app="x", qubits=1, endpoint=ep, timeout=10):
            pass

    start = time.monotonic()
    with pytest.raises(sdk.ConnectionClosed) as caught:
        trio.run(main)
    assert time.monotonic() - start < 1.0
    assert f"node 'bob' is not up: nothing listens at {ep} (" in str(caught.value)
    assert "start it with `qnodeos node bob" in str(caught.value)
