"""The classical process's kernel, sans-IO: app messages and device replies in,
messages to apps and to the device out. No sockets, no clock: the adapter passes ``now``
(seconds) and sends what comes back.

How it works: a Submit is validated and queued in the scheduler. When the device is
free, the scheduler picks the next block and an interpreter ``Run`` executes it; each
batch of physical ops goes to the quantum process as a DeviceRequest with a fresh
sequence number, and the reply resumes the run. One block is on the device at a time
(no interleaving). When an app stops, fails its lease or is aborted, its queued blocks
are dropped, a running block is abandoned (its late reply is recognised by the stale
sequence number and ignored) and its qubits are released.

The network stack (``netstack``) shares the device: when nothing runs, the kernel
alternates between its work (entanglement rounds, corrections, measuring pairs) and
app blocks, so neither can starve the other.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Collection
from typing import Any

import msgspec

from ..config.network import LinkConfig, NodeLimits
from ..errors import DeviceError, LocalError, ProgramError, QNodeOSError, QuotaError
from ..hardware.specs import DeviceSpec
from ..lang import messages as m
from ..lang.program import MAX_INSTRS, Subroutine, validate
from ..runtime.liveness import Liveness, Look
from ..runtime.security import app_id, node_id
from ..runtime.timeline import recorder
from .interpreter import EprStart, Finished, NeedDevice, Paused, Run, WaitPairs, WaitQubit
from .lower import Lowering
from .memory import MemoryManager
from .messaging import Postbox
from .netstack import NetStack
from .nqrun import NqBlock, NqMemory, NqRun
from .outputs import Out, Resume, ToApp, ToDevice, ToNode
from .processes import App, Event, ProcessTable
from .running import Counters, Current
from .scheduler import Entry, Scheduler
from .wants import Want, Work

log = logging.getLogger("qnodeos.kernel")

APP_NAME_MAX = 64
ENDED_KEPT = 1024  # sessions whose end reason is remembered for a late heartbeat


SLICE = 20_000  # instructions interpreted before the kernel lets other work run
BLOCK_REQS = 1 << 39  # request numbers of blocks' EPR requests (apps' own are below)


class Kernel:
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
    ) -> None:
        """``look`` asks the OS about a process (``procinfo.look``; None in
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
        )
        self.net.to_block = self._to_block
        self.net_current: tuple[int, Work] | None = None
        self.blocked: dict[int, Current] = {}  # app id -> its block waiting for pairs
        # app id -> its block, from its start to its end: running, waiting or queued again
        self.inflight: dict[int, Current] = {}
        self._block_req = BLOCK_REQS
        self.live = Liveness(self.net.links, timeout_s=peer_timeout_s, look=look)
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
        self.speed = speed
        self.timeline = recorder(node, "kernel")  # None: no timeline asked for
        if self.timeline is not None:
            self.procs.watch = self._state_changed
            self.net.timeline = self.timeline

    # -- inputs --------------------------------------------------------------------------
    def bad_message(self, addr: bytes, error: QNodeOSError) -> list[Out]:
        """An undecodable or invalid message arrived from ``addr``."""
        self.counters.bad_messages += 1
        return [ToApp(addr, m.ErrorReply(code="bad_message", message=str(error)))]

    def app_message(
        self, addr: bytes, msg: m.AppToNode, now: float, user: str | None = None
    ) -> list[Out]:
        """A message from the app connection ``addr``; ``user``: the name its CURVE key
        authenticated (``app:NAME``), or None on an unauthenticated endpoint."""
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
        return self._submit(app, msg, now)

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
            return []
        if isinstance(msg, m.NodeBye):
            return self._peer_down(msg.from_node, f"node {msg.from_node!r} stopped: {msg.reason}")
        if isinstance(msg, m.Egp):
            return self.net.peer_message(msg, self.now) + self._pump()
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
        self.now = now
        pings, gone = self.live.tick(now, judge)
        ping = m.NodePing(from_node=self.node, proc=self.proc)
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

    # -- app lifecycle -------------------------------------------------------------------
    def _register(
        self, addr: bytes, app: App | None, msg: m.Register, now: float, user: str | None
    ) -> list[Out]:
        def err(code: str, text: str) -> list[Out]:
            self.counters.bad_messages += 1
            return [ToApp(addr, m.ErrorReply(code=code, message=text))]

        if app is not None:
            return err("already_registered", f"this connection is already app {app.app_id}")
        if not msg.app or len(msg.app) > APP_NAME_MAX or not msg.app.isprintable():
            return err(
                "bad_name", f"app name {msg.app!r} must be 1..{APP_NAME_MAX} printable chars"
            )
        if user is not None and user != app_id(msg.app):
            self.counters.spoofed += 1
            return err(
                "not_authorized",
                f"this connection's key is registered for {user}, not for app {msg.app!r}",
            )
        if msg.app in self.procs.by_name:
            return err(
                "name_taken",
                f"an app named {msg.app!r} is already connected to node {self.node!r}; "
                f"app names are unique on a node (they address classical messages)",
            )
        holder = next((a for a in self.procs.by_id.values() if a.exclusive), None)
        if holder is not None and msg.qubits > 0:
            return err(
                "exclusive",
                f"app {holder.name!r} has the device of node {self.node!r} to itself until it "
                f"leaves; only apps without qubits (qubits=0) can connect meanwhile",
            )
        if msg.exclusive and msg.app not in self.limits.exclusive_apps:
            return err(
                "exclusive",
                f"app {msg.app!r} may not have the device of node {self.node!r} to itself: "
                f"list it in the node's exclusive_apps in the network file",
            )
        if msg.exclusive:
            others = sorted(a.name for a in self.procs.by_id.values() if a.quota > 0)
            if others:
                return err(
                    "exclusive",
                    f"exclusive use of the device of node {self.node!r} needs it free, but "
                    f"app(s) {', '.join(others)} hold qubits",
                )
        new = self.procs.add(
            name=msg.app, addr=addr, priority=msg.priority, quota=msg.qubits, now=now
        )
        self.procs.leases.claim(str(new.app_id), msg.proc)
        new.exclusive = msg.exclusive
        new.user = user
        try:
            self.memory.open(new.app_id, msg.qubits)
        except QuotaError as exc:
            self.procs.remove(new)
            return err("quota", str(exc))
        registered = m.Registered(
            app_id=new.app_id,
            node=self.node,
            device=self.spec.name,
            native_gates=sorted(self.spec.native_gates()),
            lease_s=self.procs.lease_s,
            proc=self.proc,
        )
        self.net.registered(new)
        log.info("app %r connected (id %d, %d qubit(s))", new.name, new.app_id, msg.qubits)
        return [ToApp(addr, registered), *self.postbox.registered(new)]

    def _end(self, app: App, event: Event, reason: str) -> list[Out]:
        log.info("app %r left: %s (%d blocks done)", app.name, reason, app.blocks_done)
        out: list[Out] = []
        for entry in self.scheduler.drop_app(app.app_id):
            p = entry.payload
            block = p.block if isinstance(p, Current) else p[0]
            out.append(ToApp(app.addr, m.BlockFailed(block=block, code="aborted", message=reason)))
        cur = self.current
        if cur is not None and cur.app is app:
            failed = m.BlockFailed(block=cur.block, code="aborted", message=reason)
            out.append(ToApp(app.addr, failed))
            if cur.on_device:  # free the device now, not when the block would have ended
                out.append(ToDevice(m.Abort(seq=cur.seq)))
            self.current = None
        self.inflight.pop(app.app_id, None)
        waiting = self.blocked.pop(app.app_id, None)
        if waiting is not None:
            failed = m.BlockFailed(block=waiting.block, code="aborted", message=reason)
            out.append(ToApp(app.addr, failed))
        out += self.net.app_gone(app, self.now, reason)
        self.memory.close(app.app_id)
        app.fire(event)
        self.procs.remove(app)
        self.ended[app.addr] = reason
        while len(self.ended) > ENDED_KEPT:
            del self.ended[next(iter(self.ended))]
        out.append(ToApp(app.addr, m.Stopped(reason=reason)))
        return out

    def _submit(self, app: App, msg: m.Submit | m.SubmitNetQASM, now: float) -> list[Out]:

        def fail(code: str, text: str) -> list[Out]:
            self._count_fail(code, f"app {app.name!r}: {text}")
            return [
                ToApp(
                    app.addr,
                    m.BlockFailed(
                        block=msg.block,
                        code=code,
                        message=text,
                        held=sorted(self.memory.held(app.app_id)),
                    ),
                )
            ]

        if not app.idle:
            return fail(
                "busy",
                f"app {app.app_id} ({app.name}) already has a block "
                f"{app.state.value}; wait for its result",
            )
        try:
            if isinstance(msg, m.Submit):
                validate(msg.sub, self.max_instrs)
                payload: Subroutine | NqBlock = msg.sub
            else:
                payload = self._netqasm(app, msg)
        except ProgramError as exc:
            return fail("invalid", str(exc))
        deadline = now + msg.deadline_s if msg.deadline_s is not None else float("inf")
        app.fire(Event.SUBMIT)
        self._queue(app, (msg.block, payload), deadline)
        return self._pump()

    def _netqasm(self, app: App, msg: m.SubmitNetQASM) -> NqBlock:
        """Read a NetQASM subroutine (ProgramError if it cannot be run here). The app's
        NetQASM registers and arrays start afresh with ``fresh`` (a new connection)."""
        from ..netqasm.decode import decode  # imports netqasm: only nodes that need it

        instrs = decode(msg.code, msg.form, msg.flavour, self.max_instrs) if msg.code else []
        keys = [(s.node_id, s.id) for s in msg.sockets]
        if len(set(keys)) != len(keys):
            raise ProgramError(f"EPR sockets repeat (remote node id, socket id): {sorted(keys)}")
        if msg.stop:  # the NetQASM connection ended: its qubits and memory go
            for v in sorted(self.memory.held(app.app_id)):
                self.memory.release(app.app_id, v)
        if msg.fresh or msg.stop or app.nq is None:
            app.nq = NqMemory()
        return NqBlock(instrs=instrs, sockets={(s.node_id, s.id): s for s in msg.sockets})

    def _queue(
        self, app: App, payload: tuple[int, Subroutine | NqBlock] | Current, deadline: float
    ) -> None:
        """Put a block (new, or resuming) in the scheduler's queue."""
        self._block_seq += 1
        entry = Entry(
            seq=self._block_seq,
            app_id=app.app_id,
            priority=app.priority,
            deadline=deadline,
            payload=payload,
            queued_at=self.now,
        )
        self.scheduler.push(entry)

    # -- running blocks ------------------------------------------------------------------
    def _pump(self) -> list[Out]:
        """Give the free device to the next work: the network process first (it has
        the higher priority), unless a block has waited ``starvation_s``."""
        out: list[Out] = []
        self._wake_readers()
        while self.current is None and self.net_current is None and self.device_ready:
            if not self.scheduler.starving(self.now):
                # rounds outside their link's time bins wait: the device is free for
                # blocks meanwhile (in real time, always: a timer wakes the node when
                # the bin begins; as fast as possible, only while blocks are waiting)
                dev_now = self._device_now() if self._realtime or len(self.scheduler) else None
                work = self.net.next_work(self._seq + 1, self.now, dev_now)
                if work is not None:
                    out += self._lend(work)
                    continue
            entry = self.scheduler.pop(self.now)
            if entry is None:
                break
            app = self.procs.by_id[entry.app_id]
            app.fire(Event.SCHEDULE)
            if isinstance(entry.payload, Current):  # a block whose pairs came: go on
                self.current = entry.payload
                out += self._continue(None)
                continue
            block, sub = entry.payload
            kw: dict[str, Any] = dict(  # what a native and a NetQASM run both take
                app=app.app_id,
                memory=self.memory,
                lowering=self.lowering,
                budget=self.budget,
                max_wait_s=self.limits.max_wait_s,
            )
            run: Run
            if isinstance(sub, NqBlock):
                assert app.nq is not None
                run = NqRun(sub.instrs, nq=app.nq, sockets=sub.sockets, **kw)
            else:
                run = Run(sub, **kw)
            self.current = Current(app=app, block=block, run=run, seq=0, queued_at=entry.queued_at)
            self.inflight[app.app_id] = self.current
            xt = self.memory.crosstalk  # the block starts with the qubits it finds
            app.crosstalk_kept = min(
                (xt.get((app.app_id, v), 1.0) for v in self.memory.maps.get(app.app_id, ())),
                default=1.0,
            )
            out += self._continue(None)
        held = self.net.held_until_ns
        self.wake_at = None  # wall time to call handle_timer at (a held round's bin)
        if math.isfinite(held) and self.device_epoch_ns is not None and self._realtime:
            self.wake_at = (self.device_epoch_ns + held / self.speed) / 1e9
        return out

    def _state_changed(self, app: App) -> None:
        assert self.timeline is not None
        self.timeline.add(
            kind="state", app=app.name, state=app.state.value, on=app.waiting_on,
            wall=self.now, device_ns=self._device_now(),
        )  # fmt: skip

    def _wake_readers(self) -> None:
        """Blocks waiting for a readout qubit go on when one is free, or, after waiting
        ``starvation_s``, by moving another app's state out of one (as without waiting)."""
        if not self.blocked:
            return
        spec = self.spec
        free = any(spec.kind(p).meas is not None for p in self.memory.free)
        for aid, cur in list(self.blocked.items()):
            if cur.qubit_since is None:
                continue
            if not free and self.now - cur.qubit_since < self.limits.starvation_s:
                continue
            cur.run.may_move = not free
            cur.qubit_since = None
            del self.blocked[aid]
            cur.app.fire(Event.WAKE)
            self._queue(cur.app, cur, math.inf)

    def _device_now(self) -> float:
        """The device's time now: from the wall clock in real time, else the latest
        device time a reply reported."""
        if self.device_epoch_ns is None or not self._realtime:
            return float(self.counters.device_ns)
        return max(0.0, (self.now * 1e9 - self.device_epoch_ns) * self.speed)

    @property
    def _realtime(self) -> bool:
        """Device time runs with the wall clock (finite speed, epoch known)."""
        return self.device_epoch_ns is not None and not math.isinf(self.speed)

    def _lend(self, work: Work) -> list[Out]:
        """Give the device to the network stack for ``work``."""
        if work.request is None:
            return work.done(None, self.now)
        self._seq += 1
        req = msgspec.structs.replace(work.request, seq=self._seq)
        self.net_current = (self._seq, work)
        if self.timeline is not None:
            what = "round" if isinstance(req, m.Entangle) else "move"
            self.timeline.add(kind="use", seq=self._seq, what=what, peer=work.peer)
        return [ToDevice(req)]

    def _continue(self, now_ns: int | None) -> list[Out]:
        cur = self.current
        assert cur is not None
        out: list[Out] = []
        while True:
            if cur.failed is not None:
                f = cur.failed
                return out + self._fail_current(f"EPR pairs failed ({f.code}): {f.message}", "epr")
            try:
                step = cur.run.advance(SLICE)
            except (ProgramError, DeviceError, LocalError) as exc:
                return out + self._fail_current(str(exc), _code(exc))
            if isinstance(step, EprStart):
                out += self._start_epr(cur, step.index)
                continue
            if isinstance(step, WaitPairs | WaitQubit):
                # It waits (for the network, or for another app to free the qubit it
                # must read out through): the device serves others meanwhile.
                self.current = None
                if isinstance(step, WaitPairs):
                    cur.app.fire(Event.WAIT)
                    cur.waits = (step.index, step.count)
                else:
                    cur.app.fire(Event.WAIT_QUBIT)
                    cur.qubit_since = self.now
                self.blocked[cur.app.app_id] = cur
                return out
            return out + self._step_done(cur, step, now_ns)

    def _start_epr(self, cur: Current, index: int) -> list[Out]:
        """The block starts its EPR request ``index``: the network stack takes it as the
        app's own, and hands its pairs to the block."""
        spec = cur.run.sub.eprs[index]
        self._block_req += 1
        cur.reqs[index] = self._block_req
        msg = m.EprRequest(
            req=self._block_req,
            remote_node=spec.node,
            remote_app=spec.app,
            role=spec.role,
            kind=spec.kind,
            number=spec.number,
            min_fidelity=spec.min_fidelity,
            timeout_s=spec.timeout_s,
            qubits=spec.qubits,
            bases=spec.bases,
            chosen=spec.chosen,
            rotations=spec.rotations,
            sequential=spec.sequential,
            remote_chosen=spec.remote_chosen,
            remote_rotations=spec.remote_rotations,
            peer_bases=spec.peer_bases,
        )
        return self.net.request(cur.app, msg, self.now, index=index)

    def _to_block(self, w: Want, msg: m.NodeToApp) -> list[Out]:
        """News of a block's EPR request: pairs go into the block (waking it when it has
        what it waits for); a failure fails the block."""
        app = w.app
        cur = self.inflight.get(app.app_id)  # running, waiting, or queued to go on
        if cur is None or cur.reqs.get(w.index) != w.msg.req:
            return []  # its block ended meanwhile (the network stack voids the pairs)
        assert isinstance(msg, m.EprPairs | m.EprDone | m.EprFailed)
        if msg.pairs:
            cur.run.pairs_in(w.index, list(msg.pairs))
        if isinstance(msg, m.EprFailed):
            cur.failed = msg
        if cur is self.blocked.get(app.app_id) and cur.waits is not None:
            if cur.failed is not None or not cur.run.waiting_for(*cur.waits):
                del self.blocked[app.app_id]
                cur.waits = None
                app.fire(Event.WAKE)
                self._queue(app, cur, math.inf)
        return []

    def _step_done(
        self, cur: Current, step: NeedDevice | Paused | Finished, now_ns: int | None
    ) -> list[Out]:
        if isinstance(step, Paused):
            cur.paused, cur.paused_ns = True, now_ns
            return [Resume()]
        if isinstance(step, NeedDevice):
            cur.planned_ns += sum(self.spec.op_spec(op).duration_ns for op in step.ops)
            if cur.planned_ns > self.limits.max_block_s * 1e9:
                cur.run.abandon()  # nothing of this batch ran
                return self._fail_current(
                    f"the block needs more than {self.limits.max_block_s:g} s of device time, "
                    f"the most node {self.node!r} gives one block (max_block_s); "
                    f"split it into smaller blocks",
                    "limit",
                )
            self._crosstalk(cur.app, step.ops)
            self._seq += 1
            cur.seq = self._seq
            if self.timeline is not None:
                self.timeline.add(
                    kind="use", seq=cur.seq, what="block", app=cur.app.name, block=cur.block
                )
            return [ToDevice(m.DeviceRequest(seq=cur.seq, ops=step.ops))]
        assert isinstance(step, Finished)
        spent = 0 if now_ns is None or cur.started_ns is None else now_ns - cur.started_ns
        self.current = None
        self.inflight.pop(cur.app.app_id, None)
        cur.app.fire(Event.FINISH)
        cur.app.blocks_done += 1
        self.counters.blocks_done += 1
        log.info("block %d of app %r done (%d ns of device time)", cur.block, cur.app.name, spent)
        done = m.BlockDone(
            block=cur.block,
            values=step.values,
            instructions=cur.run.steps,
            device_ns=spent,
            crosstalk_hits=cur.app.crosstalk_hits,
            crosstalk_fidelity=cur.app.crosstalk_fidelity,
            states=cur.run.states,
        )
        if self.timeline is not None:
            self.timeline.add(
                kind="block", app=cur.app.name, block=cur.block, device_ns=spent,
                latency_s=self.now - cur.queued_at, wall=self.now,
            )  # fmt: skip
        # the block's results first: the news of its settled pairs is about them
        return [ToApp(cur.app.addr, done), *self._end_eprs(cur, True, "finished")]

    def _crosstalk(self, app: App, ops: list[m.PhysOp]) -> None:
        """Collective pulses (trapped ions: all_rx, all_ry; lowered single-ion rotations
        use them too) hit every qubit of the device, other apps' included. The device
        applies their error to every ion; here each other app's tally goes up."""
        coll = self.spec.collective
        errors = [coll[op.op].error for op in ops if not op.qubits and op.op in coll]
        if not errors:
            return
        kept = math.prod(1.0 - e for e in errors)
        xt = self.memory.crosstalk
        for other in self.procs.by_id.values():
            if other is app:
                continue
            for virt in self.memory.maps.get(other.app_id, ()):
                key = (other.app_id, virt)
                xt[key] = xt.get(key, 1.0) * kept
                other.crosstalk_hits += len(errors)
                other.crosstalk_kept = min(other.crosstalk_kept, xt[key])

    def _fail_current(self, text: str, code: str) -> list[Out]:
        cur = self.current
        assert cur is not None
        self.current = None
        self.inflight.pop(cur.app.app_id, None)
        out = self._end_eprs(cur, False, "failed")
        cur.run.abandon()
        cur.app.fire(Event.FINISH)
        cur.app.blocks_failed += 1
        self._count_fail(code, f"app {cur.app.name!r}: {text}")
        held = sorted(self.memory.held(cur.app.app_id))
        return out + [
            ToApp(cur.app.addr, m.BlockFailed(block=cur.block, code=code, message=text, held=held))
        ]

    def _end_eprs(self, cur: Current, ok: bool, how: str) -> list[Out]:
        """The block ended: settle the pairs its EPR requests brought (see
        ``NetStack.end_block``)."""
        if not cur.reqs:
            return []
        took = {req: cur.run.epr_got.get(i, 0) for i, req in cur.reqs.items()}
        reason = f"{how} (block {cur.block} of app {cur.app.name!r})"
        return self.net.end_block(cur.app, took, ok, reason, self.now)

    def _count_fail(self, code: str, text: str) -> None:
        log.info("block failed (%s): %s", code, text)
        self.counters.blocks_failed += 1
        self.counters.by_code[code] = self.counters.by_code.get(code, 0) + 1


def _code(exc: Exception) -> str:
    if isinstance(exc, DeviceError):
        return "device"
    if isinstance(exc, QuotaError):
        return "quota"
    return "program"
