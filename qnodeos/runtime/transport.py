"""A thin trio adapter over non-blocking pyzmq sockets.

Rules it follows (pitfalls of driving pyzmq from trio): the zmq FD is edge-triggered, so
wait on it only after zmq said the operation cannot go now: a send tries first and
waits after ``zmq.Again``; a receive tries first if its last one found a message
queued, else it reads ZMQ_EVENTS first (half the cost of a refused try, and a request's
reply is rarely there yet), and waits if no message is there. Only one task may wait on
the FD, others park on an event; a successful operation or an EVENTS read may have
consumed the edge, so it checks ZMQ_EVENTS and wakes the FD waiter if what it waits for
is ready (and always wakes parked tasks); yield to the scheduler every 16 operations
rather than after each. A receive that is cancelled while waiting has not taken a
message off the socket, so nothing is lost.

Waking the FD waiter uses ``trio.lowlevel.notify_closing``: the waiter gets
``ClosedResourceError`` and, the socket not being closed, simply tries again. That wake
is rare (another task's operation must have met the waiter's event already), whereas a
cancel scope around every wait costs ~15 µs of CPU and ~20 µs of latency per message
(measured with a trio client against a raw pyzmq echo: 158 µs per round trip with a
scope, 113–124 µs without; plain synchronous pyzmq 96–104 µs).

``mem://NAME`` endpoints give the same ROUTER/DEALER behaviour inside one process over
trio memory channels, so a whole node (kernel, device, apps) runs deterministically
under trio's MockClock with exactly the code that runs over ZeroMQ.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import AsyncGenerator, Sequence
from typing import Protocol

import trio
import zmq

from .security import Curve, user_of
from .sockets import Claim, bind, connect, monitor_event
from .zframes import POLLIN as _POLLIN
from .zframes import POLLOUT as _POLLOUT
from .zframes import events_of, recv_now, send_now

_YIELD_EVERY = 16


class ZSocket:
    """A pyzmq socket used from trio tasks. Owns and closes the zmq socket (and releases
    the endpoint it claimed, if it bound one)."""

    def __init__(self, sock: zmq.Socket[bytes], claim: Claim | None = None) -> None:
        self.sock = sock
        self.claim = claim
        # A CURVE server learns each client's authenticated name (ZAP User-Id).
        self.authenticated = bool(sock.getsockopt(zmq.CURVE_SERVER))
        self._fd = int(sock.getsockopt(zmq.FD))
        self._fd_waiting = False  # a task waits on the FD (others park)
        self._parked: trio.Event | None = None
        self._fd_wants: int = _POLLIN
        self._ops = 0
        # The last receive took a message without waiting: more may be queued, so the
        # next one tries to take at once. Otherwise (the usual case of a request and its
        # reply) the queue is likely empty and the next one reads EVENTS first: a
        # refused take raises ``zmq.Again``, twice the cost (2.4 µs against 1.2).
        self._streaming = False
        self.sent = 0  # messages sent (an app skips its heartbeat while it sends)

    def close(self) -> None:
        self.sock.close()
        if self.claim is not None:
            self.claim.release()
            self.claim = None

    def _events(self) -> int:
        """EVENTS, read. Reading it processes zmq's pending commands, which may consume
        the FD's edge: a task waiting on the FD is woken if its event is ready, or it
        would wait for a signal that already came; if it is not ready, any later change
        signals the FD again, so its wait stays valid."""
        events = events_of(self.sock)
        if self._fd_waiting and events & self._fd_wants:
            trio.lowlevel.notify_closing(self._fd)  # wakes the waiter: it tries again
        return events

    def pending(self) -> bool:
        """Whether a message waits to be received."""
        return bool(self._events() & _POLLIN)

    def _wake(self) -> None:
        # Our operation may have consumed the FD's edge (see ``_events``).
        if self._fd_waiting:
            self._events()
        if self._parked is not None:
            self._parked.set()
            self._parked = None

    async def _done(self) -> None:
        self._wake()
        self._ops += 1
        if self._ops % _YIELD_EVERY == 0:
            # (shielded: the message is already taken or sent; a cancel here would lose
            # a received one, or report a sent one as not sent)
            await trio.lowlevel.cancel_shielded_checkpoint()

    async def _wait(self, wants: int) -> None:
        if self._fd_waiting:
            if self._parked is None:
                self._parked = trio.Event()
            await self._parked.wait()
            return
        self._fd_waiting = True
        self._fd_wants = wants
        try:
            await trio.lowlevel.wait_readable(self._fd)
        except trio.ClosedResourceError:
            pass  # _events found our event ready (see the module's docstring): try again
        finally:
            self._fd_waiting = False
            # (in ``finally``: a waiter that is cancelled must still hand the FD on, or
            # the tasks parked behind it sleep with a message queued)
            if self._parked is not None:
                self._parked.set()
                self._parked = None

    async def send(self, parts: Sequence[bytes]) -> None:
        if (self._ops + 1) % _YIELD_EVERY == 0:
            await trio.lowlevel.checkpoint_if_cancelled()  # (as in ``_frames``)
        while True:
            try:
                send_now(self.sock, parts)
            except zmq.Again:
                await self._wait(_POLLOUT)
                continue
            self.sent += 1
            await self._done()
            return

    def try_send(self, parts: Sequence[bytes]) -> bool:
        """Send if the socket takes the message without waiting (True); else send
        nothing (False). No scheduler pass: the caller's own waits are its checkpoints."""
        try:
            send_now(self.sock, parts)
        except zmq.Again:
            return False
        self.sent += 1
        self._wake()
        return True

    async def _frames(self) -> list[zmq.Frame]:
        """The next message's frames, waiting for one if none is queued. Cancel-safe:
        a wait that is cancelled has taken nothing off the socket."""
        waited = False
        if (self._ops + 1) % _YIELD_EVERY == 0:
            # (the pass after this take is shielded: a receive loop over a queue that
            # stays full must still be cancellable, here, before it takes anything)
            await trio.lowlevel.checkpoint_if_cancelled()
        if not self._streaming and not self._events() & _POLLIN:
            waited = True
            await self._wait(_POLLIN)
        while True:
            try:
                frames = recv_now(self.sock)
            except zmq.Again:
                waited = True
                await self._wait(_POLLIN)
                continue
            self._streaming = not waited
            await self._done()
            return frames

    async def recv(self) -> list[bytes]:
        return [f.bytes for f in await self._frames()]

    async def recv_from(self) -> tuple[list[bytes], str | None]:
        """A message and the authenticated name of its sender (None without CURVE)."""
        frames = await self._frames()
        return [f.bytes for f in frames], user_of(frames[-1]) if self.authenticated else None


class Socket(Protocol):
    """What the services and the SDK need of a socket."""

    async def send(self, parts: Sequence[bytes]) -> None: ...

    def try_send(self, parts: Sequence[bytes]) -> bool:
        """Send now if that needs no wait (True), else nothing (False)."""
        ...

    async def recv(self) -> list[bytes]: ...

    async def recv_from(self) -> tuple[list[bytes], str | None]: ...

    def pending(self) -> bool: ...

    def close(self) -> None: ...

    sent: int  # messages sent so far


class _Hub:
    """One mem:// endpoint: the bound ROUTER's inbox and each DEALER's inbox."""

    def __init__(self) -> None:
        self.router_in, self.router_out = trio.open_memory_channel[list[bytes]](math.inf)
        self.dealers: dict[bytes, trio.MemorySendChannel[list[bytes]]] = {}
        self.ids = itertools.count(1)


_HUBS: dict[str, _Hub] = {}


def _hub(endpoint: str) -> _Hub:
    return _HUBS.setdefault(endpoint, _Hub())


def forget_mem(prefix: str) -> None:
    """Drop the mem:// endpoints under ``prefix`` (an in-process network ended): a
    network started again under the same name starts afresh, as it would in new
    processes (same peer ids, no stale messages)."""
    for endpoint in [e for e in _HUBS if e.startswith(prefix)]:
        del _HUBS[endpoint]


class MemRouter:
    def __init__(self, endpoint: str) -> None:
        self.hub = _hub(endpoint)
        self.endpoint = endpoint
        self.sent = 0

    async def send(self, parts: Sequence[bytes]) -> None:
        self.sent += 1
        # Like zmq's ROUTER: a message to an unknown peer is dropped.
        ch = self.hub.dealers.get(parts[0])
        if ch is not None:
            ch.send_nowait(list(parts[1:]))
        await trio.lowlevel.checkpoint()

    def try_send(self, parts: Sequence[bytes]) -> bool:
        del parts
        return False  # in-process runs keep their scheduling (they must repeat exactly)

    async def recv(self) -> list[bytes]:
        return await self.hub.router_out.receive()

    async def recv_from(self) -> tuple[list[bytes], str | None]:
        return await self.recv(), None

    def pending(self) -> bool:
        return self.hub.router_out.statistics().current_buffer_used > 0

    def close(self) -> None:
        _HUBS.pop(self.endpoint, None)


class MemDealer:
    def __init__(self, endpoint: str) -> None:
        self.hub = _hub(endpoint)
        self.ident = b"mem-%d" % next(self.hub.ids)
        send, self._inbox = trio.open_memory_channel[list[bytes]](math.inf)
        self.hub.dealers[self.ident] = send
        self.sent = 0

    async def send(self, parts: Sequence[bytes]) -> None:
        self.sent += 1
        self.hub.router_in.send_nowait([self.ident, *parts])
        await trio.lowlevel.checkpoint()

    def try_send(self, parts: Sequence[bytes]) -> bool:
        del parts
        return False  # in-process runs keep their scheduling (they must repeat exactly)

    async def recv(self) -> list[bytes]:
        return await self._inbox.receive()

    async def recv_from(self) -> tuple[list[bytes], str | None]:
        return await self.recv(), None

    def pending(self) -> bool:
        return self._inbox.statistics().current_buffer_used > 0

    def close(self) -> None:
        self.hub.dealers.pop(self.ident, None)


_MONITORS = itertools.count()


async def disconnects(sock: Socket) -> AsyncGenerator[None, None]:
    """Yields each time a connection ``sock`` had established closes: the process at the
    other end died (a paused one keeps its connections). Never yields for in-process
    mem:// sockets. Fast: the operating system closes a dead process's sockets."""
    if not isinstance(sock, ZSocket):
        await trio.sleep_forever()
        return
    events = zmq.EVENT_HANDSHAKE_SUCCEEDED | zmq.EVENT_DISCONNECTED
    # A name of our own: pyzmq's default is made from the socket's file descriptor,
    # which a later socket reuses while libzmq may still hold the old monitor's name.
    addr = f"inproc://qnodeos-monitor-{next(_MONITORS)}"
    mon = ZSocket(sock.sock.get_monitor_socket(events, addr=addr))
    try:
        while True:
            if monitor_event(await mon.recv()) == zmq.EVENT_DISCONNECTED:
                yield
    finally:
        if not sock.sock.closed:
            sock.sock.disable_monitor()
        mon.close()


def bind_router(
    endpoint: str, where: str = "endpoint", curve: Curve | None = None, inbound: int = 0
) -> Socket:
    """A ROUTER bound at ``endpoint`` (ipc://, tcp://, or in-process mem://); ``where``
    names the config key that chose it (for errors); ``curve``: be a CURVE server;
    ``inbound``: at most this many messages of one connection wait in zmq (beyond, zmq
    stops reading that connection until some are taken: the sender waits); 0: zmq's
    default (1,000)."""
    if endpoint.startswith("mem://"):
        return MemRouter(endpoint)
    sock, claim = bind(
        zmq.Context.instance(), zmq.ROUTER, endpoint, where, curve=curve, rcvhwm=inbound
    )
    return ZSocket(sock, claim)


def connect_dealer(endpoint: str, curve: Curve | None = None) -> Socket:
    """A DEALER connected to ``endpoint`` (ipc://, tcp://, or in-process mem://)."""
    if endpoint.startswith("mem://"):
        return MemDealer(endpoint)
    return ZSocket(connect(zmq.Context.instance(), zmq.DEALER, endpoint, curve=curve))
