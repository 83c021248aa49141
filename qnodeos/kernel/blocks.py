"""Running blocks on the device, sans-IO: which work gets the free device next, and a
block's run from its first instruction to its result.

How it works. When the device is free (``_pump``), the network stack's work goes first
(entanglement rounds, moves: it has the higher priority) unless a block has waited
``starvation_s``; otherwise the scheduler picks the next queued block and an
interpreter ``Run`` (native) or ``NqRun`` (NetQASM) executes it. Each batch of physical
ops goes to the quantum process as a DeviceRequest with a fresh sequence number, and
its reply resumes the run (``_continue``). One block is on the device at a time (no
interleaving). A block that waits for pairs, or for a qubit to read out through, gives
the device up meanwhile and is queued again when what it waits for comes. A block ends
done (``BlockDone``, with its values) or failed (``BlockFailed``); either way the pairs
its own EPR requests brought are settled with the network stack.
"""

from __future__ import annotations

import logging
import math
from typing import Any

import msgspec

from ..config.network import NodeLimits
from ..errors import DeviceError, LocalError, ProgramError, QuotaError
from ..hardware.specs import DeviceSpec
from ..lang import messages as m
from ..lang.program import Subroutine
from ..runtime.timeline import Recorder
from .interpreter import EprStart, Finished, NeedDevice, Paused, Run, WaitPairs, WaitQubit
from .lower import Lowering
from .memory import MemoryManager
from .netstack import NetStack
from .nqrun import NqBlock, NqRun
from .outputs import Out, Resume, ToApp, ToDevice
from .processes import App, Event, ProcessTable
from .running import Counters, Current
from .scheduler import Entry, Scheduler
from .wants import Want, Work

log = logging.getLogger("qnodeos.kernel")

SLICE = 20_000  # instructions interpreted before the kernel lets other work run
BLOCK_REQS = 1 << 39  # request numbers of blocks' EPR requests (apps' own are below)


class BlockRunner:
    """The kernel's block execution (``Kernel`` is one)."""

    node: str
    spec: DeviceSpec
    limits: NodeLimits
    memory: MemoryManager
    lowering: Lowering
    scheduler: Scheduler
    procs: ProcessTable
    budget: int
    net: NetStack
    net_current: tuple[int, Work] | None
    blocked: dict[int, Current]
    inflight: dict[int, Current]
    current: Current | None
    counters: Counters
    now: float
    device_ready: bool
    device_epoch_ns: int | None
    wake_at: float | None
    speed: float
    timeline: Recorder | None
    _seq: int
    _block_seq: int
    _block_req: int

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
        log.debug("block of app %r queued (priority %d)", app.name, app.priority)

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
            run: Run
            if isinstance(sub, NqBlock):
                assert app.nq is not None
                run = NqRun(sub.instrs, nq=app.nq, sockets=sub.sockets, **self._run_kw(app))
            else:
                run = Run(
                    sub,
                    app=app.app_id,
                    memory=self.memory,
                    lowering=self.lowering,
                    budget=self.budget,
                    max_wait_s=self.limits.max_wait_s,
                )
            self.current = Current(app=app, block=block, run=run, seq=0, queued_at=entry.queued_at)
            self.inflight[app.app_id] = self.current
            log.debug("block %d of app %r starts on the device", block, app.name)
            xt = self.memory.crosstalk  # the block starts with the qubits it finds
            app.crosstalk_kept = (
                min(
                    (xt.get((app.app_id, v), 1.0) for v in self.memory.maps.get(app.app_id, ())),
                    default=1.0,
                )
                if xt  # (none recorded, on devices without collective gates: all 1.0)
                else 1.0
            )
            out += self._continue(None)
        held = self.net.held_until_ns
        self.wake_at = None  # wall time to call handle_timer at (a held round's bin)
        if math.isfinite(held) and self.device_epoch_ns is not None and self._realtime:
            self.wake_at = (self.device_epoch_ns + held / self.speed) / 1e9
        return out

    def _run_kw(self, app: App) -> dict[str, Any]:
        """What a NetQASM run takes besides its instructions, as a native ``Run`` does."""
        return dict(
            app=app.app_id,
            memory=self.memory,
            lowering=self.lowering,
            budget=self.budget,
            max_wait_s=self.limits.max_wait_s,
        )

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
        if not coll:
            return  # (the device has none: most)
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
