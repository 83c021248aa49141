"""Classical messages between apps, routed by their nodes (sans-IO).

How it works: an app sends ``SendMsg(to_node, to_app, seq, data)``. For another node,
the kernel forwards a ``Carry`` and keeps it pending until that node answers
``CarryAck`` (the app then gets ``SendDone``) or ``CarryNack`` / no answer within the
ack timeout (``SendFailed``). The receiving node delivers to the live app of that name
or, if none has connected yet, keeps the message in a bounded inbox and delivers it, in
order, when the app registers. So a send that completed was accepted by the destination
node, and every failure is reported: nothing is lost silently. Messages between one
pair of apps arrive in the order sent (one connection per node pair, handled in order).
App names are unique on a node: they are the addresses.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Collection
from dataclasses import dataclass

from ..lang import messages as m
from .outputs import Out, ToApp, ToNode
from .processes import App, ProcessTable

MAX_MESSAGE = 1 << 20  # bytes of data in one message
INBOX_LIMIT = 1000  # messages kept for an app that has not connected yet
# All inboxes of apps that have not connected, together: bytes and app names. Without
# a total, 1,000 messages of 1 MiB for each of many made-up names fill the node.
INBOX_TOTAL_BYTES = 32 << 20
INBOX_NAMES = 256
PENDING_LIMIT = 10_000  # messages sent to other nodes and not yet acknowledged


@dataclass
class _Pending:
    app_id: int
    addr: bytes
    seq: int
    to_node: str
    deadline: float


class Postbox:
    def __init__(
        self, *, node: str, peers: Collection[str], procs: ProcessTable, ack_timeout_s: float = 5.0
    ) -> None:
        self.node = node
        self.peers = frozenset(peers) - {node}
        self.procs = procs
        self.ack_timeout_s = ack_timeout_s
        self.pending: dict[int, _Pending] = {}
        self.inbox: dict[str, deque[m.Delivered]] = {}
        self.inbox_bytes = 0
        self._next = 0
        self.ignored = 0  # node-to-node messages from unknown nodes or about unknown ids

    # -- from local apps -----------------------------------------------------------------
    def send(self, app: App, msg: m.SendMsg, now: float) -> list[Out]:
        def fail(code: str, text: str) -> list[Out]:
            return [ToApp(app.addr, m.SendFailed(seq=msg.seq, code=code, message=text))]

        if len(msg.data) > MAX_MESSAGE:
            return fail("too_large", f"{len(msg.data)} bytes; limit is {MAX_MESSAGE}")
        if msg.to_node == self.node:
            out, refused = self._deliver(
                m.Delivered(from_node=self.node, from_app=app.name, data=msg.data), msg.to_app
            )
            if refused:
                return fail("refused", refused)
            return out + [ToApp(app.addr, m.SendDone(seq=msg.seq))]
        if msg.to_node not in self.peers:
            known = ", ".join(sorted(self.peers | {self.node}))
            return fail("unknown_node", f"no node named {msg.to_node!r}; nodes: {known}")
        if len(self.pending) >= PENDING_LIMIT:
            return fail(
                "busy",
                f"node {self.node!r} already waits for {PENDING_LIMIT} acknowledgements "
                f"from other nodes; wait for earlier sends to complete",
            )
        self._next += 1
        self.pending[self._next] = _Pending(
            app.app_id, app.addr, msg.seq, msg.to_node, now + self.ack_timeout_s
        )
        return [
            ToNode(
                msg.to_node,
                m.Carry(
                    from_node=self.node,
                    id=self._next,
                    from_app=app.name,
                    to_app=msg.to_app,
                    data=msg.data,
                ),
            )
        ]

    # -- from other nodes ----------------------------------------------------------------
    def peer_message(self, msg: m.Carry | m.CarryAck | m.CarryNack) -> list[Out]:
        if msg.from_node not in self.peers:
            self.ignored += 1
            return []
        if isinstance(msg, m.Carry):
            out, refused = self._deliver(
                m.Delivered(from_node=msg.from_node, from_app=msg.from_app, data=msg.data),
                msg.to_app,
            )
            answer: m.NodeToNode = (
                m.CarryNack(from_node=self.node, id=msg.id, reason=refused)
                if refused
                else m.CarryAck(from_node=self.node, id=msg.id)
            )
            return out + [ToNode(msg.from_node, answer)]
        p = self.pending.get(msg.id)
        if p is None or p.to_node != msg.from_node:
            self.ignored += 1
            return []
        del self.pending[msg.id]
        if self.procs.by_id.get(p.app_id) is None:
            return []  # the sender has gone
        if isinstance(msg, m.CarryAck):
            return [ToApp(p.addr, m.SendDone(seq=p.seq))]
        return [ToApp(p.addr, m.SendFailed(seq=p.seq, code="refused", message=msg.reason))]

    def _deliver(self, d: m.Delivered, to_app: str) -> tuple[list[Out], str]:
        """Deliver or queue; returns (outputs, refusal reason or "")."""
        app = self.procs.by_name.get(to_app)
        if app is not None:
            return [ToApp(app.addr, d)], ""
        box = self.inbox.get(to_app)
        if box is None and len(self.inbox) >= INBOX_NAMES:
            return [], (
                f"node {self.node!r} already keeps messages for {INBOX_NAMES} apps that "
                f"have not connected; start app {to_app!r} before sending to it"
            )
        if box is not None and len(box) >= INBOX_LIMIT:
            return [], (
                f"inbox of app {to_app!r} on node {self.node!r} is full "
                f"({INBOX_LIMIT} messages waiting for it to connect)"
            )
        if self.inbox_bytes + len(d.data) > INBOX_TOTAL_BYTES:
            return [], (
                f"node {self.node!r} already keeps {self.inbox_bytes >> 20} MiB of messages "
                f"for apps that have not connected (limit {INBOX_TOTAL_BYTES >> 20} MiB); "
                f"start app {to_app!r} before sending to it"
            )
        self.inbox.setdefault(to_app, deque()).append(d)
        self.inbox_bytes += len(d.data)
        return [], ""

    # -- lifecycle and timers ------------------------------------------------------------
    def registered(self, app: App) -> list[Out]:
        """A new app: hand it what arrived before it connected, in order."""
        queued = self.inbox.pop(app.name, ())
        self.inbox_bytes -= sum(len(d.data) for d in queued)
        return [ToApp(app.addr, d) for d in queued]

    def handle_timer(self, now: float) -> list[Out]:
        out: list[Out] = []
        for key, p in list(self.pending.items()):
            if p.deadline <= now:
                del self.pending[key]
                if self.procs.by_id.get(p.app_id) is not None:
                    out.append(
                        ToApp(
                            p.addr,
                            m.SendFailed(
                                seq=p.seq,
                                code="unreachable",
                                message=f"node {p.to_node!r} did not acknowledge within "
                                f"{self.ack_timeout_s} s",
                            ),
                        )
                    )
        return out
