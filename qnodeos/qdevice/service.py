"""The quantum process: a thin trio/zmq adapter around ``QuantumDevice``.

It binds a ROUTER socket, decodes each request (bad ones get an ErrorReply and a
counter, never a crash), runs the ops on the device at the current device time, and
answers when the device has finished them. Device time is wall time since start times
``speed``; with ``speed = inf`` ops run back to back and nothing sleeps.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable

import numpy as np
import trio

from ..config import NodeConfig
from ..errors import DeviceError, ProtocolError
from ..lang import codec
from ..lang import messages as m
from ..transport import bind_router
from .device import QuantumDevice

log = logging.getLogger("qnodeos.qdevice")


class DeviceClock:
    """Device ns from a wall clock ``now()`` in seconds: (now - t0) * 1e9 * speed.
    With ``speed = inf`` device time is only the sum of op durations (now_ns is 0)."""

    def __init__(self, speed: float, now: Callable[[], float]) -> None:
        self.speed = speed
        self.now = now
        self.t0 = now()
        self.realtime = not math.isinf(speed)

    def now_ns(self) -> float:
        return (self.now() - self.t0) * 1e9 * self.speed if self.realtime else 0.0

    def wall_at(self, device_ns: float) -> float:
        return self.t0 + device_ns / (1e9 * self.speed)


def run_batch(
    dev: QuantumDevice, req: m.DeviceRequest, now_ns: float
) -> tuple[m.DeviceReply, float]:
    """Execute a request's ops in order; stop at the first the device refuses."""
    outcomes: list[int] = []  # NO_OUTCOME (-1) for ops without one
    error: str | None = None
    start = end = max(now_ns, dev.busy_until)
    for op in req.ops:
        try:
            outcome, end = dev.execute(op, now_ns)
        except DeviceError as exc:
            error = str(exc)
            break
        outcomes.append(outcome)
    reply = m.DeviceReply(
        seq=req.seq, outcomes=outcomes, error=error, now_ns=int(end), start_ns=int(start)
    )
    return reply, end


class DeviceServer:
    """Sans-IO request handling of the quantum process: frames in, reply frames out.

    ``handle`` returns the reply and the device time (ns) at which the device finishes
    the request; a real-time adapter sends the reply only then. Bad input gets an
    ErrorReply and is counted, never raised.
    """

    def __init__(self, cfg: NodeConfig) -> None:
        self.cfg = cfg
        self.device = QuantumDevice(cfg.device, np.random.default_rng(cfg.seed))
        self.dec, self.enc = codec.to_device(), codec.from_device()
        self.bad = 0

    def handle(self, frames: list[bytes], now_ns: float) -> tuple[list[bytes] | None, float]:
        if len(frames) != 2:
            self.bad += 1
            return None, now_ns
        peer, data = frames
        try:
            msg = self.dec.decode(data)
        except ProtocolError as exc:
            self.bad += 1
            log.warning("bad request #%d: %s", self.bad, exc)
            reply: m.FromDevice = m.ErrorReply(code="bad_message", message=str(exc))
            return [peer, self.enc.encode(reply)], now_ns
        if isinstance(msg, m.Ping):
            spec = self.cfg.device
            reply = m.Pong(seq=msg.seq, device=spec.name, num_qubits=spec.num_qubits)
            return [peer, self.enc.encode(reply)], now_ns
        reply, end = run_batch(self.device, msg, now_ns)
        return [peer, self.enc.encode(reply)], end


async def serve_device(
    cfg: NodeConfig, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED
) -> None:
    """Serve the device of node ``cfg`` in this trio run (deterministic/in-process mode)
    until cancelled."""
    server = DeviceServer(cfg)
    clock = DeviceClock(cfg.speed, trio.current_time)
    sock = bind_router(cfg.qdevice_endpoint)
    try:
        task_status.started()
        while True:
            reply, end = server.handle(await sock.recv(), clock.now_ns())
            if clock.realtime:
                await trio.sleep_until(clock.wall_at(end))
            if reply is not None:
                await sock.send(reply)
    finally:
        sock.close()
