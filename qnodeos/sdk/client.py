"""The app side of the app API: connect to a node, run blocks, get values back.

``connect`` opens a session (register with a qubit quota), keeps its lease alive with
heartbeats in the background, notices a node that stopped answering, and stops the
session on exit, freeing everything the app held on the node.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import trio

from ..errors import ConnectionClosed, LocalError, ProtocolError, RemoteError
from ..lang import codec
from ..lang import messages as m
from ..lang.program import Subroutine
from ..lang.text import parse
from ..transport import Socket, connect_dealer
from .builder import Block, Qubit, QubitIds, QubitOwner

Values = dict[str, int | list[int]]


class BlockError(RemoteError):
    """The node refused or aborted a block; ``code`` says why (invalid, device, program,
    quota, busy, aborted). The session stays open; the app may submit another block."""


def resolve_endpoint(node: str, network: str | None, endpoint: str | None) -> str:
    """Where node ``node`` takes apps: ``endpoint`` if given, else from the network file
    (``network`` or $QNODEOS_NETWORK), else from the embedded default network."""
    if endpoint:
        return endpoint
    from ..config import load_network, parse_network
    from ..defaults import default_network_text

    path = network or os.environ.get("QNODEOS_NETWORK")
    cfg = load_network(path) if path else parse_network(default_network_text(), "<default>")
    return cfg.node(node).app_endpoint


class Node(QubitOwner):
    """An open session with a node. Create with ``connect``."""

    def __init__(self, sock: Socket, quota: int, node: str) -> None:
        self._sock = sock
        self._enc = codec.app_to_node()
        self._dec = codec.node_to_app()
        self._replies_in, self._replies = trio.open_memory_channel[m.NodeToApp](64)
        self._lock = trio.Lock()
        self._ids = QubitIds(quota)
        self._qubits: dict[int, Qubit] = {}
        self._current: Block | None = None
        self._closed: str | None = None
        self._last_heard = trio.current_time()
        self._blocks = 0
        self.name = node
        self.app_id = 0
        self.device = ""
        self.native_gates: list[str] = []
        self.lease_s = 1.0

    def current_block(self) -> Block:
        if self._current is None:
            raise LocalError("qubit operations must be inside `async with node.block()`")
        return self._current

    # -- background tasks ----------------------------------------------------------------
    async def _reader(self) -> None:
        while True:
            frames = await self._sock.recv()
            try:
                msg = self._dec.decode(frames[-1])
            except ProtocolError as exc:
                msg = m.ErrorReply(code="bad_reply", message=f"node sent a bad reply: {exc}")
            self._last_heard = trio.current_time()
            if isinstance(msg, m.Alive):
                continue
            if isinstance(msg, m.Stopped):
                self._closed = msg.reason
            await self._replies_in.send(msg)

    async def _heartbeat(self) -> None:
        while True:
            await trio.sleep(self.lease_s / 4)
            if trio.current_time() - self._last_heard > 3 * self.lease_s:
                self._closed = f"node {self.name!r} stopped answering"
                await self._replies_in.send(m.Stopped(reason=self._closed))
                return
            await self._sock.send([self._enc.encode(m.Heartbeat())])

    # -- requests ------------------------------------------------------------------------
    async def _request(self, msg: m.AppToNode) -> m.NodeToApp:
        if self._closed is not None:
            raise ConnectionClosed(f"session with node {self.name!r} is closed: {self._closed}")
        async with self._lock:
            await self._sock.send([self._enc.encode(msg)])
            reply = await self._replies.receive()
        if isinstance(reply, m.Stopped):
            raise ConnectionClosed(f"session with node {self.name!r} ended: {reply.reason}")
        if isinstance(reply, m.ErrorReply):
            raise RemoteError(reply.message, code=reply.code)
        return reply

    async def run(self, sub: Subroutine | str, *, deadline_s: float | None = None) -> Values:
        """Run a raw subroutine (or its text form); return the values of its ``ret``s."""
        if isinstance(sub, str):
            sub = parse(sub)
        self._blocks += 1
        reply = await self._request(m.Submit(block=self._blocks, sub=sub, deadline_s=deadline_s))
        if isinstance(reply, m.BlockFailed):
            self._sync_held(reply.held)
            raise BlockError(f"block failed ({reply.code}): {reply.message}", code=reply.code)
        if not isinstance(reply, m.BlockDone) or reply.block != self._blocks:
            raise RemoteError(f"unexpected reply to block {self._blocks}: {reply!r}")
        self.last_block = reply
        return reply.values

    def _sync_held(self, held: list[int]) -> None:
        self._ids.used = set(held)
        for vid, q in list(self._qubits.items()):
            if vid not in held:
                q.freed = True
                del self._qubits[vid]

    @asynccontextmanager
    async def block(self, *, deadline_s: float | None = None) -> AsyncIterator[Block]:
        """Record a block; it runs on the device as one unit when the ``with`` ends."""
        if self._current is not None:
            raise LocalError("blocks do not nest")
        b = Block(qubit_ids=self._ids, owner=self)
        self._current = b
        try:
            yield b
        except BaseException:
            for q in b.allocated:
                self._ids.give(q.id)
            raise
        finally:
            self._current = None
        for q in b.allocated:
            self._qubits[q.id] = q
        await self.run(b.build(), deadline_s=deadline_s)
        b.fill(self.last_block.values)
        for q in b.freed:
            self._ids.give(q.id)
            self._qubits.pop(q.id, None)


@asynccontextmanager
async def connect(
    node: str,
    *,
    app: str,
    qubits: int,
    priority: int = 0,
    network: str | None = None,
    endpoint: str | None = None,
    timeout: float = 10.0,
) -> AsyncIterator[Node]:
    """Open a session with ``node`` as app ``app`` with a quota of ``qubits`` qubits.

    The node is found through ``endpoint``, the network file ``network`` (or
    $QNODEOS_NETWORK), or the embedded default network. Raises ConnectionClosed if the
    node does not answer within ``timeout`` seconds, RemoteError if it refuses.
    """
    ep = resolve_endpoint(node, network, endpoint)
    sock = connect_dealer(ep)
    conn = Node(sock, qubits, node)
    try:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(conn._reader)
            reply: m.NodeToApp | None = None
            with trio.move_on_after(timeout):
                reply = await conn._request(m.Register(app=app, qubits=qubits, priority=priority))
            if reply is None:
                raise ConnectionClosed(
                    f"node {node!r} at {ep} did not answer within {timeout} s; is it running?"
                )
            assert isinstance(reply, m.Registered)
            conn.app_id, conn.device = reply.app_id, reply.device
            conn.native_gates, conn.lease_s = reply.native_gates, reply.lease_s
            nursery.start_soon(conn._heartbeat)
            try:
                yield conn
            finally:
                if conn._closed is None:
                    with trio.move_on_after(2.0) as cs:
                        cs.shield = True
                        try:
                            await conn._request(m.Stop())
                        except ConnectionClosed:
                            pass
                nursery.cancel_scope.cancel()
    finally:
        sock.close()
