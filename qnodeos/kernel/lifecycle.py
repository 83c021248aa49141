"""An app's life on its node, sans-IO: registration (name, quota, exclusive use of the
device), each block it submits (checked, then queued), and its end.

How it works. ``Register`` opens the app's qubit quota in the memory manager and makes
it a process (``processes``); names are unique on a node, and a key that authenticated
the connection must be the app's own. A block (native, or NetQASM read by
``qnodeos.netqasm.decode``) is validated and queued; an app has one block at a time.
When an app stops, fails its lease or is aborted (``_end``), its queued blocks are
dropped, a running block is abandoned (its late reply is recognised by the stale
sequence number and ignored), its requests with the network stack end, its qubits are
released, and the reason is remembered for a late heartbeat.
"""

from __future__ import annotations

import logging

from ..errors import ProgramError, QuotaError
from ..lang import messages as m
from ..lang.program import Subroutine, validate
from ..runtime.security import app_id
from .blocks import BlockRunner
from .messaging import Postbox
from .nqrun import Decoded, NqBlock, NqMemory, nq_decode
from .outputs import Out, ToApp, ToDevice
from .processes import App, Event
from .running import Current

log = logging.getLogger("qnodeos.kernel")

APP_NAME_MAX = 64
ENDED_KEPT = 1024  # sessions whose end reason is remembered for a late heartbeat


class AppLifecycle(BlockRunner):
    """The kernel's process management (``Kernel`` is one)."""

    proc: m.ProcId | None
    postbox: Postbox
    max_instrs: int
    ended: dict[bytes, str]

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
        if len(self.procs.by_id) >= self.limits.max_apps:
            return err(
                "too_many_apps",
                f"node {self.node!r} already serves {len(self.procs.by_id)} apps, its limit "
                f"(max_apps in the network file)",
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

    def _submit(
        self,
        app: App,
        msg: m.Submit | m.SubmitNetQASM,
        now: float,
        decoded: Decoded | None = None,
    ) -> list[Out]:

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
                # An app usually sends the same block again and again: checked once
                # (an equal subroutine passes the same checks; comparing is ~15x cheaper)
                if msg.sub != app.checked:
                    validate(msg.sub, self.max_instrs)
                    app.checked = msg.sub
                payload: Subroutine | NqBlock = msg.sub
            else:
                payload = self._netqasm(app, msg, decoded)
        except ProgramError as exc:
            return fail("invalid", str(exc))
        deadline = now + msg.deadline_s if msg.deadline_s is not None else float("inf")
        app.fire(Event.SUBMIT)
        self._queue(app, (msg.block, payload), deadline)
        return self._pump()

    def _netqasm(self, app: App, msg: m.SubmitNetQASM, decoded: Decoded | None) -> NqBlock:
        """Read a NetQASM subroutine (ProgramError if it cannot be run here), unless
        ``decoded`` says what it holds. The app's NetQASM registers and arrays start
        afresh with ``fresh`` (a new connection)."""
        if isinstance(decoded, ProgramError):
            raise decoded
        instrs = decoded if decoded is not None else nq_decode(msg, self.max_instrs)
        keys = [(s.node_id, s.id) for s in msg.sockets]
        if len(set(keys)) != len(keys):
            raise ProgramError(f"EPR sockets repeat (remote node id, socket id): {sorted(keys)}")
        if msg.stop:  # the NetQASM connection ended: its qubits and memory go
            for v in sorted(self.memory.held(app.app_id)):
                self.memory.release(app.app_id, v)
        if msg.fresh or msg.stop or app.nq is None:
            app.nq = NqMemory()
        return NqBlock(instrs=instrs, sockets={(s.node_id, s.id): s for s in msg.sockets})
