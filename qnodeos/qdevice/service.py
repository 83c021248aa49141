"""The quantum process in-process: a trio adapter around the sans-IO ``QDeviceServer``
(deterministic mode; real runs use the blocking loop in ``realtime``), and the device
clock both share.

Device time is wall time since start times ``speed``; with ``speed = inf`` ops run back
to back and nothing sleeps.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Mapping

import trio

from ..config import LinkConfig, NodeConfig
from ..transport import Socket, bind_router, connect_dealer
from .server import Out, QDeviceServer, ToKernel

log = logging.getLogger("qnodeos.qdevice")


class DeviceClock:
    """Device ns from a wall clock ``now()`` in seconds: (now - t0) * 1e9 * speed.
    With ``speed = inf`` device time is only the sum of op durations (now_ns is 0).
    ``epoch_ns`` is the wall time of device time 0, in ns."""

    def __init__(self, speed: float, now: Callable[[], float]) -> None:
        self.speed = speed
        self.now = now
        self.t0 = now()
        self.epoch_ns = round(self.t0 * 1e9)
        self.realtime = not math.isinf(speed)

    def now_ns(self) -> float:
        return (self.now() - self.t0) * 1e9 * self.speed if self.realtime else 0.0

    def wall_at(self, device_ns: float) -> float:
        return self.t0 + device_ns / (1e9 * self.speed)


async def serve_device(
    cfg: NodeConfig,
    links: list[LinkConfig] | None = None,
    peers: Mapping[str, str] | None = None,
    delays: Mapping[str, float] | None = None,
    *,
    task_status: trio.TaskStatus[QDeviceServer] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Serve the device of node ``cfg`` in this trio run until cancelled. ``peers``:
    the other nodes -> their quantum processes' peer endpoints; ``delays``: classical delay
    (s) to each. All input goes through one channel, so handling is in arrival order."""
    clock = DeviceClock(cfg.speed, trio.current_time)
    server = QDeviceServer(cfg, links or [], epoch_ns=clock.epoch_ns)
    ksock = bind_router(cfg.qdevice_endpoint)
    psock = bind_router(cfg.qpeer_endpoint) if peers else None
    dealers = {n: connect_dealer(ep) for n, ep in (peers or {}).items()}
    delays = dict(delays or {})
    inbox_w, inbox = trio.open_memory_channel[tuple[bool, list[bytes]]](math.inf)

    async def reader(sock: Socket, from_kernel: bool) -> None:
        while True:
            inbox_w.send_nowait((from_kernel, await sock.recv()))

    async def sender(
        sock: Socket, queue: trio.MemoryReceiveChannel[tuple[float, list[bytes]]]
    ) -> None:
        async for when, frames in queue:  # FIFO per socket
            await trio.sleep_until(when)
            await sock.send(frames)

    outboxes: dict[int, trio.MemorySendChannel[tuple[float, list[bytes]]]] = {}
    try:
        async with trio.open_nursery() as nursery:

            def schedule(outs: list[Out]) -> None:
                now = trio.current_time()
                for o in outs:
                    if isinstance(o, ToKernel):
                        due = clock.wall_at(o.due_ns) if clock.realtime else now
                        sock = ksock
                        frames = o.frames
                    elif o.node in dealers:
                        due = now + delays.get(o.node, 0.0)
                        sock, frames = dealers[o.node], [o.data]
                    else:
                        log.warning("no quantum process of node %r to send to", o.node)
                        continue
                    outboxes[id(sock)].send_nowait((due, frames))

            for sock in (ksock, *dealers.values()):
                w, r = trio.open_memory_channel[tuple[float, list[bytes]]](math.inf)
                outboxes[id(sock)] = w
                nursery.start_soon(sender, sock, r)
            nursery.start_soon(reader, ksock, True)
            if psock is not None:
                nursery.start_soon(reader, psock, False)
            task_status.started(server)
            while True:
                with trio.move_on_at(server.next_timer_s()):
                    from_kernel, frames = await inbox.receive()
                    now_ns, now_s = clock.now_ns(), trio.current_time()
                    if from_kernel:
                        schedule(server.handle(frames, now_ns, now_s))
                    else:
                        schedule(server.peer_message(frames[-1], now_ns, now_s))
                if trio.current_time() >= server.next_timer_s():
                    schedule(server.timer(clock.now_ns(), trio.current_time()))
    finally:
        for s in (ksock, psock, *dealers.values()):
            if s is not None:
                s.close()
