"""The node's postbox, sans-IO."""

from __future__ import annotations

from qnodeos.kernel.messaging import (
    INBOX_LIMIT,
    INBOX_NAMES,
    INBOX_TOTAL_BYTES,
    MAX_MESSAGE,
    Postbox,
)
from qnodeos.kernel.outputs import ToApp, ToNode
from qnodeos.kernel.processes import ProcessTable
from qnodeos.lang import messages as m


def box() -> tuple[Postbox, ProcessTable]:
    procs = ProcessTable(lease_s=1.0)
    return Postbox(node="bob", peers={"alice", "bob"}, procs=procs), procs


def carry(i: int, to_app: str = "b", node: str = "alice") -> m.Carry:
    return m.Carry(from_node=node, id=i, from_app="a", to_app=to_app, data=b"%d" % i)


def test_full_inbox_refuses_and_says_why() -> None:
    pb, _ = box()
    for i in range(INBOX_LIMIT):
        (ack,) = pb.peer_message(carry(i))
        assert isinstance(ack, ToNode) and isinstance(ack.msg, m.CarryAck)
    (nack,) = pb.peer_message(carry(INBOX_LIMIT))
    assert isinstance(nack, ToNode) and isinstance(nack.msg, m.CarryNack)
    assert "inbox of app 'b' on node 'bob' is full" in nack.msg.reason


def test_inboxes_of_apps_not_connected_are_capped_in_total() -> None:
    pb, procs = box()
    big = b"x" * MAX_MESSAGE
    accepted = 0
    for i in range(200):  # 200 MiB offered to 200 made-up names
        (answer,) = pb.peer_message(
            m.Carry(from_node="alice", id=i, from_app="a", to_app=f"n{i}", data=big)
        )
        assert isinstance(answer, ToNode)
        if isinstance(answer.msg, m.CarryNack):
            assert f"{INBOX_TOTAL_BYTES >> 20} MiB" in answer.msg.reason
            break
        accepted += 1
    assert accepted == INBOX_TOTAL_BYTES // MAX_MESSAGE
    assert pb.inbox_bytes <= INBOX_TOTAL_BYTES
    # names are capped too, however small the messages
    pb, _ = box()
    for i in range(INBOX_NAMES):
        pb.peer_message(m.Carry(from_node="alice", id=i, from_app="a", to_app=f"n{i}", data=b""))
    (nack,) = pb.peer_message(
        m.Carry(from_node="alice", id=999, from_app="a", to_app="one-more", data=b"")
    )
    assert isinstance(nack, ToNode) and isinstance(nack.msg, m.CarryNack)
    assert f"{INBOX_NAMES} apps" in nack.msg.reason
    # delivering a queue gives its bytes back
    pb, procs = box()
    pb.peer_message(m.Carry(from_node="alice", id=1, from_app="a", to_app="b", data=b"1234"))
    assert pb.inbox_bytes == 4
    pb.registered(procs.add(name="b", addr=b"B", priority=0, quota=0, now=0.0))
    assert pb.inbox_bytes == 0


def test_queued_messages_are_delivered_in_order_on_register() -> None:
    pb, procs = box()
    for i in range(3):
        pb.peer_message(carry(i))
    app = procs.add(name="b", addr=b"B", priority=0, quota=0, now=0.0)
    outs = pb.registered(app)
    got = [o.msg.data for o in outs if isinstance(o, ToApp) and isinstance(o.msg, m.Delivered)]
    assert got == [b"0", b"1", b"2"]
    assert pb.registered(app) == []


def test_messages_from_unknown_nodes_and_stray_acks_are_ignored() -> None:
    pb, _ = box()
    assert pb.peer_message(carry(1, node="mallory")) == []
    assert pb.peer_message(m.CarryAck(from_node="alice", id=99)) == []
    assert pb.ignored == 2


def test_oversized_message_is_refused_at_the_sender() -> None:
    pb, procs = box()
    app = procs.add(name="b", addr=b"B", priority=0, quota=0, now=0.0)
    (out,) = pb.send(
        app, m.SendMsg(to_node="alice", to_app="a", seq=1, data=b"x" * (MAX_MESSAGE + 1)), 0.0
    )
    assert isinstance(out, ToApp) and isinstance(out.msg, m.SendFailed)
    assert out.msg.code == "too_large"


def test_ack_for_a_sender_that_has_gone_is_dropped() -> None:
    pb, procs = box()
    app = procs.add(name="b", addr=b"B", priority=0, quota=0, now=0.0)
    (fwd,) = pb.send(app, m.SendMsg(to_node="alice", to_app="a", seq=1, data=b"x"), 0.0)
    assert isinstance(fwd, ToNode) and isinstance(fwd.msg, m.Carry)
    procs.remove(app)
    assert pb.peer_message(m.CarryAck(from_node="alice", id=fwd.msg.id)) == []
    assert pb.pending == {}
