"""The quantum process in-process: a trio adapter around the sans-IO ``QDeviceServer``
(deterministic mode; real runs use the blocking loop in ``realtime``).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping

import trio

from ..config.network import LinkConfig, NodeConfig
from ..errors import NodeFailure
from ..runtime.transport import Socket, bind_router, connect_dealer
from .clock import DeviceClock
from .outbox import Outbox
from .server import Cancel, Out, QDeviceServer, ToKernel

log = logging.getLogger("qnodeos.qdevice")


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
    server.fail_fast = True  # (a bug ends the run, as the service's own guard does)
    ksock = bind_router(cfg.qdevice_endpoint)
    psock = bind_router(cfg.qpeer_endpoint) if peers else None
    dealers = {n: connect_dealer(ep) for n, ep in (peers or {}).items()}
    delays = dict(delays or {})
    inbox_w, inbox = trio.open_memory_channel[tuple[bool, list[bytes]]](math.inf)
    outbox: Outbox[Socket] = Outbox()
    wake = trio.Event()

    async def reader(sock: Socket, from_kernel: bool) -> None:
        while True:
            inbox_w.send_nowait((from_kernel, await sock.recv()))

    async def sender() -> None:
        nonlocal wake
        while True:
            with trio.move_on_at(outbox.next_due()):
                await wake.wait()
            wake = trio.Event()
            for sock, frames in outbox.pop_due(trio.current_time()):
                await sock.send(frames)

    def schedule(outs: list[Out]) -> None:
        now = trio.current_time()
        for o in outs:
            if isinstance(o, ToKernel):
                due = clock.wall_at(o.due_ns) if clock.realtime else now
                outbox.push(due, ksock, o.frames, o.tag)
            elif isinstance(o, Cancel):
                outbox.cancel(o.tag)
            elif o.node in dealers:
                outbox.push(now + delays.get(o.node, 0.0), dealers[o.node], [o.data])
            else:  # e.g. a pull made for a node that is not listed: rate-limited
                server.bad.report(f"node {o.node}", "no quantum process to send to", now=now)
        wake.set()

    try:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(sender)
            nursery.start_soon(reader, ksock, True)
            if psock is not None:
                nursery.start_soon(reader, psock, False)
            task_status.started(server)
            try:
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
            except Exception as exc:  # ends the run, naming the node (a real one logs it)
                why = f"node {cfg.name!r}: quantum process failed: {type(exc).__name__}: {exc}"
                raise NodeFailure(why) from exc
    finally:
        if server.timeline is not None:
            server.timeline.write()
        for s in (ksock, psock, *dealers.values()):
            if s is not None:
                s.close()
