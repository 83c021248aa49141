"""The quantum process's real-time loop: blocking pyzmq, no event loop.

The quantum process does one thing at a time: take a request, run it on the device,
answer when the device is done; meanwhile it answers the quantum processes of linked
nodes (heralding, state groups). A plain blocking loop (like QNodeOS's QDevice
firmware) does that with one syscall fewer per hop than an event loop, which matters at
a 10-100 kHz instruction exchange rate. All logic is the sans-IO ``QDeviceServer``;
this loop only moves frames and keeps the send times: replies to the classical process
when the device finishes (device time -> wall time), messages to a peer after the
link's classical delay. The loop ends when ``stop_fd`` (the node's pipe) closes, or on
SIGTERM.

Device time is wall-clock time (``time.time``) since start times the speed factor, so
quantum processes on one host, or on hosts with synchronised clocks, agree on it.
"""

from __future__ import annotations

import logging
import math
import os
import signal
import time
from collections.abc import Callable, Mapping
from types import FrameType
from typing import Any

import zmq

from ..config.network import LinkConfig, NodeConfig
from ..runtime import procinfo
from ..runtime.liveness import Unread
from ..runtime.security import (
    QDEVICE,
    QPEER,
    Authenticator,
    client_side,
    node_id,
    run_now,
    server_side,
    user_of,
)
from ..runtime.sockets import Claim, bind, connect, monitor_event
from ..runtime.zframes import POLLIN, events_of, recv_now, send_now
from .clock import DeviceClock
from .lag import LagMeter
from .outbox import Outbox
from .server import Cancel, Out, QDeviceServer, ToKernel

log = logging.getLogger("qnodeos.qdevice")


class _Stop(BaseException):  # like KeyboardInterrupt: nothing may swallow it
    pass


def _on_term(_sig: int, _frame: FrameType | None) -> None:
    raise _Stop


class _Guard:
    """Calls the server; a bug in it is logged and counted, never the end of the node."""

    def __init__(self) -> None:
        self.errors = 0

    def __call__(self, fn: Callable[..., list[Out]], *args: Any) -> list[Out]:
        try:
            return fn(*args)
        except Exception:
            self.errors += 1
            log.exception("internal error #%d in the quantum process", self.errors)
            return []


BURST = 64  # messages taken from one socket before the others get a turn
SEND_RETRY_S = 0.005  # a message a socket did not take is tried again this much later
SEND_GIVE_UP_S = 5.0  # ... until it has waited this long (the peer's pulls give up too)
BUNDLE = 64  # messages to one peer's quantum process sent together, at most
UNREAD_JUDGE_S = 1.0  # judge peers' silence even with messages unread, after this long


def serve_forever(
    cfg: NodeConfig,
    stop_fd: int | None = None,
    *,
    links: list[LinkConfig] | None = None,
    peers: Mapping[str, str] | None = None,
    delays: Mapping[str, float] | None = None,
    token: str = "",
) -> None:
    """Serve the device of node ``cfg`` until ``stop_fd`` reaches EOF or SIGTERM.
    ``peers`` maps the other nodes to their quantum processes' peer endpoints; ``delays``
    gives the classical delay (s) to each; ``token``: the secret our classical process
    presents in its first Ping."""
    clock = DeviceClock(cfg.speed, time.time)
    server = QDeviceServer(
        cfg,
        links or [],
        epoch_ns=clock.epoch_ns,
        token=token,
        look=procinfo.look,
        proc=procinfo.me(),
    )
    ctx: zmq.Context[zmq.Socket[bytes]] = zmq.Context.instance()
    keys, where = cfg.keys, f"nodes.{cfg.name}"
    me = keys.node(cfg.name, secret=True) if keys else None
    poller = zmq.Poller()
    auth = None
    if keys is not None:
        auth = Authenticator(ctx)
        auth.start()
        auth.guard(QDEVICE, {keys.node(cfg.name).public: node_id(cfg.name)})
        auth.guard(QPEER, {keys.node(n).public: node_id(n) for n in peers or {}})
        poller.register(auth.zap_socket, zmq.POLLIN)
    claims: list[Claim] = []
    ksock, claim = bind(
        ctx,
        zmq.ROUTER,
        cfg.qdevice_endpoint,
        f"{where}.qdevice_endpoint",
        curve=server_side(keys, cfg.name, cfg.qdevice_endpoint, QDEVICE),
    )
    claims += [claim] if claim else []
    poller.register(ksock, zmq.POLLIN)
    psock = None
    dealers: dict[str, zmq.Socket[bytes]] = {}
    monitors: dict[str, zmq.Socket[bytes]] = {}
    if peers:
        psock, claim = bind(
            ctx,
            zmq.ROUTER,
            cfg.bind_qpeer,
            f"{where}.qpeer_bind" if cfg.qpeer_bind else f"{where}.qpeer_endpoint",
            curve=server_side(keys, cfg.name, cfg.bind_qpeer, QPEER),
            linger_ms=0,
        )
        claims += [claim] if claim else []
        poller.register(psock, zmq.POLLIN)
    peer_auth = psock is not None and bool(psock.getsockopt(zmq.CURVE_SERVER))
    if stop_fd is not None:
        poller.register(stop_fd, zmq.POLLIN)
    delays = dict(delays or {})
    lag = LagMeter() if clock.realtime else None

    def late(seconds: float, now: float) -> None:
        """Something left ``seconds`` after it was due (see ``qdevice.lag``)."""
        assert lag is not None
        window = lag.add(seconds, now)
        if window is not None and server.timeline is not None:
            server.timeline.add(kind="lag", device_ns=clock.now_ns(), **window)

    outbox: Outbox[zmq.Socket[bytes]] = Outbox(late if lag is not None else None)

    def schedule(outs: list[Out]) -> None:
        now = time.time()
        for o in outs:
            if isinstance(o, ToKernel):
                due = clock.wall_at(o.due_ns) if clock.realtime else now
                outbox.push(due, ksock, o.frames, o.tag, pushed_at=now)
            elif isinstance(o, Cancel):
                outbox.cancel(o.tag)
            elif peers and o.node in peers:
                outbox.push(now + delays.get(o.node, 0.0), dealer(o.node), [o.data], None, now)
            else:  # e.g. a pull made for a node that is not listed: rate-limited
                server.bad.report(f"node {o.node}", "no quantum process to send to", now=now)

    taken = [0]  # messages taken from the socket being read, this turn

    def from_kernel() -> None:
        frames = [f.bytes for f in recv_now(ksock)]
        schedule(guard(server.handle, frames, clock.now_ns(), time.time()))

    def from_peer() -> None:
        assert psock is not None
        user = None
        parts = recv_now(psock)
        frames = [p.bytes for p in parts]
        if peer_auth:
            user = user_of(parts[-1])
        if not 2 <= len(frames) <= 1 + BUNDLE:
            server.bad.report(
                user or "a quantum process", f"{len(frames) - 1} data frames", now=time.time()
            )
            return
        taken[0] += len(frames) - 2  # a bundle counts each of its messages
        # a bundle: messages that were due together, in order (taken together)
        schedule(guard(server.peer_messages, frames[1:], clock.now_ns(), time.time(), user))

    def zap() -> None:
        assert auth is not None
        run_now(auth.handle_zap_message(auth.zap_socket.recv_multipart(zmq.NOBLOCK)))

    def watcher(node: str, mon: zmq.Socket[bytes]) -> Callable[[], None]:
        def on_event() -> None:
            event = monitor_event(mon.recv_multipart(zmq.NOBLOCK))
            if event == zmq.EVENT_DISCONNECTED:
                schedule(guard(server.disconnected, node, clock.now_ns(), time.time()))

        return on_event

    stuck: dict[int, float] = {}  # id of frames not taken yet -> since when

    def flush() -> None:
        """Send what is due, never blocking: a peer's quantum process that is not
        there (a listed node not started, one that died) or does not read would stop
        this loop, and the device's time with it. What a socket does not take now is
        tried again shortly, for up to ``SEND_GIVE_UP_S``, then dropped and reported."""
        now = time.time()
        due = outbox.pop_due(now)
        i = 0
        while i < len(due):
            sock, frames = due[i]
            i += 1
            # Messages due at once for one peer go as one zmq message, a frame each (a
            # batch's state groups, say): one send and one receive, not one per group.
            while sock is not ksock and i < len(due) and due[i][0] is sock:
                more = due[i][1]
                if len(frames) + len(more) > BUNDLE or {id(frames), id(more)} & stuck.keys():
                    break  # (a message tried again goes as it was)
                frames = frames + due[i][1]
                i += 1
            try:
                send_now(sock, frames)
            except zmq.Again:
                since = stuck.setdefault(id(frames), now)
                if now - since < SEND_GIVE_UP_S:
                    outbox.push(now + SEND_RETRY_S, sock, frames)
                    continue
                server.bad.report("a peer", "did not take a message; dropped", now=now)
                for node in [n for n, d in dealers.items() if d is sock]:  # a state group: lost
                    for data in frames:
                        schedule(guard(server.undelivered, node, data, clock.now_ns(), now))
            stuck.pop(id(frames), None)

    handlers: list[tuple[zmq.Socket[bytes] | None, Callable[[], None]]] = [
        (ksock, from_kernel),
        (psock, from_peer),
        (auth.zap_socket if auth else None, zap),
    ]

    def dealer(node: str) -> zmq.Socket[bytes]:
        """Our connection to ``node``'s quantum process, made when first needed: to our
        link neighbours at start (rounds, pings), to any other node when a state group
        first goes there. (Every process connecting to every other at start took ~2 s
        of a 64-node network's start-up.)"""
        sock = dealers.get(node)
        if sock is None:
            assert peers is not None
            curve = client_side(keys, me, node, peers[node], QPEER)
            sock = dealers[node] = connect(ctx, zmq.DEALER, peers[node], curve=curve, linger_ms=0)
            # a peer process that dies closes this connection: we learn it at once
            mon = monitors[node] = sock.get_monitor_socket(
                zmq.EVENT_HANDSHAKE_SUCCEEDED | zmq.EVENT_DISCONNECTED
            )
            poller.register(mon, zmq.POLLIN)
            handlers.append((mon, watcher(node, mon)))
        return sock

    for node in server.links:  # our link neighbours
        if peers and node in peers:
            dealer(node)
    previous = signal.signal(signal.SIGTERM, _on_term)
    continued: list[float] = []  # SIGCONT: when this process ran again after a stop

    def on_cont(_sig: int, _frame: FrameType | None) -> None:
        continued.append(time.time())

    was_cont = signal.signal(signal.SIGCONT, on_cont) if lag is not None else None
    guard = _Guard()
    unjudged = Unread(UNREAD_JUDGE_S)  # no silence is judged while messages wait unread
    try:
        timer_at = server.next_timer_s()
        while True:
            wait = min(outbox.next_due(), timer_at) - time.time()
            if lag is not None:  # a stop while work is under way shows as its lag
                if continued:  # (stopped while handling, not waiting: count it first)
                    stopped = lag.continued(continued[-1])
                    if stopped is not None:
                        late(stopped, continued[-1])
                    continued.clear()
                lag.waits(time.time(), busy=wait < math.inf)
            if wait < 0.002:
                # zmq polls in whole ms: sleep short waits precisely, then only peek
                if wait > 0:
                    time.sleep(wait)
                ready = dict(poller.poll(0))
            else:
                ready = dict(poller.poll(None if math.isinf(wait) else int(wait * 1000)))
            if stop_fd is not None and stop_fd in ready and not os.read(stop_fd, 4096):
                return
            if continued and lag is not None:
                stopped = lag.continued(continued[-1])
                if stopped is not None:
                    late(stopped, continued[-1])
                continued.clear()
            unread = False  # messages left for the next turn: judge no silence now
            for sock, handler in handlers:
                if sock is None or sock not in ready:
                    continue
                # A bounded burst of messages per socket (a bundle counts each of its
                # own), so a flood on one (a peer, a stranger) cannot keep the others
                # waiting.
                taken[0] = 0
                while taken[0] < BURST:
                    try:
                        handler()
                    except zmq.Again:
                        break
                    taken[0] += 1
                    flush()  # a reply due now leaves before we look for more input
                    if not events_of(sock) & POLLIN:
                        break  # cheaper than the next receive raising Again
                else:
                    unread = True
            timer_at = server.next_timer_s()
            now = time.time()
            if now >= timer_at:
                if lag is not None:
                    late(now - timer_at, now)
                judge = unjudged.may_judge(unread, now)
                schedule(guard(server.timer, clock.now_ns(), now, judge))
                timer_at = server.next_timer_s()
            flush()
    except _Stop:
        return
    finally:
        if lag is not None:
            total = lag.summary()
            log.info(
                "lag behind the device clock: p50 %.0f us, p99 %.0f us, max %.0f us (%d acts)",
                total["p50_us"], total["p99_us"], total["max_us"], total["n"],
            )  # fmt: skip
            if server.timeline is not None:
                server.timeline.add(kind="lag_total", **total)
        if server.timeline is not None:
            server.timeline.write()
        signal.signal(signal.SIGTERM, previous)
        if was_cont is not None:
            signal.signal(signal.SIGCONT, was_cont)
        for s in (*monitors.values(), ksock, psock, *dealers.values()):
            if s is not None:
                s.close(linger=0)  # the node is going away: nothing left to deliver
        for c in claims:
            c.release()
        if auth is not None:
            auth.stop()
