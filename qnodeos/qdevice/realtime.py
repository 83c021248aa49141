"""The quantum process's real-time loop: blocking pyzmq, no event loop.

The quantum process does one thing: take a request, run it on the device, answer when
the device is done. A plain blocking loop (like QNodeOS's QDevice firmware) does that
with one syscall fewer per hop than an event loop, which matters at a 10-100 kHz
instruction exchange rate. The request handling itself is the sans-IO
``DeviceServer``; the trio adapter in ``service`` runs the same code in-process.
The loop ends when ``stop_fd`` (the node's pipe) closes, or on SIGTERM.
"""

from __future__ import annotations

import os
import signal
import time
from types import FrameType

import zmq

from ..config import NodeConfig
from .service import DeviceClock, DeviceServer


class _Stop(BaseException):  # like KeyboardInterrupt: nothing may swallow it
    pass


def _on_term(_sig: int, _frame: FrameType | None) -> None:
    raise _Stop


def serve_forever(cfg: NodeConfig, stop_fd: int | None = None) -> None:
    """Serve the device of node ``cfg`` until ``stop_fd`` reaches EOF or SIGTERM."""
    server = DeviceServer(cfg)
    ctx: zmq.Context[zmq.Socket[bytes]] = zmq.Context.instance()
    sock = ctx.socket(zmq.ROUTER)
    sock.setsockopt(zmq.LINGER, 1000)
    sock.bind(cfg.qdevice_endpoint)
    poller = zmq.Poller()
    poller.register(sock, zmq.POLLIN)
    if stop_fd is not None:
        poller.register(stop_fd, zmq.POLLIN)
    clock = DeviceClock(cfg.speed, time.monotonic)
    previous = signal.signal(signal.SIGTERM, _on_term)
    try:
        while True:
            ready = dict(poller.poll())
            if stop_fd is not None and stop_fd in ready and not os.read(stop_fd, 4096):
                return
            while True:
                try:
                    frames = sock.recv_multipart(zmq.NOBLOCK)
                except zmq.Again:
                    break
                reply, end = server.handle(frames, clock.now_ns())
                if clock.realtime:
                    delay = clock.wall_at(end) - time.monotonic()
                    if delay > 0:
                        time.sleep(delay)
                if reply is not None:
                    sock.send_multipart(reply)
    except _Stop:
        return
    finally:
        signal.signal(signal.SIGTERM, previous)
        sock.close(linger=0)  # the node is going away: nothing left to deliver
