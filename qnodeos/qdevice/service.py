"""The quantum process: a thin trio/zmq adapter around ``QuantumDevice``.

It binds a ROUTER socket, decodes each request (bad ones get an ErrorReply and a
counter, never a crash), runs the ops on the device at the current device time, and
answers when the device has finished them. Device time is wall time since start times
``speed``; with ``speed = inf`` ops run back to back and nothing sleeps.
"""

from __future__ import annotations

import logging
import math

import numpy as np
import trio

from ..config import NodeConfig
from ..errors import DeviceError, ProtocolError
from ..lang import codec
from ..lang import messages as m
from ..transport import bind_router
from .device import NO_OUTCOME, QuantumDevice

log = logging.getLogger("qnodeos.qdevice")


class DeviceClock:
    """Device ns from trio's clock: (now - t0) * 1e9 * speed; 0 when speed is inf."""

    def __init__(self, speed: float) -> None:
        self.speed = speed
        self.t0 = trio.current_time()

    def now_ns(self) -> float:
        if math.isinf(self.speed):
            return 0.0
        return (trio.current_time() - self.t0) * 1e9 * self.speed

    def wall_at(self, device_ns: float) -> float:
        return self.t0 + device_ns / (1e9 * self.speed)


def run_batch(
    dev: QuantumDevice, req: m.DeviceRequest, now_ns: float
) -> tuple[m.DeviceReply, float]:
    """Execute a request's ops in order; stop at the first the device refuses."""
    outcomes: list[int] = []
    error: str | None = None
    end = max(now_ns, dev.busy_until)
    for op in req.ops:
        try:
            outcome, end = dev.execute(op, now_ns)
        except DeviceError as exc:
            error = str(exc)
            break
        outcomes.append(outcome if outcome != NO_OUTCOME else -1)
    return m.DeviceReply(seq=req.seq, outcomes=outcomes, error=error, now_ns=int(end)), end


async def serve_device(
    cfg: NodeConfig, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED
) -> None:
    """Serve the device of node ``cfg`` until cancelled."""
    rng = np.random.default_rng(cfg.seed)
    dev = QuantumDevice(cfg.device, rng)
    clock = DeviceClock(cfg.speed)
    dec, enc = codec.to_device(), codec.from_device()
    sock = bind_router(cfg.qdevice_endpoint)
    bad = 0
    try:
        task_status.started()
        while True:
            frames = await sock.recv()
            if len(frames) != 2:
                bad += 1
                continue
            peer, data = frames
            try:
                msg = dec.decode(data)
            except ProtocolError as exc:
                bad += 1
                log.warning("bad request #%d: %s", bad, exc)
                await sock.send(
                    [peer, enc.encode(m.ErrorReply(code="bad_message", message=str(exc)))]
                )
                continue
            if isinstance(msg, m.Ping):
                reply: m.FromDevice = m.Pong(
                    seq=msg.seq, device=cfg.device.name, num_qubits=cfg.device.num_qubits
                )
            else:
                reply, end = run_batch(dev, msg, clock.now_ns())
                if not math.isinf(clock.speed):
                    await trio.sleep_until(clock.wall_at(end))
            await sock.send([peer, enc.encode(reply)])
    finally:
        sock.close()
