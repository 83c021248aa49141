"""The classical process: a thin trio/zmq adapter around the sans-IO ``Kernel``.

Apps connect DEALER sockets to our ROUTER (the connection identity is the app's
identity: nothing in a message can claim to be another app). The quantum process is
reached through a DEALER. Three tasks in one nursery: app traffic, device traffic, and a
timer for leases; each calls the kernel and sends what it returns.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Collection, Mapping
from typing import Any

import trio
import trio.lowlevel

from ..config import LinkConfig, NodeConfig
from ..errors import ProtocolError, QNodeOSError
from ..lang import codec
from ..transport import Socket, bind_router, connect_dealer
from .core import Kernel
from .outputs import Out, Resume, ToApp, ToDevice, ToNode

log = logging.getLogger("qnodeos.kernel")
TICK_S = 0.05


class NodeService:
    """Node ``cfg``; ``peers`` maps the other nodes' names to their peer endpoints,
    ``links`` are the node's quantum links, ``delays`` the classical delay (s) to each
    peer. ``clock`` is the wall clock shared with the other nodes (link-layer deadlines
    are compared across nodes): ``time.time``, or trio's clock in deterministic mode."""

    def __init__(
        self,
        cfg: NodeConfig,
        peers: Mapping[str, str] | None = None,
        *,
        links: Collection[LinkConfig] = (),
        delays: Mapping[str, float] | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.cfg = cfg
        self.peers = dict(peers or {})
        self.delays = dict(delays or {})
        self.clock = clock
        self.kernel = Kernel(
            node=cfg.name,
            spec=cfg.device,
            policy=cfg.policy,
            lease_s=cfg.lease_s,
            budget=cfg.budget,
            peers=self.peers,
            links=links,
            speed=cfg.speed,
            seed=cfg.seed,
            limits=cfg.limits,
        )
        self._outboxes: dict[str, trio.MemorySendChannel[tuple[float, bytes]]] = {}
        self._nursery: trio.Nursery | None = None
        self.node_codec = codec.node_to_node()
        self._dealers: dict[str, Socket] = {}
        self.from_app = codec.app_to_node()
        self.to_app = codec.node_to_app()
        self.to_dev = codec.to_device()
        self.from_dev = codec.from_device()
        self._ready = trio.Event()

    async def _send(self, apps: Socket, dev: Socket, outs: list[Out]) -> None:
        while outs:
            out = outs.pop(0)
            if isinstance(out, ToApp):
                await apps.send([out.addr, self.to_app.encode(out.msg)])
            elif isinstance(out, ToNode):
                self._to_node(out.node, self.node_codec.encode(out.msg))
            elif isinstance(out, Resume):
                await trio.lowlevel.checkpoint()  # let other apps, the device and the timer run
                outs += self.kernel.resume()
            else:
                await dev.send([self.to_dev.encode(out.msg)])
        if self.kernel.device_ready:
            self._ready.set()

    def _to_node(self, node: str, data: bytes) -> None:
        """Queue ``data`` for ``node``; a sender task per node keeps order and applies
        the link's classical delay."""
        box = self._outboxes.get(node)
        if box is None:
            assert self._nursery is not None
            box, queue = trio.open_memory_channel[tuple[float, bytes]](math.inf)
            self._outboxes[node] = box
            self._nursery.start_soon(self._sender, self._dealer(node), queue)
        box.send_nowait((trio.current_time() + self.delays.get(node, 0.0), data))

    async def _sender(
        self, sock: Socket, queue: trio.MemoryReceiveChannel[tuple[float, bytes]]
    ) -> None:
        async for due, data in queue:
            await trio.sleep_until(due)
            await sock.send([data])

    async def _apps(self, apps: Socket, dev: Socket) -> None:
        while True:
            frames = await apps.recv()
            addr = frames[0]
            now = self.clock()
            if len(frames) != 2:
                outs = self.kernel.bad_message(
                    addr, ProtocolError(f"expected 1 data frame, got {len(frames) - 1}")
                )
            else:
                try:
                    msg = self.from_app.decode(frames[1])
                except ProtocolError as exc:
                    outs = self.kernel.bad_message(addr, exc)
                else:
                    try:
                        outs = self.kernel.app_message(addr, msg, now)
                    except Exception as exc:  # a bug must not take the node down
                        log.exception("kernel failed on %r", msg)
                        outs = self.kernel.bad_message(
                            addr, QNodeOSError(f"internal error: {type(exc).__name__}: {exc}")
                        )
            await self._send(apps, dev, outs)

    async def _incoming(
        self,
        sock: Socket,
        decode: Callable[[bytes], Any],
        handle: Callable[[Any], list[Out]],
        source: str,
        apps: Socket,
        dev: Socket,
    ) -> None:
        """Decode what ``source`` sends on ``sock`` and hand it to the kernel."""
        while True:
            frames = await sock.recv()
            try:
                msg = decode(frames[-1])
            except ProtocolError as exc:
                log.warning("bad message from %s: %s", source, exc)
                continue
            await self._send(apps, dev, handle(msg))

    def _dealer(self, node: str) -> Socket:
        sock = self._dealers.get(node)
        if sock is None:
            sock = self._dealers[node] = connect_dealer(self.peers[node])
        return sock

    async def _timer(self, apps: Socket, dev: Socket) -> None:
        while True:
            await trio.sleep(TICK_S)
            await self._send(apps, dev, self.kernel.handle_timer(self.clock()))

    async def _hello(self, dev: Socket) -> None:
        # Ping until the quantum process answers (it may still be starting).
        while not self._ready.is_set():
            for out in self.kernel.hello():
                assert isinstance(out, ToDevice)
                await dev.send([self.to_dev.encode(out.msg)])
            with trio.move_on_after(0.2):
                await self._ready.wait()

    async def serve(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        apps = bind_router(self.cfg.app_endpoint)
        dev = connect_dealer(self.cfg.qdevice_endpoint)
        peer = bind_router(self.cfg.peer_endpoint)
        try:
            async with trio.open_nursery() as nursery:
                self._nursery = nursery
                nursery.start_soon(
                    self._incoming,
                    dev,
                    self.from_dev.decode,
                    self.kernel.device_message,
                    "the quantum process",
                    apps,
                    dev,
                )
                await self._hello(dev)
                nursery.start_soon(self._apps, apps, dev)
                nursery.start_soon(self._timer, apps, dev)
                nursery.start_soon(
                    self._incoming,
                    peer,
                    self.node_codec.decode,
                    lambda msg: self.kernel.peer_message(msg, self.clock()),
                    "another node",
                    apps,
                    dev,
                )
                task_status.started()
        finally:
            for sock in (apps, dev, peer, *self._dealers.values()):
                sock.close()
