"""Opening zmq sockets, shared by the trio adapter (``transport``) and the quantum
process's blocking loop (no event loop here).

- Every socket gets the same options: bounded inbound messages, a linger.
- Binding claims the endpoint: an ipc socket file is guarded by an exclusive lock
  (``PATH.lock``), so a second process binding the same path (a second
  ``qnodeos node bob``) is refused instead of silently taking the socket over, and on
  close the socket file and the lock are removed. An address in use names the network
  file key that chose it.
- With keys (``security``), a socket becomes a CURVE server or client.
"""

from __future__ import annotations

import errno
import fcntl
import os
import struct

import zmq

from ..errors import ConfigError
from ..lang.codec import MAX_FRAME
from .security import Curve, connect_curve, serve_curve

# No frame we accept is larger than the codec's limit; zmq drops a peer that sends one
# (before it fills our memory) instead of handing it to us.
MAX_MSG_BYTES = MAX_FRAME + 4096
# A connecting socket retries a refused or missing endpoint after RECONNECT_FIRST_MS,
# doubling up to RECONNECT_MAX_MS (zmq's default: every 100 ms).
RECONNECT_FIRST_MS = 10
RECONNECT_MAX_MS = 100


def configure(sock: zmq.Socket[bytes], *, linger_ms: int = 1000) -> None:
    """Options every qnodeos zmq socket gets: bounded inbound messages, a linger."""
    sock.setsockopt(zmq.LINGER, linger_ms)
    sock.setsockopt(zmq.MAXMSGSIZE, MAX_MSG_BYTES)


class Claim:
    """An ipc endpoint this process has bound: holds its lock until ``release``."""

    def __init__(self, path: str, fd: int) -> None:
        self.path = path
        self.fd = fd

    def release(self) -> None:
        for p in (self.path, self.path + ".lock"):
            try:
                os.unlink(p)
            except OSError:
                pass
        os.close(self.fd)


def _claim(url: str, where: str) -> Claim | None:
    if not url.startswith("ipc://"):
        return None
    path = url[len("ipc://") :]
    try:
        fd = os.open(path + ".lock", os.O_RDWR | os.O_CREAT, 0o600)
    except OSError as exc:
        raise ConfigError(f"{where}: cannot use {url}: {exc.strerror}") from None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        os.close(fd)
        raise ConfigError(
            f"{where}: {url} is in use by another running process (is this node already "
            f"running?)"
        ) from None
    return Claim(path, fd)


def bind(
    ctx: zmq.Context[zmq.Socket[bytes]],
    kind: int,
    url: str,
    where: str,
    *,
    curve: Curve | None = None,
    linger_ms: int = 1000,
    rcvhwm: int = 0,
) -> tuple[zmq.Socket[bytes], Claim | None]:
    """A socket bound at ``url`` (``where`` names the config key that chose it);
    ``rcvhwm``: messages queued per connection before zmq stops reading it (0: its
    default)."""
    claim = _claim(url, where)
    sock = ctx.socket(kind)
    try:
        configure(sock, linger_ms=linger_ms)
        if rcvhwm:
            sock.setsockopt(zmq.RCVHWM, rcvhwm)
        if curve is not None:
            serve_curve(sock, curve.me, curve.domain)
        sock.bind(url)
    except zmq.ZMQError as exc:
        sock.close(linger=0)
        if claim is not None:
            os.close(claim.fd)
        if exc.errno == errno.EADDRINUSE:
            raise ConfigError(
                f"{where}: {url} is already in use (another process listens there; is "
                f"this node already running, or does another program use the port?)"
            ) from None
        raise ConfigError(f"{where}: cannot listen at {url}: {exc}") from None
    return sock, claim


def connect(
    ctx: zmq.Context[zmq.Socket[bytes]],
    kind: int,
    url: str,
    *,
    curve: Curve | None = None,
    linger_ms: int = 1000,
) -> zmq.Socket[bytes]:
    sock = ctx.socket(kind)
    configure(sock, linger_ms=linger_ms)
    # The other side is often a process started at the same moment that has not bound
    # yet: retry after 10 ms, not zmq's default 100 ms, then back off to that 100 ms.
    sock.setsockopt(zmq.RECONNECT_IVL, RECONNECT_FIRST_MS)
    sock.setsockopt(zmq.RECONNECT_IVL_MAX, RECONNECT_MAX_MS)
    if curve is not None:
        assert curve.server is not None
        connect_curve(sock, curve.me, curve.server)
    sock.connect(url)
    return sock


def monitor_event(frames: list[bytes]) -> int:
    """The event number (``zmq.EVENT_*``) of a message from a socket monitor: libzmq
    sends a 16-bit event number and a 32-bit value, then the endpoint. (pyzmq's
    ``parse_monitor_message`` does the same, but importing its module imports asyncio:
    ~10 ms of every start-up.)"""
    if len(frames) != 2 or len(frames[0]) != 6:
        raise ValueError(f"not a zmq monitor message: {[len(f) for f in frames]} bytes")
    event: int = struct.unpack("=HI", frames[0])[0]
    return event
