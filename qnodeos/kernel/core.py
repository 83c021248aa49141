"""The classical process's kernel, sans-IO: app messages and device replies in,
messages to apps and to the device out. No sockets, no clock: the adapter passes ``now``
(seconds) and sends what comes back.

How it works. ``Kernel`` is the one object the node's service talks to; this module
takes every input and says where it goes. Apps' messages: registration, blocks and
stops go to process management (``lifecycle``), EPR requests and acknowledgements to
the network stack (``netstack``), classical messages to the postbox (``messaging``).
Other nodes' messages: liveness pings and byes (``runtime.liveness``), link-layer
messages to the network stack, the rest to the postbox. Device replies: those for the
network stack's work go back to it, those for the running block resume it
(``blocks``), stale ones are counted and dropped. Timers: pings, silent peers, expired
leases, the network stack's deadlines. After each input the free device goes to the
next work (``blocks``: the network stack and app blocks share it, so neither can
starve the other).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Collection, Mapping
from typing import Any

from ..config.network import LinkConfig, NodeLimits
from ..errors import ProgramError, QNodeOSError
from ..hardware.specs import DeviceSpec
from ..lang import messages as m
from ..lang.program import MAX_INSTRS
from ..runtime.liveness import QUIET_EVERY, Liveness, Look
from ..runtime.security import node_id
from ..runtime.timeline import recorder
from .blocks import BLOCK_REQS
from .lifecycle import AppLifecycle
from .lower import Lowering
from .memory import MemoryManager
from .messaging import Postbox
from .netstack import NetStack
from .nqrun import Decoded
from .outputs import Out, ToApp, ToDevice, ToNode
from .processes import App, Event, ProcessTable
from .running import Counters, Current
from .scheduler import Scheduler
from .wants import Work

log = logging.getLogger("qnodeos.kernel")
# How late a deadline may be acted on: the timer is not armed again for a new deadline
# within this of the one it waits for, and it never runs twice within this (a deadline
# that has passed but stays, as a round waiting for a busy device, is acted on then).
TICK_S = 0.05


class Kernel(AppLifecycle):
    """A node's classical process, sans-IO (see the module's docstring)."""

    def __init__(
        self,
        *,
        node: str,
        spec: DeviceSpec,
        policy: str = "fcfs",
        lease_s: float = 1.0,
        budget: int = 1_000_000,
        max_instrs: int = MAX_INSTRS,
        peers: Collection[str] = (),
        links: Collection[LinkConfig] = (),
        speed: float = 1.0,
        seed: int | None = None,
        limits: NodeLimits | None = None,
        peer_timeout_s: float = 1.5,
        placement: str = "lowest",
        look: Look | None = None,
        proc: m.ProcId | None = None,
        topology: Collection[tuple[str, str]] = (),
        protocol: str = "",
        protocol_args: Mapping[str, Any] | None = None,
    ) -> None:
        """``topology``: the network's quantum links (for end-to-end pairs). ``look``
        asks the OS about a process (``procinfo.look``; None in
        deterministic mode: silence alone decides); ``proc`` is this process, as it
        names itself to apps and other nodes."""
        self.node = node
        self.spec = spec
        self.limits = limits = limits or NodeLimits()
        self.memory = MemoryManager(spec, placement)
        self.lowering = Lowering(spec)
        self.scheduler = Scheduler(policy, limits.starvation_s)
        self.procs = ProcessTable(lease_s, look)
        self.proc = proc
        self.postbox = Postbox(node=node, peers=peers, procs=self.procs)
        self.budget = budget
        self.max_instrs = max_instrs
        self.net = NetStack(
            node=node,
            links=links,
            speed=speed,
            memory=self.memory,
            lowering=self.lowering,
            seed=seed,
            topology=topology,
            protocol=protocol,
            protocol_args=protocol_args,
        )
        self.net.to_block = self._to_block
        self.net_current: tuple[int, Work] | None = None
        self.blocked: dict[int, Current] = {}  # app id -> its block waiting for pairs
        # app id -> its block, from its start to its end: running, waiting or queued again
        self.inflight: dict[int, Current] = {}
        self._block_req = BLOCK_REQS
        # linked nodes are pinged and judged only while something here waits on them
        self.live = Liveness(
            self.net.links,
            timeout_s=peer_timeout_s,
            look=look,
            on_demand=True,
            quiet_every=QUIET_EVERY,  # a streaming neighbour's messages say it is there
        )
        self.ended: dict[bytes, str] = {}  # why recent sessions ended, by connection
        self.now = 0.0
        self.current: Current | None = None
        self.counters = Counters()
        self._seq = 0
        self._block_seq = 0
        self.device_ready = False
        # wall time of device time 0 (from the quantum process; None until it says)
        self.device_epoch_ns: int | None = None
        self.wake_at: float | None = None  # see _pump
        self._timed = -math.inf  # when handle_timer last ran
        self.speed = speed
        self.timeline = recorder(node, "kernel")  # None: no timeline asked for
        if self.timeline is not None:
            self.procs.watch = self._state_changed
            self.net.timeline = self.timeline

    def bad_message(
        self, addr: bytes, error: QNodeOSError, ids: tuple[str, int] | None = None
    ) -> list[Out]:
        """An undecodable or invalid message arrived from ``addr``. ``ids`` (the type
        and id its frame still said, ``codec.peek``) send the refusal to the call that
        is waiting for it: a request, a block or a classical send, not a stray error
        that surfaces on a later call."""
        self.counters.bad_messages += 1
        text = str(error)
        kind, key = ids if ids is not None else ("", -1)
        app = self.procs.by_addr.get(addr)
        if app is not None and kind == "epr" and not self.net.has_request(app, key):
            return [ToApp(addr, m.EprFailed(req=key, code="OTHER", message=text))]
        if app is not None and kind in ("submit", "submit_nq"):
            return [ToApp(addr, m.BlockFailed(block=key, code="invalid", message=text))]
        if kind == "send":
            return [ToApp(addr, m.SendFailed(seq=key, code="invalid", message=text))]
        return [ToApp(addr, m.ErrorReply(code="bad_message", message=text))]

    def app_message(
        self,
        addr: bytes,
        msg: m.AppToNode,
        now: float,
        user: str | None = None,
        decoded: Decoded | None = None,
    ) -> list[Out]:
        """A message from the app connection ``addr``; ``user``: the name its CURVE key
        authenticated (``app:NAME``), or None on an unauthenticated endpoint.
        ``decoded``: a NetQASM submission's instructions (or why they cannot be read),
        when the adapter read them off the event loop."""
        self.now = now
        app = self.procs.by_addr.get(addr)
        if app is not None and user != app.user:
            self.counters.spoofed += 1  # another key on a connection with this address
            return []
        if app is not None:
            self.procs.seen(app, now)
        if isinstance(msg, m.Heartbeat):
            if app is not None:
                return [ToApp(addr, m.Alive())]
            # A session we ended (its lease ran out while the app was paused, say):
            # tell the app why, so it does not think the node went away.
            reason = self.ended.get(addr)
            return [ToApp(addr, m.Stopped(reason=reason))] if reason is not None else []
        if isinstance(msg, m.Register):
            return self._register(addr, app, msg, now, user)
        if app is None:
            self.counters.bad_messages += 1
            return [
                ToApp(
                    addr,
                    m.ErrorReply(
                        code="not_registered", message=f"send register before {type(msg).__name__}"
                    ),
                )
            ]
        if isinstance(msg, m.Stop):
            out = self._end(app, Event.STOP, "stopped by app")
            return out + self._pump()
        if isinstance(msg, m.SendMsg):
            return self.postbox.send(app, msg, now)
        if isinstance(msg, m.EprRequest):
            return self.net.request(app, msg, now) + self._pump()
        if isinstance(msg, m.EprAck):
            return self.net.acked(app, msg)
        return self._submit(app, msg, now, decoded)

    def may_submit(self, addr: bytes) -> bool:
        """Whether the app at ``addr`` could have a block accepted now (registered, and
        no block of its own queued or running): a submission that could not is
        refused before it is read."""
        app = self.procs.by_addr.get(addr)
        return app is not None and app.idle

    def peer_message(
        self, msg: m.NodeToNode, now: float | None = None, user: str | None = None
    ) -> list[Out]:
        """A message from another node's classical process; ``user``: the node its CURVE
        key authenticated (``node:NAME``), None without keys. A message claiming to be
        from another node than its key says is dropped and counted."""
        if user is not None and user != node_id(msg.from_node):
            self.counters.spoofed += 1
            return []
        if now is not None:
            self.now = now
        if msg.from_node not in self.postbox.peers:
            self.postbox.ignored += 1
            return []
        if self.live.heard(msg.from_node, self.now):
            self.net.peer_up(msg.from_node)
        if isinstance(msg, m.NodePing):
            self.live.claim(msg.from_node, msg.proc)
            if msg.ask:  # it waits on us: answer at once
                return [ToNode(msg.from_node, m.NodePing(from_node=self.node, proc=self.proc))]
            return []
        if isinstance(msg, m.NodeBye):
            return self._peer_down(msg.from_node, f"node {msg.from_node!r} stopped: {msg.reason}")
        if isinstance(msg, m.Egp):
            return self.net.peer_message(msg, self.now) + self._pump()
        if isinstance(msg, m.Net):
            return self.net.net_message(msg, self.now) + self._pump()
        return self.postbox.peer_message(msg)

    def peer_disconnected(self, peer: str, now: float) -> list[Out]:
        """Our connection to ``peer`` closed: its process died."""
        self.now = now
        if peer not in self.live.last_heard or self.live.is_down(peer):
            return []
        return self._peer_down(peer, f"node {peer!r} went away (its process ended)")

    def _peer_down(self, peer: str, reason: str) -> list[Out]:
        self.live.down.add(peer)
        return self.net.peer_down(peer, reason, self.now) + self._pump()

    def device_message(self, msg: m.FromDevice, now: float | None = None) -> list[Out]:
        if now is not None:
            self.now = now
        if isinstance(msg, m.LateHerald):
            return self.net.late_herald(msg)
        if isinstance(msg, m.Pong):
            self.device_ready = True
            self.device_epoch_ns = msg.epoch_ns
            self.net.align_bins(msg.epoch_ns, self.speed)
            return self._pump()
        net = self.net_current
        if net is not None and (
            isinstance(msg, m.EntangleDone | m.ErrorReply) or msg.seq == net[0]
        ):
            if not isinstance(msg, m.ErrorReply) and msg.seq != net[0]:
                self.counters.stale_replies += 1
                return []
            if isinstance(msg, m.EntangleDone) and not msg.final:
                return net[1].done(msg, self.now)  # pairs so far: the round goes on
            self.net_current = None
            if isinstance(msg, m.ErrorReply):
                msg = m.DeviceReply(seq=net[0], outcomes=[], error=msg.message, now_ns=0)
            else:
                self.counters.device_ns = max(
                    self.counters.device_ns,
                    msg.now_ns if isinstance(msg, m.DeviceReply) else msg.at_ns,
                )
            return net[1].done(msg, self.now) + self._pump()
        if isinstance(msg, m.EntangleDone):
            self.counters.stale_replies += 1
            return []
        if isinstance(msg, m.ErrorReply):
            # The device could not read what we sent: fail the running block.
            cur = self.current
            if cur is None:
                return []
            return self._fail_current(f"device rejected request: {msg.message}", "device") + (
                self._pump()
            )
        cur = self.current
        if cur is None or msg.seq != cur.seq:
            self.counters.stale_replies += 1
            return []
        if cur.started_ns is None:
            cur.started_ns = msg.start_ns
        if msg.error is not None:
            return self._fail_current(msg.error, "device") + self._pump()
        try:
            cur.run.deliver(msg.outcomes, msg.states)
        except ProgramError as exc:
            return self._fail_current(str(exc), "program") + self._pump()
        self.counters.device_ns = msg.now_ns
        return self._continue(msg.now_ns) + self._pump()

    def handle_timer(self, now: float, judge: bool = True) -> list[Out]:
        """Timers: pings, silent peers and apps, the network stack's deadlines.
        ``judge=False``: messages wait unread, so no silence is judged this time (a
        process that was paused, or paused itself, finds its own lateness there)."""
        self.now = self._timed = now
        self.live.want(self.net.waited_on(), now)
        pings, gone = self.live.tick(now, judge)
        ping = m.NodePing(from_node=self.node, proc=self.proc, ask=True)
        out: list[Out] = [ToNode(p, ping) for p in pings]
        for peer in gone:
            out += self._peer_down(peer, f"node {peer!r} {self.live.verdict(peer)}")
        out += self.net.handle_timer(now)
        for app, why in self.procs.expired(now, judge):
            self.counters.apps_expired += 1
            out += self._end(
                app,
                Event.FAIL,
                f"lease of {self.procs.lease_s}s expired: the app sent nothing ({why}); its "
                f"session ended and everything it held was freed. If long silences are "
                f"expected, raise lease_s of node {self.node!r} in the network file",
            )
        out += self.postbox.handle_timer(now)
        return out + self._pump() if out or self.net.waiting() or self.blocked else out

    def _pump(self) -> list[Out]:
        out = super()._pump()
        # A wait on a linked node that began just now counts its silence from now, not
        # from the next tick (cheap while every linked node is waited on already).
        if len(self.live.wanted) < len(self.net.egps):
            new = self.net.waited_on() - self.live.wanted
            if new:
                self.live.want(self.live.wanted | new, self.now)
        return out

    def next_deadline(self, now: float) -> float:
        """When ``handle_timer`` next has something to do (inf: nothing; an idle node
        sleeps): the earliest of the apps' lease checks, the pings and judgements of
        the peers something waits on, the network stack's and the postbox's
        deadlines, a block waiting for a readout qubit giving up its wait, and a round
        held for its time bin. No periodic tick: a busy node wakes for its messages,
        and for its timers only when one is due (never twice within ``TICK_S``)."""
        due = min(self.procs.leases.next_deadline(), self.live.next_deadline())
        if self.postbox.pending:
            due = min(due, min(p.deadline for p in self.postbox.pending.values()))
        if self.net.busy():
            due = min(due, self.net.next_deadline())
        if self.blocked:
            starve = self.limits.starvation_s
            for cur in self.blocked.values():
                if cur.qubit_since is not None:
                    due = min(due, cur.qubit_since + starve)
        if due < math.inf:
            due = max(due, self._timed + TICK_S)
        wake = self.wake_at  # a round held for its time bin: on time ...
        if wake is not None and wake <= self._timed:
            # ... unless the timer already ran past it and the round is still held (the
            # device busy with a block): then it waits like the rest, or it would spin
            wake = self._timed + TICK_S
        return due if wake is None else min(due, wake)

    def goodbye(self, reason: str) -> list[Out]:
        """The node is stopping: tell every app and every linked node at once."""
        bye = m.NodeBye(from_node=self.node, reason=reason)
        out: list[Out] = [ToNode(p, bye) for p in self.net.links]
        stopped = m.Stopped(reason=f"node {self.node!r} is stopping: {reason}")
        return out + [ToApp(app.addr, stopped) for app in self.procs.by_id.values()]

    def resume(self) -> list[Out]:
        """Continue a paused block (if it is still running: its app may have gone)."""
        cur = self.current
        if cur is None or not cur.paused:
            return self._pump()
        cur.paused = False
        return self._continue(cur.paused_ns) + self._pump()

    def hello(self, token: str = "") -> list[Out]:
        """First message to the device: a Ping (with the secret ``token`` the quantum
        process was started with) whose Pong marks it ready."""
        self._seq += 1
        return [ToDevice(m.Ping(seq=self._seq, token=token))]

    def _state_changed(self, app: App) -> None:
        assert self.timeline is not None
        self.timeline.add(
            kind="state", app=app.name, state=app.state.value, on=app.waiting_on,
            wall=self.now, device_ns=self._device_now(),
        )  # fmt: skip
