"""The classical process: a thin trio/zmq adapter around the sans-IO ``Kernel``.

Apps connect DEALER sockets to our ROUTER (the connection identity is the app's
identity: nothing in a message can claim to be another app; with keys, its CURVE key
also proves its app name). The quantum process is reached through a DEALER. Tasks in
one nursery: app traffic, device traffic, other nodes' traffic, a timer (for leases,
pings, deadlines: it sleeps until the kernel's next deadline, forever on an idle node), one
sender per peer node (keeping order and the link's classical delay), and with keys the
ZAP handler that checks every connecting key. Each calls the kernel and sends what it
returns. Bad input from anywhere is counted and logged without flooding (``ratelog``);
it never leaves a loop.
"""

from __future__ import annotations

import logging
import math
import sys
import time
from collections.abc import Callable, Collection, Mapping
from typing import Any

import trio
import trio.lowlevel
import zmq

from ..config.network import LinkConfig, NodeConfig
from ..errors import ConfigError, NodeFailure, ProgramError, ProtocolError, QNodeOSError
from ..lang import codec
from ..lang import messages as m
from ..netqasm.decode import too_big
from ..runtime import procinfo
from ..runtime.liveness import Look, Unread
from ..runtime.ratelog import BadInput
from ..runtime.security import APP, PEER, QDEVICE, Authenticator, client_side, node_id, server_side
from ..runtime.transport import Socket, ZSocket, bind_router, connect_dealer, disconnects
from .core import TICK_S, Kernel
from .intake import Intake
from .nqrun import Decoded, nq_decode
from .outputs import Out, Resume, ToApp, ToDevice, ToNode

log = logging.getLogger("qnodeos.kernel")
PEER_QUEUE = 10_000  # messages waiting to go to one other node; beyond it they are dropped


class NodeService:
    """Node ``cfg``; ``peers`` maps the other nodes' names to their peer endpoints,
    ``links`` are the node's quantum links, ``delays`` the classical delay (s) to each
    peer. ``clock`` is the wall clock shared with the other nodes (link-layer deadlines
    are compared across nodes): ``time.time``, or trio's clock in deterministic mode.
    ``token``: the secret this node's quantum process expects in the first Ping.
    ``look``: how to ask the OS about a peer's process (``procinfo.look``, in real
    processes; None when every node runs in this one process, as in deterministic mode)."""

    def __init__(
        self,
        cfg: NodeConfig,
        peers: Mapping[str, str] | None = None,
        *,
        links: Collection[LinkConfig] = (),
        delays: Mapping[str, float] | None = None,
        clock: Callable[[], float] = time.time,
        token: str = "",
        look: Look | None = None,
        offload: bool = False,
        measure_cpu: bool = True,
        topology: Collection[tuple[str, str]] = (),
        protocol: str = "",
        protocol_args: Mapping[str, Any] | None = None,
        fail_fast: bool = False,
    ) -> None:
        self.cfg = cfg
        # a kernel exception ends the service (NodeFailure) instead of being logged
        # and survived: deterministic mode, whose runs would otherwise wait forever
        self.fail_fast = fail_fast
        self.offload = offload
        # an app message's cost to its sender's share: the CPU time it took, or (all
        # nodes in one process, as in deterministic mode, whose runs must repeat
        # exactly) a fixed nominal cost per message
        self._cost = _cpu_cost if measure_cpu else _nominal_cost
        self.peers = dict(peers or {})
        self.delays = dict(delays or {})
        self.clock = clock
        self.token = token
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
            peer_timeout_s=cfg.peer_timeout_s,
            placement=cfg.placement,
            look=look,
            proc=procinfo.me() if look is not None else None,
            topology=topology,
            protocol=protocol,
            protocol_args=protocol_args,
        )
        self._outboxes: dict[str, trio.MemorySendChannel[tuple[float, bytes]]] = {}
        self._queued: dict[str, int] = {}  # messages for a node its sender has not sent
        self._nursery: trio.Nursery | None = None
        self._tick: trio.CancelScope | None = None  # the timer's wait, while it waits
        self.node_codec = codec.node_to_node()
        self._dealers: dict[str, Socket] = {}
        self.from_app = codec.app_to_node()
        self.to_app = codec.node_to_app()
        self.to_dev = codec.to_device()
        self.from_dev = codec.from_device()
        self._ready = trio.Event()
        self.bad = BadInput(log)
        self.dropped_to_peers = 0
        self.stop_reason = "it was shut down"  # what apps and other nodes are told
        self._apps_dev: tuple[Socket, Socket] | None = None
        self._resume = trio.Event()  # a paused block waits to go on
        self._inputs: tuple[Socket, ...] = ()  # sockets whose unread messages defer judging
        self._unread = Unread(limit_s=cfg.lease_s)
        self._reading: set[bytes] = set()  # apps whose NetQASM block is being read
        self.intake = Intake()  # app messages, served fairly
        self._arrived = trio.Event()  # set when the intake gets a message
        self._serving = False  # an app message is being served (by either task)
        self._reader = trio.CapacityLimiter(1)  # one at a time: one core's worth at most

    # -- sending -------------------------------------------------------------------------
    async def _send(self, apps: Socket, dev: Socket, outs: list[Out]) -> None:
        while outs:
            out = outs.pop(0)
            if isinstance(out, ToApp):
                await apps.send([out.addr, self.to_app.encode(out.msg)])
            elif isinstance(out, ToNode):
                self._to_node(out.node, self.node_codec.encode(out.msg))
            elif isinstance(out, Resume):
                # A long block goes on in its own task (``_runner``), one slice at a
                # time: this task goes back to its socket, so heartbeats, leases and
                # other apps are served between slices.
                self._resume.set()
            else:
                await dev.send([self.to_dev.encode(out.msg)])
        if self.kernel.device_ready:
            self._ready.set()
        self._rearm_timer()

    def _due(self) -> float:
        """When (trio time) the kernel's timers next have something to do: inf while
        nothing does (an idle node wakes only for its sockets)."""
        now = self.clock()
        due = min(self.kernel.next_deadline(now), self.bad.next_deadline())
        return trio.current_time() + max(0.0, due - now) if due < math.inf else math.inf

    def _rearm_timer(self) -> None:
        """Wake the timer earlier when what came asks for it (a request with a
        deadline, a round waiting for its link's time bin)."""
        scope = self._tick
        if scope is None:
            return
        if self.kernel.wake_at is None and scope.deadline <= trio.current_time() + TICK_S:
            return  # armed within a tick already (what came can only be later, or a ping)
        due = self._due()
        if due < scope.deadline:  # (setting a deadline costs trio a reschedule)
            scope.deadline = due

    def _to_node(self, node: str, data: bytes) -> None:
        """Queue ``data`` for ``node``; a sender task per node keeps order and applies
        the link's classical delay. A node that does not take its messages cannot fill
        our memory: beyond ``PEER_QUEUE`` waiting messages, more are dropped and
        counted (the protocols above time out and say so).

        Without a delay, a message that finds nothing queued before it goes at once if
        the socket takes it without waiting: order is kept, and it spares the sender
        task's wake-up and sleep (two passes of the scheduler per message)."""
        box = self._outboxes.get(node)
        if box is None:
            assert self._nursery is not None
            box, queue = trio.open_memory_channel[tuple[float, bytes]](PEER_QUEUE)
            self._outboxes[node] = box
            self._nursery.start_soon(self._sender, self._dealer(node), node, queue)
        elif (
            not self._queued.get(node)
            and not self.delays.get(node, 0.0)
            and self._dealer(node).try_send([data])
        ):
            return
        try:
            box.send_nowait((trio.current_time() + self.delays.get(node, 0.0), data))
            self._queued[node] = self._queued.get(node, 0) + 1
        except trio.WouldBlock:
            self.dropped_to_peers += 1
            self.bad.report(f"node {node}", "not taking messages; one dropped", now=self.clock())

    async def _sender(
        self, sock: Socket, node: str, queue: trio.MemoryReceiveChannel[tuple[float, bytes]]
    ) -> None:
        async for due, data in queue:
            try:
                await trio.sleep_until(due)
                await sock.send([data])
            finally:
                self._queued[node] -= 1

    def _dealer(self, node: str, *, watch: bool = True) -> Socket:
        sock = self._dealers.get(node)
        if sock is None:
            me = self.cfg.keys.node(self.cfg.name, secret=True) if self.cfg.keys else None
            curve = client_side(self.cfg.keys, me, node, self.peers[node], PEER)
            sock = self._dealers[node] = connect_dealer(self.peers[node], curve)
            if watch and self._nursery is not None and self._apps_dev is not None:
                self._nursery.start_soon(self._watch_peer, node, sock, *self._apps_dev)
        return sock

    async def _watch_peer(self, node: str, sock: Socket, apps: Socket, dev: Socket) -> None:
        """A linked node whose process died closes our connection: it is gone now, not
        after ``peer_timeout_s`` of silence (a paused one keeps the connection)."""
        async for _ in disconnects(sock):
            outs = self._guarded(self.kernel.peer_disconnected, node, self.clock())
            await self._send(apps, dev, outs)

    # -- receiving -----------------------------------------------------------------------
    async def _apps(self, apps: Socket, dev: Socket) -> None:
        """Reads app messages as they come into the fair intake (a queue per
        connection, see ``intake``); ``_serve_apps`` serves them. A connection whose
        queue is full has its message refused unread. A message that finds nothing
        waiting or being served (no backlog: the usual case) is served here at once,
        sparing a task switch (and the queue) per message; the order is the intake's
        all the same."""
        while True:
            frames, user = await apps.recv_from()
            now = self.clock()
            if not self._serving and self.intake.pass_through(frames[0], now):
                await self._serve((frames[0], frames, user), apps, dev)
                continue
            if self.intake.put(frames[0], frames, user, now):
                item = None if self._serving else self.intake.take(now)
                if item is not None:
                    await self._serve(item, apps, dev)
                if len(self.intake):
                    self._arrived.set()
                continue
            self.bad.report("an app", "sends faster than it is served; refused", now=now)
            refusal = ProtocolError(
                f"refused unread: {self.intake.per_app} messages of this connection (or "
                f"{self.intake.total} in all) wait already; wait for replies before sending more"
            )
            ids = codec.peek(frames[1]) if len(frames) == 2 else None
            await self._send(apps, dev, self.kernel.bad_message(frames[0], refusal, ids))

    async def _serve_apps(self, apps: Socket, dev: Socket) -> None:
        """Serves queued app messages, the least-served connection's first; what each
        costs to read and handle (this thread's CPU time) is charged to it."""
        while True:
            item = None if self._serving else self.intake.take(self.clock())
            if item is None:
                # (while the reader serves one, it wakes us after if a backlog came)
                wait = math.inf if self._serving else self.intake.wait(self.clock())
                if wait == math.inf:
                    await self._arrived.wait()
                else:
                    with trio.move_on_after(wait):
                        await self._arrived.wait()
                self._arrived = trio.Event()
                continue
            await self._serve(item, apps, dev)
            # Let the reader and the device's replies in between messages, so the next
            # one served is chosen among all that came (only a backlog comes here: an
            # empty intake waits above).
            await trio.lowlevel.checkpoint()

    async def _serve(
        self, item: tuple[bytes, list[bytes], str | None], apps: Socket, dev: Socket
    ) -> None:
        """Serve one app message (one at a time: replies keep their order)."""
        addr, frames, user = item
        self._serving = True
        try:
            start = time.thread_time()
            outs = self._app_frames(addr, frames, user, apps, dev)
            if outs:
                await self._send(apps, dev, outs)
            else:
                self._rearm_timer()  # (it may have made a deadline)
            self.intake.charge(addr, self._cost(start), self.clock())
        finally:
            self._serving = False
        if len(self.intake):
            self._arrived.set()  # the backlog that came meanwhile

    def _app_frames(
        self, addr: bytes, frames: list[bytes], user: str | None, apps: Socket, dev: Socket
    ) -> list[Out]:
        now = self.clock()
        if len(frames) != 2:
            self.bad.report("an app", f"{len(frames) - 1} data frames, not 1", now=now)
            return self.kernel.bad_message(
                addr, ProtocolError(f"expected 1 data frame, got {len(frames) - 1}")
            )
        try:
            msg = self.from_app.decode(frames[1])
        except ProtocolError as exc:
            return self.kernel.bad_message(addr, exc, codec.peek(frames[1]))
        if self._read_apart(addr, msg, user, apps, dev):
            return []
        try:
            return self.kernel.app_message(addr, msg, now, user)
        except Exception as exc:  # a bug must not take the node down
            log.exception("kernel failed on %r", type(msg).__name__)
            self._fail(f"on {type(msg).__name__}", exc)
            return self.kernel.bad_message(
                addr, QNodeOSError(f"internal error: {type(exc).__name__}: {exc}")
            )

    async def _device(self, apps: Socket, dev: Socket) -> None:
        """Replies of our quantum process (a DEALER: one frame per message)."""
        while True:
            frames = await dev.recv()
            try:
                if len(frames) != 1:
                    raise ProtocolError(f"{len(frames)} frames, not 1")
                msg = self.from_dev.decode(frames[0])
            except ProtocolError as exc:
                self.bad.report("the quantum process", str(exc), now=self.clock())
                continue
            outs = self._guarded(self.kernel.device_message, msg, self.clock())
            await self._send(apps, dev, outs)

    async def _nodes(self, peer: Socket, apps: Socket, dev: Socket) -> None:
        """Other nodes' classical processes (a ROUTER: identity, then one frame)."""
        while True:
            frames, user = await peer.recv_from()
            now = self.clock()
            try:
                if len(frames) != 2:
                    raise ProtocolError(f"{len(frames) - 1} data frames, not 1")
                msg = self.node_codec.decode(frames[1])
            except ProtocolError as exc:
                self.bad.report(user or "another node", str(exc), now=now)
                continue
            outs = self._guarded(self.kernel.peer_message, msg, now, user)
            await self._send(apps, dev, outs)

    def _read_apart(
        self, addr: bytes, msg: m.AppToNode, user: str | None, apps: Socket, dev: Socket
    ) -> bool:
        """Read a NetQASM block off the event loop (True if it is being read so).

        netqasm's parser takes ~0.5 ms per text line and ~60 us per binary instruction:
        a 4,096-line block, read inline, would stop the node for 2 s, so heartbeats,
        leases and every other app's blocks would wait for it. In real processes it is
        read in a worker thread, one block at a time, and the submitting app alone
        waits for it (a second block from it meanwhile is refused, as while one runs)."""
        if not (
            self.offload
            and isinstance(msg, m.SubmitNetQASM)
            and msg.code
            and self.kernel.may_submit(addr)
            and self._nursery is not None
        ):
            return False
        big = too_big(msg.code, msg.form, self.kernel.max_instrs)
        if big is not None or addr in self._reading:
            why = (
                ProgramError(f"NetQASM {msg.form} refused before parsing: {big}")
                if big is not None
                else ProgramError("busy: this app's previous NetQASM block is still being read")
            )
            outs = self._guarded(self.kernel.app_message, addr, msg, self.clock(), user, why)
            self._nursery.start_soon(self._send, apps, dev, outs)
            return True
        self._reading.add(addr)
        self._nursery.start_soon(self._read_netqasm, addr, msg, user, apps, dev)
        # The reader holds the GIL while it parses; the event loop gets it back within
        # this interval (Python's default, 5 ms, would add ~5 ms to every step of every
        # other app's block).
        sys.setswitchinterval(READER_SWITCH_S)
        return True

    async def _read_netqasm(
        self, addr: bytes, msg: m.SubmitNetQASM, user: str | None, apps: Socket, dev: Socket
    ) -> None:
        try:
            decoded, cost = await trio.to_thread.run_sync(
                _read_nq, msg, self.kernel.max_instrs, limiter=self._reader, abandon_on_cancel=True
            )
        finally:
            self._reading.discard(addr)
        self.intake.charge(addr, cost, self.clock())  # the sender's share pays for it
        outs = self._guarded(self.kernel.app_message, addr, msg, self.clock(), user, decoded)
        await self._send(apps, dev, outs)

    def _guarded(self, fn: Callable[..., list[Out]], *args: Any) -> list[Out]:
        try:
            return fn(*args)
        except Exception as exc:  # a bug must not take the node down
            log.exception("kernel failed in %s", fn.__name__)
            self._fail(f"in {fn.__name__}", exc)
            return []

    def _fail(self, where: str, exc: Exception) -> None:
        """With ``fail_fast``, a kernel exception ends the service loudly."""
        if self.fail_fast:
            why = f"node {self.cfg.name!r}: kernel failed {where}: {type(exc).__name__}: {exc}"
            raise NodeFailure(why) from exc

    async def _runner(self, apps: Socket, dev: Socket) -> None:
        """Runs a paused block's next slice when ``_send`` asks (see ``Resume``)."""
        while True:
            await self._resume.wait()
            self._resume = trio.Event()
            await self._send(apps, dev, self._guarded(self.kernel.resume))

    async def _timer(self, apps: Socket, dev: Socket) -> None:
        while True:
            with trio.CancelScope(deadline=self._due()) as self._tick:
                await trio.sleep_forever()
            self._tick = None
            now = self.clock()
            self.bad.tick(now)
            unread = len(self.intake) > 0 or any(sock.pending() for sock in self._inputs)
            judge = self._unread.may_judge(unread, now)
            outs = self._guarded(self.kernel.handle_timer, now, judge)
            await self._send(apps, dev, outs)

    async def _hello(self, dev: Socket) -> None:
        # Ping until the quantum process answers (it may still be starting).
        while not self._ready.is_set():
            for out in self.kernel.hello(self.token):
                assert isinstance(out, ToDevice)
                await dev.send([self.to_dev.encode(out.msg)])
            with trio.move_on_after(0.2):
                await self._ready.wait()

    async def _zap(self, auth: Authenticator) -> None:
        """Check each connecting CURVE key (pyzmq's authenticator, on our event loop)."""
        sock = ZSocket(auth.zap_socket)
        while True:
            request = await sock.recv()
            await auth.handle_zap_message(request)

    def _authenticator(self) -> Authenticator | None:
        keys = self.cfg.keys
        if keys is None:
            return None
        auth = Authenticator(zmq.Context.instance())
        try:
            auth.start()
        except zmq.ZMQError:
            raise ConfigError(
                "only one node with keys can run in one process (its ZAP handler is bound)"
            ) from None
        auth.guard(PEER, {keys.node(n).public: node_id(n) for n in self.peers})
        auth.guard(APP, {keys.app(a).public: f"app:{a}" for a in keys.app_names()})
        return auth

    # -- the node ------------------------------------------------------------------------
    async def serve(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        cfg, keys, where = self.cfg, self.cfg.keys, f"nodes.{self.cfg.name}"
        me = keys.node(cfg.name, secret=True) if keys else None
        plain = cfg.plaintext_warning()
        if plain is not None:
            log.warning("%s", plain)
        auth = self._authenticator()
        opened: list[Socket] = []
        try:
            apps = bind_router(
                cfg.app_endpoint,
                f"{where}.app_endpoint",
                server_side(keys, cfg.name, cfg.app_endpoint, APP),
                inbound=APP_INBOUND,
            )
            opened.append(apps)
            dev = connect_dealer(
                cfg.qdevice_endpoint,
                client_side(keys, me, cfg.name, cfg.qdevice_endpoint, QDEVICE),
            )
            opened.append(dev)
            peer = bind_router(
                cfg.bind_peer,
                f"{where}.peer_bind" if cfg.peer_bind else f"{where}.peer_endpoint",
                server_side(keys, cfg.name, cfg.bind_peer, PEER),
            )
            opened.append(peer)
            async with trio.open_nursery() as nursery:
                self._nursery = nursery
                self._apps_dev = (apps, dev)
                if auth is not None:
                    nursery.start_soon(self._zap, auth)
                nursery.start_soon(self._device, apps, dev)
                await self._hello(dev)
                self._inputs = (apps, peer)
                nursery.start_soon(self._apps, apps, dev)
                nursery.start_soon(self._serve_apps, apps, dev)
                nursery.start_soon(self._runner, apps, dev)
                nursery.start_soon(self._timer, apps, dev)
                nursery.start_soon(self._nodes, peer, apps, dev)
                task_status.started()
        finally:
            if self.kernel.timeline is not None:
                self.kernel.timeline.write()
            if len(opened) == 3:
                await self._farewell(opened[0])
            for sock in (*opened, *self._dealers.values()):
                sock.close()
            if auth is not None:
                auth.stop()

    async def _farewell(self, apps: Socket) -> None:
        """Tell every app and linked node at once that this node stops, and why, so
        nobody waits for a lease or a timeout to find out (best effort, 0.5 s)."""
        with trio.CancelScope(shield=True), trio.move_on_after(0.5):
            for out in self.kernel.goodbye(self.stop_reason):
                if isinstance(out, ToApp):
                    await apps.send([out.addr, self.to_app.encode(out.msg)])
                elif isinstance(out, ToNode):
                    dealer = self._dealer(out.node, watch=False)
                    await dealer.send([self.node_codec.encode(out.msg)])


READER_SWITCH_S = 0.0002
# an app connection's messages zmq holds before it stops reading it (the intake holds
# 64 more): a flood waits in the flooder's own process, not in the node's memory
APP_INBOUND = 16
NOMINAL_MESSAGE_S = 20e-6  # an app message's cost when CPU is not measured


def _cpu_cost(start: float) -> float:
    return time.thread_time() - start


def _nominal_cost(start: float) -> float:
    del start
    return NOMINAL_MESSAGE_S


def _read_nq(msg: m.SubmitNetQASM, max_instrs: int) -> tuple[Decoded, float]:
    """(In a worker thread.) The block's instructions, or why they cannot be read, and
    the CPU time reading took."""
    start = time.thread_time()
    try:
        got: Decoded = nq_decode(msg, max_instrs)
    except ProgramError as exc:
        got = exc
    except Exception as exc:  # a bug in reading must fail the block, not the node
        got = ProgramError(f"internal error reading the block: {type(exc).__name__}: {exc}")
    return got, time.thread_time() - start
