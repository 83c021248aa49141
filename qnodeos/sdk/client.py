"""The app side of the app API: connect to a node, run blocks, get values back.

``connect`` opens a session (register with a qubit quota), keeps its lease alive with
heartbeats in the background, notices a node that stopped answering, and stops the
session on exit, freeing everything the app held on the node.
"""

from __future__ import annotations

import math
import os
from collections.abc import AsyncGenerator, AsyncIterator, Callable
from contextlib import aclosing, asynccontextmanager
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any

import msgspec
import trio

from ..errors import ConnectionClosed, LocalError, ProtocolError, RemoteError
from ..lang import codec
from ..lang import messages as m
from ..lang.program import Subroutine
from ..lang.text import parse
from ..runtime import procinfo
from ..runtime.liveness import Liveness
from ..runtime.security import APP, Curve, guarded
from ..runtime.transport import Socket, connect_dealer, disconnects
from . import progress as _progress
from .builder import Block, Qubit, QubitIds, QubitOwner
from .epr import EprError, EprSocket, Pair, SessionLink, measured_pairs

if TYPE_CHECKING:
    from ..config.network import NetworkConfig

Values = dict[str, int | list[int]]
EprNews = m.EprPairs | m.EprDone | m.EprFailed | m.Stopped
# A node whose process died is noticed at once (its connection closes); one that is
# only silent (paused, or its host unreachable) after this many leases, or later while
# the OS says its process is alive (see qnodeos.runtime.liveness).
DEAD_AFTER_LEASES = 5.0
MAX_UNSETTLED = 200_000  # as the node's ledger keeps per link (kernel/ledger.py MAX_OPEN)


class ClassicalSocket:
    """Ordered, reliable classical messages with one app on one node, routed by the
    nodes. ``send`` returns once the destination node accepted the message (delivered,
    or queued until that app connects) and raises RemoteError if it could not.
    Values are anything msgpack can carry (numbers, strings, bytes, lists, dicts)."""

    def __init__(self, conn: Node, node: str, app: str) -> None:
        self._conn = conn
        self.node = node
        self.app = app
        self._box = conn._inbox(node, app)[1]

    async def send(self, value: Any) -> None:
        """Send ``value``; returns once the other node accepted it (RemoteError if it
        could not be delivered)."""
        await self._conn._send_message(self.node, self.app, msgspec.msgpack.encode(value))

    async def recv(self) -> Any:
        """The next message from that app, in the order it was sent."""
        return msgspec.msgpack.decode(await self._box.receive())

    def recv_nowait(self) -> Any:
        """The next message if one is here now (else trio.WouldBlock)."""
        return msgspec.msgpack.decode(self._box.receive_nowait())


class BlockError(RemoteError):
    """The node refused or aborted a block; ``code`` says why (invalid, device, program,
    quota, busy, aborted). The session stays open; the app may submit another block.
    Qubits the block allocated are gone; ``held`` lists the app's qubit ids still held."""

    def __init__(self, message: str, code: str, held: list[int]) -> None:
        super().__init__(message, code)
        self.held = held


# The network an in-process run (qnodeos.Network.run, deterministic) is running in this
# task tree: its config and each node's app endpoint.
IN_PROCESS: ContextVar[tuple[NetworkConfig, dict[str, str]] | None] = ContextVar(
    "qnodeos_in_process", default=None
)


def _network_config(network: str | None) -> NetworkConfig:
    from ..config.defaults import network_or_default

    return network_or_default(network or os.environ.get("QNODEOS_NETWORK"))


# The name the runner (qnodeos run, qnodeos.Network.run) gave the app running in this
# task tree: its network file's `name`, else MODULE-INDEX (set by sdk.apps.call_main).
APP_NAME: ContextVar[str | None] = ContextVar("qnodeos_app_name", default=None)


def app_name() -> str | None:
    """This app's name in the network file (its ``name``, else MODULE-INDEX, as the run
    shows it), when a runner started it; else None. ``connect`` uses it when no ``app``
    is given, so the name a run shows is the name the app has on its node."""
    return APP_NAME.get()


def peer_node(app: str) -> str:
    """The node that app ``app`` (its name in the network file) runs on, from the
    network this app runs in, so a peer is named once: by its app name.

    Raises LocalError naming the apps there are, or saying that there is no network
    (outside ``qnodeos run`` and ``qnodeos.Network.run``: give the node yourself)."""
    cfg = network_config()
    if cfg is None:
        raise LocalError(
            f"no network to find app {app!r} in (not started by qnodeos run or "
            "qnodeos.Network.run): give its node"
        )
    for a in cfg.apps:
        if a.name == app:
            return a.node
    known = ", ".join(a.name for a in cfg.apps)
    raise LocalError(f"no app named {app!r} in network {cfg.name!r}; apps: {known}")


def network_config() -> NetworkConfig | None:
    """The network this app runs in, if known: the one of ``qnodeos run`` (its file,
    $QNODEOS_NETWORK) or of ``qnodeos.Network.run``; else None."""
    here = IN_PROCESS.get()
    if here is not None:
        return here[0]
    return _network_config(None) if os.environ.get("QNODEOS_NETWORK") else None


def resolve_endpoint(node: str, network: str | None, endpoint: str | None) -> str:
    """Where node ``node`` takes apps: ``endpoint`` if given, else that of the
    in-process run this app is part of, else from the network file (``network`` or
    $QNODEOS_NETWORK), else from the embedded default network."""
    if endpoint:
        return endpoint
    here = IN_PROCESS.get()
    if here is not None and network is None and node in here[1]:
        return here[1][node]
    return _network_config(network).node(node).app_endpoint


def _curve(node: str, app: str, network: str | None, endpoint: str) -> Curve | None:
    """CURVE settings for app ``app`` at ``endpoint`` if the network file has keys and
    the endpoint needs them (tcp): the app's own key pair and the node's public key."""
    if endpoint.startswith("ipc://") or endpoint.startswith("mem://"):
        return None  # apps on ipc are same-user trust: no key needed
    keys = _network_config(network).keys
    if keys is None or not guarded(endpoint, APP, keys):
        return None
    return Curve(me=keys.app(app, secret=True), server=keys.node(node))


class Node(QubitOwner):
    """An open session with a node. Create with ``connect``."""

    def __init__(self, sock: Socket, quota: int, node: str) -> None:
        self._sock = sock
        self._enc = codec.app_to_node()
        self._dec = codec.node_to_app()
        self._replies_in, self._replies = trio.open_memory_channel[m.NodeToApp](64)
        self._lock = trio.Lock()
        self._ids = QubitIds(quota)
        self._qubits: dict[int, Qubit] = {}
        self._current: Block | None = None
        self._closed: str | None = None
        self._blocks = 0
        self.last_block: m.BlockDone | None = None  # stats of the last block that ran
        self._abandoned: int | None = None  # block sent whose reply we stopped waiting for
        self._sends: dict[int, tuple[trio.Event, list[m.SendDone | m.SendFailed]]] = {}
        self._send_seq = 0
        self._eprs: dict[int, trio.MemorySendChannel[EprNews]] = {}
        self._epr_seq = 0
        self._epr_link = SessionLink(
            ids=self._ids, next_req=self._next_req, collect=self._epr, stream=self._epr_chunks
        )
        # Pairs this app got that turned out void (the other app never got them, or its
        # node went away): entanglement id -> why. Drop them from your results.
        self.expired: dict[tuple[str, str, int], str] = {}
        # Pairs from EPR requests the other end has not yet confirmed (see EprConfirmed):
        # in doubt, and added to ``expired``, if the session ends before it does.
        self._unsettled: dict[tuple[str, str, int], None] = {}
        self._inboxes: dict[
            tuple[str, str], tuple[trio.MemorySendChannel[bytes], trio.MemoryReceiveChannel[bytes]]
        ] = {}
        self.name = node
        self.app_id = 0
        self.device = ""
        self.native_gates: list[str] = []
        self.lease_s = 1.0
        self._live = Liveness([node], pings=False)  # set up for the node's lease on connect

    @property
    def crosstalk_fidelity(self) -> float:
        """How much other apps' collective pulses (trapped ions) have disturbed this
        app's qubits, as of its last block: the fidelity a pure single-qubit state keeps
        under their errors since its qubit was allocated, for the most disturbed qubit
        the block held (1.0 = untouched; a fresh qubit starts untouched).
        ``crosstalk_hits`` counts the pulses (per qubit) since the app connected.
        Connect with ``exclusive=True`` to keep the device alone."""
        return self.last_block.crosstalk_fidelity if self.last_block else 1.0

    @property
    def crosstalk_hits(self) -> int:
        """Collective pulses of other apps that hit this app's qubits (see
        ``crosstalk_fidelity``), as of its last block."""
        return self.last_block.crosstalk_hits if self.last_block else 0

    def current_block(self) -> Block:
        """The block being recorded (LocalError outside ``async with node.block()``)."""
        if self._current is None:
            raise LocalError("qubit operations must be inside `async with node.block()`")
        return self._current

    # -- background tasks ----------------------------------------------------------------
    async def _reader(self) -> None:
        news = self._news_table()
        while True:
            frames = await self._sock.recv()
            try:
                msg = self._dec.decode(frames[-1])
            except ProtocolError as exc:
                msg = m.ErrorReply(code="bad_reply", message=f"node sent a bad reply: {exc}")
            self._live.heard(self.name, trio.current_time())
            handle = news.get(type(msg))
            if handle is not None:  # news nobody asked for just now
                handle(msg)
                continue
            if isinstance(msg, m.Stopped):
                self._wake_all(msg)
            try:
                self._replies_in.send_nowait(msg)  # the requester runs next, we read on
            except trio.WouldBlock:
                await self._replies_in.send(msg)  # replies nobody asked for: bounded

    def _news_table(self) -> dict[type, Callable[[Any], None]]:
        """What the reader does with each kind of message that is no reply (a table:
        a reply, the usual message, is found with one look-up)."""
        return {
            m.Alive: lambda _msg: None,
            m.Delivered: self._delivered,
            m.SendDone: self._send_result,
            m.SendFailed: self._send_result,
            m.EprExpired: self._epr_expired,
            m.EprConfirmed: self._epr_confirmed,
            m.EprPairs: self._epr_arrived,
            m.EprDone: self._epr_arrived,
            m.EprFailed: self._epr_arrived,
        }

    def _delivered(self, msg: m.Delivered) -> None:
        self._inbox(msg.from_node, msg.from_app)[0].send_nowait(msg.data)

    def _send_result(self, msg: m.SendDone | m.SendFailed) -> None:
        waiter = self._sends.pop(msg.seq, None)
        if waiter is not None:
            waiter[1].append(msg)
            waiter[0].set()

    def _epr_expired(self, msg: m.EprExpired) -> None:
        for ent in msg.ent_ids:
            self.expired[ent] = msg.reason
            self._unsettled.pop(ent, None)

    def _epr_confirmed(self, msg: m.EprConfirmed) -> None:
        for ent in msg.ent_ids:
            self._unsettled.pop(ent, None)

    def _epr_arrived(self, msg: m.EprPairs | m.EprDone | m.EprFailed) -> None:
        for p in msg.pairs:
            self._unsettled[p.ent_id] = None
        if msg.measured is not None:
            self._unsettled.update(dict.fromkeys(msg.measured.ent_ids()))
        while len(self._unsettled) > MAX_UNSETTLED:
            del self._unsettled[next(iter(self._unsettled))]
        chan = self._eprs.get(msg.req)
        if chan is not None:
            chan.send_nowait(msg)
            if not isinstance(msg, m.EprPairs):
                del self._eprs[msg.req]

    def _wake_all(self, stopped: m.Stopped) -> None:
        """The session ended: fail every send and EPR request still waiting. Pairs
        the other end had not confirmed yet are in doubt: it may have voided them (it
        voids what its app got unless our node confirmed it), so they count as void."""
        self._closed = stopped.reason
        doubt = f"in doubt: the session ended before the other end confirmed it ({stopped.reason})"
        for ent in self._unsettled:
            self.expired.setdefault(ent, doubt)
        self._unsettled.clear()
        for event, result in self._sends.values():
            result.append(m.SendFailed(seq=-1, code="closed", message=stopped.reason))
            event.set()
        for chan in self._eprs.values():
            chan.send_nowait(stopped)
        self._eprs.clear()

    async def _heartbeat(self) -> None:
        """Keep the lease; notice a node that stopped answering (it answers every
        heartbeat), after ``DEAD_AFTER_LEASES`` leases of silence, or longer while the
        OS says its process is alive (a busy machine, see ``qnodeos.runtime.liveness``). If
        this app itself was paused (SIGSTOP, a sleeping laptop), the silence was ours:
        ask again before judging the node.

        Heartbeats only where silence must be noticed: none is sent in an interval in
        which the app sent to the node (every message renews its lease there) and
        heard from it (its answers are the signs of life a heartbeat would ask for),
        so the lease usually goes at most two intervals (half a lease) without a
        message (up to about three, when a message renews it only as the node finishes
        with it: a NetQASM block, when its parsing ends)."""
        live = self._live
        every = self.lease_s / 4
        sent = self._sock.sent
        while True:
            await trio.sleep(every)
            now = trio.current_time()
            _, gone = live.tick(now, judge=not self._sock.pending())
            if gone:
                reason = f"node {self.name!r} {live.verdict(self.name)}"
                stopped = m.Stopped(reason=reason)
                self._wake_all(stopped)
                await self._replies_in.send(stopped)
                return
            if self._sock.sent == sent or live.last_heard[self.name] < now - every:
                await self._sock.send([self._enc.encode(m.Heartbeat())])
            sent = self._sock.sent

    async def _watch(self) -> None:
        """A node whose process died closes our connection: say so at once."""
        async with aclosing(disconnects(self._sock)) as events:
            async for _ in events:
                break
            else:
                return
        if self._closed is None:
            stopped = m.Stopped(
                reason=f"node {self.name!r} went away (its process ended and closed the "
                f"connection)"
            )
            self._wake_all(stopped)
            await self._replies_in.send(stopped)

    # -- classical messages --------------------------------------------------------------
    def _inbox(
        self, node: str, app: str
    ) -> tuple[trio.MemorySendChannel[bytes], trio.MemoryReceiveChannel[bytes]]:
        box = self._inboxes.get((node, app))
        if box is None:
            box = self._inboxes[(node, app)] = trio.open_memory_channel[bytes](math.inf)
        return box

    def socket(self, node: str, app: str) -> ClassicalSocket:
        """A classical socket to app ``app`` on node ``node`` (this node's name works too)."""
        return ClassicalSocket(self, node, app)

    async def _send_message(self, node: str, app: str, data: bytes) -> None:
        if self._closed is not None:
            raise ConnectionClosed(f"session with node {self.name!r} is closed: {self._closed}")
        self._send_seq += 1
        seq = self._send_seq
        frame = self._checked(m.SendMsg(to_node=node, to_app=app, seq=seq, data=data))
        done = trio.Event()
        result: list[m.SendDone | m.SendFailed] = []
        self._sends[seq] = (done, result)
        try:
            await self._sock.send([frame])
            await done.wait()
        finally:
            self._sends.pop(seq, None)
        if isinstance(result[0], m.SendFailed):
            raise RemoteError(
                f"message to {app!r} on {node!r} not delivered: {result[0].message}",
                code=result[0].code,
            )

    # -- entanglement --------------------------------------------------------------------
    def progress(self, done: float, total: float | None = None, unit: str = "") -> None:
        """Say how far the app is: ``done`` of ``total`` (None if unknown) ``unit``
        (e.g. "pairs", "rounds"). ``qnodeos run`` shows it, with a rate and an ETA,
        while the run works; elsewhere it does nothing. Call it as often as you like
        (it writes at most 5 times a second)."""
        _progress.report(done, total, unit)

    def epr_socket(self, node: str, app: str) -> EprSocket:
        """An EPR socket to app ``app`` on node ``node`` (which opens one back to us)."""
        return EprSocket(node, app, self._epr_link)

    def _next_req(self) -> int:
        self._epr_seq += 1
        return self._epr_seq

    def _pairs_of(self, msg: m.EprPairs | m.EprDone | m.EprFailed) -> list[Pair]:
        """The message's pairs as the app sees them (those sent as columns last)."""
        pairs = self._to_pairs(msg.pairs)
        if msg.measured is not None:
            pairs += measured_pairs(msg.measured)
        return pairs

    def _to_pairs(self, pairs: list[m.EprPair]) -> list[Pair]:
        """Pairs as the app sees them; kept halves become the app's Qubits."""
        out = []
        for p in pairs:
            q = None
            if p.qubit >= 0:
                q = Qubit(self, p.qubit)
                self._ids.used.add(p.qubit)
                self._qubits[p.qubit] = q
            out.append(
                Pair(
                    ent_id=p.ent_id,
                    bell_index=p.bell_index,
                    goodness=p.goodness,
                    attempts=p.attempts,
                    at_ns=p.at_ns,
                    qubit=q,
                    outcome=p.outcome,
                    basis=p.basis,
                )
            )
        return out

    async def _epr(self, req: m.EprRequest) -> list[Pair]:
        """Every pair of the request once it is complete (or EprError with those made).
        They are acknowledged when handed to the app, and only then: pairs an app never
        took are voided at both ends if it goes away."""
        got: list[Pair] = []
        async with aclosing(self._epr_news(req)) as news:
            async for msg in news:
                got += self._pairs_of(msg)
                if isinstance(msg, m.EprPairs):
                    continue
                if got:
                    await self._ack(req.req, len(got))
                self._raise_failed(req, msg, got)
                return got
        raise AssertionError("unreachable")  # _epr_news ends with EprDone or raises

    async def _epr_chunks(self, req: m.EprRequest) -> AsyncGenerator[list[Pair], None]:
        """The request's pairs in chunks as they are made, each acknowledged as it is
        handed to the app."""
        count = 0
        async with aclosing(self._epr_news(req)) as news:
            async for msg in news:
                pairs = self._pairs_of(msg)
                if pairs:
                    count += len(pairs)
                    await self._ack(req.req, count)
                if not isinstance(msg, m.EprPairs):
                    self._raise_failed(req, msg, pairs)
                if pairs:
                    yield pairs

    def _checked(self, msg: m.AppToNode) -> bytes:
        """``msg`` encoded, if the node would accept it (LocalError naming the field
        if not: the call fails here, at once, rather than at the node)."""
        data = self._enc.encode(msg)
        try:
            self._enc.decode(data)
        except ProtocolError as exc:
            raise LocalError(f"{type(msg).__name__} not sent: {exc}") from None
        return data

    async def _ack(self, req: int, count: int) -> None:
        await self._sock.send([self._enc.encode(m.EprAck(req=req, count=count))])

    def _raise_failed(
        self, req: m.EprRequest, msg: m.EprDone | m.EprFailed, pairs: list[Pair]
    ) -> None:
        if isinstance(msg, m.EprFailed):
            raise EprError(
                f"EPR pairs with {req.remote_app!r} on {req.remote_node!r} failed "
                f"({msg.code}): {msg.message}",
                code=msg.code,
                pairs=pairs,
            )

    async def _epr_news(
        self, req: m.EprRequest
    ) -> AsyncGenerator[m.EprPairs | m.EprDone | m.EprFailed, None]:
        """Send the request; what the node says about it, until its last message."""
        if self._closed is not None:
            raise ConnectionClosed(f"session with node {self.name!r} is closed: {self._closed}")
        data = self._checked(req)
        send, news = trio.open_memory_channel[EprNews](math.inf)
        self._eprs[req.req] = send
        try:
            await self._sock.send([data])
            while True:
                msg = await news.receive()
                if isinstance(msg, m.Stopped):
                    raise ConnectionClosed(
                        f"session with node {self.name!r} ended: {msg.reason}"
                    )
                yield msg
                if not isinstance(msg, m.EprPairs):
                    return
        finally:
            self._eprs.pop(req.req, None)

    # -- requests ------------------------------------------------------------------------
    async def _register(self, msg: m.Register, timeout: float, ep: str) -> m.Registered:
        """The handshake, before the background tasks start: send, await one reply."""
        await self._sock.send([self._enc.encode(msg)])
        with trio.move_on_after(timeout):
            frames = await self._sock.recv()
            try:
                reply = self._dec.decode(frames[-1])
            except ProtocolError as exc:
                raise RemoteError(f"node {self.name!r} sent a bad reply: {exc}") from None
            if isinstance(reply, m.ErrorReply):
                raise RemoteError(reply.message, code=reply.code)
            if not isinstance(reply, m.Registered):
                raise RemoteError(f"unexpected answer to register: {reply!r}")
            return reply
        raise ConnectionClosed(
            f"node {self.name!r} at {ep} did not answer within {timeout} s; is it running?"
        )

    async def _stop(self) -> None:
        if self._closed is not None:
            return
        with trio.move_on_after(2.0) as cs:
            cs.shield = True
            try:
                await self._request(m.Stop())
            except ConnectionClosed:
                pass

    async def _request(self, msg: m.AppToNode) -> m.NodeToApp:
        if self._closed is not None:
            raise ConnectionClosed(f"session with node {self.name!r} is closed: {self._closed}")
        # Usually no other request is in flight: take the lock without the scheduler
        # pass ``async with`` costs (the wait for the reply below is the checkpoint).
        try:
            self._lock.acquire_nowait()
        except trio.WouldBlock:
            await self._lock.acquire()
        try:
            # A block whose wait was cancelled still runs on the node (one at a time):
            # wait for its reply and drop it before sending anything else.
            while self._abandoned is not None:
                late = await self._replies.receive()
                if isinstance(late, m.Stopped):
                    raise ConnectionClosed(f"session with node {self.name!r} ended: {late.reason}")
                if isinstance(late, m.BlockDone | m.BlockFailed) and late.block == self._abandoned:
                    self._abandoned = None
            block = msg.block if isinstance(msg, m.Submit | m.SubmitNetQASM) else None
            await self._sock.send([self._enc.encode(msg)])
            self._abandoned = block
            reply = await self._replies.receive()
            self._abandoned = None
        finally:
            self._lock.release()
        if isinstance(reply, m.Stopped):
            raise ConnectionClosed(f"session with node {self.name!r} ended: {reply.reason}")
        if isinstance(reply, m.ErrorReply):
            raise RemoteError(reply.message, code=reply.code)
        return reply

    async def run(self, sub: Subroutine | str, *, deadline_s: float | None = None) -> Values:
        """Run a raw subroutine (or its text form); return the values of its ``ret``s."""
        if isinstance(sub, str):
            sub = parse(sub)
        self._blocks += 1
        return await self._block_reply(
            m.Submit(block=self._blocks, sub=sub, deadline_s=deadline_s)
        )

    async def run_netqasm(
        self,
        code: bytes | str,
        *,
        flavour: str = "vanilla",
        sockets: list[m.NqSocket] | None = None,
        fresh: bool = False,
        stop: bool = False,
        deadline_s: float | None = None,
    ) -> Values:
        """Run a NetQASM subroutine (its binary encoding, or its text as str) as one
        block; return what its ``ret_reg`` (by register name, "M0") and ``ret_arr``
        (as "@<address>", undefined entries as ``-2**63``) gave back. The app's NetQASM
        registers and arrays persist between these calls until ``fresh``; ``stop``
        releases every qubit the app holds and forgets them (a NetQASM connection's
        end). ``sockets``: the app's EPR sockets. Needs the netqasm package on the node
        (``pip install 'qnodeos[netqasm]'``)."""
        self._blocks += 1
        msg = m.SubmitNetQASM(
            block=self._blocks,
            code=code.encode() if isinstance(code, str) else code,
            form="text" if isinstance(code, str) else "binary",
            flavour=flavour,
            sockets=sockets or [],
            fresh=fresh,
            stop=stop,
            deadline_s=deadline_s,
        )
        if stop:
            self._qubits.clear()
            self._ids.used = set()
        return await self._block_reply(msg)

    async def state(self, qubit: int, group: bool = False) -> Any:
        """The density matrix (2x2 numpy array) of this app's qubit ``qubit`` now,
        traced over every other qubit: simulation only (a ``peek`` block; the state is
        not disturbed). With ``group``, the joint state of every qubit that shares a
        state with it (``peek_group``: 2^k x 2^k for k qubits, on this node or others,
        ordered by node name, then the node's physical qubit)."""
        import numpy as np

        op = "peek_group" if group else "peek"
        await self.run(f"{op} Q{qubit}")
        assert self.last_block is not None
        flat = np.asarray(self.last_block.states[f"Q{qubit}"], dtype=float)
        dim = round(math.sqrt(len(flat) // 2))
        if dim < 2 or 2 * dim * dim != len(flat):
            raise RemoteError(f"peek of Q{qubit} read {len(flat)} numbers, not a density matrix")
        return (flat[0::2] + 1j * flat[1::2]).reshape(dim, dim)

    async def _block_reply(self, msg: m.Submit | m.SubmitNetQASM) -> Values:
        reply = await self._request(msg)
        if isinstance(reply, m.BlockFailed):
            self._ids.used = set(reply.held)
            raise BlockError(
                f"block failed ({reply.code}): {reply.message}", code=reply.code, held=reply.held
            )
        if not isinstance(reply, m.BlockDone) or reply.block != msg.block:
            raise RemoteError(f"unexpected reply to block {msg.block}: {reply!r}")
        self.last_block = reply
        return reply.values

    def block(self, *, deadline_s: float | None = None) -> BlockScope:
        """Record a block; it runs on the device as one unit when the ``with`` ends."""
        return BlockScope(self, deadline_s)

    def _open_block(self) -> Block:
        if self._current is not None:
            raise LocalError("blocks do not nest")
        b = self._current = Block(qubit_ids=self._ids, owner=self)
        return b

    def _drop_block(self, b: Block) -> None:
        """Nothing was sent: undo what recording did to the app's qubit ids."""
        self._current = None
        for q in b.allocated:
            self._ids.give(q.id)
        for q in b.freed:
            if q not in b.allocated:
                self._ids.used.add(q.id)
                q.freed = False

    async def _run_block(self, b: Block, deadline_s: float | None) -> None:
        self._current = None
        try:
            values = await self.run(b.build(), deadline_s=deadline_s)
        except BlockError as exc:
            # The node released what this block allocated; of the older qubits it
            # still holds exactly those in ``held``.
            for q in b.allocated:
                q.freed = True
            for vid, q in list(self._qubits.items()):
                q.freed = vid not in exc.held
                if q.freed:
                    del self._qubits[vid]
            raise
        for q in b.freed:
            self._qubits.pop(q.id, None)
        self._qubits.update({q.id: q for q in b.allocated if not q.freed})
        b.fill(values)


class BlockScope:
    """``async with node.block() as b``: records ``b``, runs it when the ``with`` ends
    (a plain class rather than an ``asynccontextmanager``, whose generator costs a few
    microseconds on every block)."""

    __slots__ = ("_node", "_deadline_s", "_block")

    def __init__(self, node: Node, deadline_s: float | None) -> None:
        self._node = node
        self._deadline_s = deadline_s
        self._block: Block | None = None

    async def __aenter__(self) -> Block:
        self._block = self._node._open_block()
        return self._block

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: object
    ) -> None:
        b = self._block
        assert b is not None
        if exc_type is not None:
            self._node._drop_block(b)
            return  # (the exception goes on)
        await self._node._run_block(b, self._deadline_s)


PROBE_S = 1.0  # how long connect waits for a tcp handshake before leaving it to zmq


def _no_socket_file(ep: str) -> bool:
    """An ipc endpoint whose socket file does not exist: no node has bound it (one stat
    of a local file; zmq itself would retry in silence until the timeout)."""
    return ep.startswith("ipc://") and not os.path.exists(ep.removeprefix("ipc://"))


async def _refused(ep: str, wait: float) -> str | None:
    """Why no node can be listening at tcp endpoint ``ep``, or None if one may be (or
    ``ep`` is no tcp endpoint): one TCP handshake, where zmq would retry in silence
    until the timeout. A refused connection or an unknown host is an answer; a host
    that does not answer within ``wait`` seconds is left to zmq and the timeout."""
    host, _, port = ep.removeprefix("tcp://").rpartition(":")
    if not ep.startswith("tcp://") or ";" in host or not port.isdigit():
        return None  # not tcp, or a source address or no port: zmq's business
    with trio.move_on_after(wait):
        try:
            stream = await trio.open_tcp_stream(host.strip("[]"), int(port))
        except OSError as exc:  # refused, unreachable, or no such host
            # trio tries each address of the host: the reasons are in the cause
            tried = getattr(exc.__cause__, "exceptions", [exc])
            return "; ".join(sorted({_reason(e) for e in tried}))
        await stream.aclose()
    return None


def _reason(exc: OSError) -> str:
    """'Connection refused', not trio's 'Error connecting to (...): Connection refused'
    (a failed name lookup has a negative errno and its own text)."""
    if exc.errno is not None and exc.errno > 0:
        return os.strerror(exc.errno)
    return exc.strerror or str(exc)


def _check_trio() -> None:
    """LocalError, saying what to do, unless this runs inside trio."""
    try:
        trio.lowlevel.current_task()
    except RuntimeError:
        raise LocalError(
            "qnodeos.sdk runs under trio, not asyncio: in Jupyter or IPython, run "
            "`%autoawait trio` in a cell first (then `await` works at the top level of "
            "a cell); in a script, trio.run(main)"
        ) from None


@asynccontextmanager
async def connect(
    node: str,
    *,
    app: str | None = None,
    qubits: int,
    priority: int = 0,
    network: str | None = None,
    endpoint: str | None = None,
    timeout: float = 10.0,
    exclusive: bool = False,
) -> AsyncIterator[Node]:
    """Open a session with ``node`` as app ``app`` with a quota of ``qubits`` qubits
    (``app`` defaults to the name the runner gave this app: ``app_name()``).
    ``exclusive``: no other app may hold qubits on the node while this one is connected
    (refused if one does now).

    The node is found through ``endpoint``, the network file ``network`` (or
    $QNODEOS_NETWORK), or the embedded default network. Raises ConnectionClosed at once
    if nothing listens at the node's endpoint (ipc: no socket file; tcp: the connection
    is refused or the host unknown), or if the node does not answer within ``timeout``
    seconds; RemoteError if it refuses. The SDK runs
    under trio: from asyncio (a Jupyter cell's top-level ``await``) it raises
    LocalError saying how to switch (``%autoawait trio``).
    """
    _check_trio()
    app = app or APP_NAME.get()
    if not app:
        raise LocalError("sdk.connect: give app=NAME (no runner named this app)")
    ep = resolve_endpoint(node, network, endpoint)
    if _no_socket_file(ep):
        raise ConnectionClosed(
            f"node {node!r} is not up: nothing listens at {ep} (start it with `qnodeos node "
            f"{node} --network FILE` or `qnodeos up FILE`, with the same "
            "$QNODEOS_RUNTIME_DIR)"
        )
    refused = await _refused(ep, min(PROBE_S, timeout))
    if refused is not None:
        raise ConnectionClosed(
            f"node {node!r} is not up: nothing listens at {ep} ({refused}; start it with "
            f"`qnodeos node {node} --network FILE` or `qnodeos up FILE` on that host)"
        )
    sock = connect_dealer(ep, _curve(node, app, network, ep))
    conn = Node(sock, qubits, node)
    try:
        reply = await conn._register(
            m.Register(
                app=app,
                qubits=qubits,
                priority=priority,
                exclusive=exclusive,
                proc=procinfo.me(),
            ),
            timeout,
            ep,
        )
        conn.app_id, conn.device = reply.app_id, reply.device
        conn.native_gates, conn.lease_s = reply.native_gates, reply.lease_s
        conn._live = Liveness(
            [node],
            interval_s=reply.lease_s / 4,
            timeout_s=DEAD_AFTER_LEASES * reply.lease_s,
            look=procinfo.look,
            pings=False,
        )
        conn._live.heard(node, trio.current_time())
        conn._live.claim(node, reply.proc)
        try:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(conn._reader)
                nursery.start_soon(conn._heartbeat)
                nursery.start_soon(conn._watch)
                try:
                    yield conn
                finally:
                    await conn._stop()
                    nursery.cancel_scope.cancel()
        except BaseExceptionGroup as group:
            # Give the app the exception itself (a BlockError from its own code, say),
            # not a group, when there is only one.
            if len(group.exceptions) == 1:
                raise group.exceptions[0] from None
            raise
    finally:
        sock.close()
