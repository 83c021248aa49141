"""An idle node costs nothing (issue #25): no timer is due in its classical or quantum
process while nothing waits on a linked node, and linked nodes are pinged (and answer)
only while something does."""

from __future__ import annotations

import math

import pytest

from qnodeos.config.network import LinkConfig, NodeConfig
from qnodeos.hardware.params import generic
from qnodeos.kernel.core import Kernel
from qnodeos.kernel.outputs import ToNode
from qnodeos.lang import codec
from qnodeos.lang import messages as m
from qnodeos.netlink.models import Perfect
from qnodeos.qdevice.server import QDeviceServer, ToPeer
from qnodeos.runtime.liveness import Liveness

LINK = LinkConfig(nodes=("a", "b"), model=Perfect(cycle_ns=100), seed=1)


def kernel() -> Kernel:
    return Kernel(node="a", spec=generic(2), peers={"b": ""}, links=[LINK])


def qdevice(name: str = "a") -> QDeviceServer:
    cfg = NodeConfig(
        name=name, device=generic(2), speed=math.inf, seed=1,
        app_endpoint="", qdevice_endpoint="", peer_endpoint="",
    )  # fmt: skip
    q = QDeviceServer(cfg, [LINK])
    q.handle([b"k", codec.to_device().encode(m.Ping(seq=0))], 0.0, 0.0)
    return q


@pytest.mark.parametrize(
    "msg", [m.NodePing(from_node="a", ask=True), m.NodePing(from_node="a")]
)
def test_node_pings_round_trip(msg: m.NodeToNode) -> None:
    c = codec.node_to_node()
    assert c.decode(c.encode(msg)) == msg


@pytest.mark.parametrize("msg", [m.QPing(frm="a", ask=True), m.QPing(frm="a")])
def test_quantum_pings_round_trip(msg: m.QPeer) -> None:
    c = codec.qdevice_peer()
    assert c.decode(c.encode(msg)) == msg


def test_an_idle_kernel_has_no_timer_and_pings_nobody() -> None:
    k = kernel()
    k.peer_message(m.NodePing(from_node="b"), 0.0)
    assert k.next_deadline(0.0) == math.inf
    assert k.handle_timer(100.0) == []
    assert k.next_deadline(100.0) == math.inf


def test_a_kernel_answers_a_ping_that_asks_and_only_that() -> None:
    k = kernel()
    assert k.peer_message(m.NodePing(from_node="b"), 0.0) == []
    (out,) = k.peer_message(m.NodePing(from_node="b", ask=True), 0.0)
    assert isinstance(out, ToNode) and out.node == "b"
    assert isinstance(out.msg, m.NodePing) and not out.msg.ask


def test_a_kernel_pings_a_node_its_app_waits_on_and_judges_its_silence() -> None:
    k = kernel()
    k.peer_message(m.NodePing(from_node="b"), 0.0)
    addr = b"app1"
    k.app_message(addr, m.Register(app="x", qubits=1), 0.0)
    req = m.EprRequest(req=1, remote_node="b", remote_app="y", role="create", kind="M")
    k.app_message(addr, req, 0.0)
    assert k.live.wanted == {"b"}  # waited on from the request on
    assert k.next_deadline(0.0) <= 0.05  # a request: the timer runs
    pings = [o for o in k.handle_timer(0.05) if isinstance(o, ToNode)]
    assert [(o.node, o.msg) for o in pings] == [
        ("b", m.NodePing(from_node="a", ask=True))
    ]
    assert k.live.wanted == {"b"}
    t = 0.05
    while not k.live.is_down("b"):  # b never answers
        t += 0.05
        k.app_message(addr, m.Heartbeat(), t)  # (the app keeps its lease)
        k.handle_timer(t)
        assert t < 3.0
    assert 1.5 < t <= 1.6  # silent from when it was first waited on


def test_an_idle_quantum_process_has_no_timer() -> None:
    q = qdevice()
    ping = codec.qdevice_peer().encode(m.QPing(frm="b"))
    assert q.peer_message(ping, 0.0, 0.0) == []
    assert q.next_timer_s() == math.inf
    assert q.timer(0.0, 100.0) == []
    assert q.next_timer_s() == math.inf


def test_a_quantum_process_answers_a_ping_that_asks() -> None:
    q = qdevice()
    ping = codec.qdevice_peer().encode(m.QPing(frm="b", ask=True))
    (out,) = q.peer_message(ping, 0.0, 0.0)
    assert isinstance(out, ToPeer) and out.node == "b"
    answer = codec.qdevice_peer().decode(out.data)
    assert isinstance(answer, m.QPing) and answer.frm == "a" and not answer.ask


def test_a_round_makes_its_peer_wanted_until_it_ends() -> None:
    q = qdevice("b")  # the station is in a's process: b's round waits on it
    req = m.Entangle(seq=1, peer="a", key="r", qubits=[0], max_attempts=5, expires_s=10.0)
    q.handle([b"k", codec.to_device().encode(req)], 0.0, 0.0)
    assert q.live.wanted == {"a"}
    assert q.next_timer_s() == 0.0  # a ping, asking a to answer, is due
    outs = q.timer(0.0, 0.0)
    pings = [codec.qdevice_peer().decode(o.data) for o in outs if isinstance(o, ToPeer)]
    assert any(isinstance(p, m.QPing) and p.ask for p in pings)


def test_gaps_while_not_wanted_do_not_stretch_the_threshold() -> None:
    live = Liveness(["b"], interval_s=0.25, timeout_s=1.5, on_demand=True)
    for t in (0.0, 100.0, 250.0, 900.0):  # heard now and then, while nobody waited
        live.heard("b", t)
    assert live.threshold("b") == 1.5
    live.want(["b"], 1000.0)
    live.heard("b", 1000.2)
    assert list(live.gaps["b"]) == [pytest.approx(0.2)]


def test_silence_in_short_waits_adds_up() -> None:
    """A stopped peer is found even if nothing waits on it for long at a time (rounds
    that end and start again): only the time nobody waited is left out."""
    live = Liveness(["b"], interval_s=0.25, timeout_s=1.5, on_demand=True)
    live.heard("b", 0.0)
    t, down_at = 0.0, None
    while down_at is None and t < 10:
        live.want(["b"], t)
        for _ in range(4):  # waits of 0.2 s ...
            t += 0.05
            if live.tick(t)[1]:
                down_at = t
                break
        live.want([], t)
        t += 0.1  # ... with 0.1 s between them
        live.tick(t)
    assert down_at is not None and 2.2 < down_at < 2.4  # 1.5 s of waiting on it


def test_a_node_that_went_down_is_asked_until_it_is_back() -> None:
    # Requests to a down neighbour are refused at once, so nothing would wait on it and
    # nobody would ask it: it is asked (every DOWN_ASK_S) until it answers.
    k = kernel()
    k.peer_message(m.NodePing(from_node="b"), 0.0)
    k.peer_message(m.NodeBye(from_node="b", reason="restarting"), 0.1)
    assert "b" in k.net.down
    assert [o for o in k.handle_timer(0.2) if isinstance(o, ToNode)] == []  # it just went
    assert k.next_deadline(0.2) <= 0.85
    asks = [o for o in k.handle_timer(0.85) if isinstance(o, ToNode)]
    assert [(o.node, o.msg) for o in asks] == [("b", m.NodePing(from_node="a", ask=True))]
    assert [o for o in k.handle_timer(1.3) if isinstance(o, ToNode)] == []  # now and then
    assert k.live.pauses == 0  # asking now and then is no pause of this process
    k.peer_message(m.NodePing(from_node="b"), 1.4)  # it is back and answers
    assert "b" not in k.net.down
    k.handle_timer(1.5)
    assert k.next_deadline(1.5) == math.inf  # idle again: no timer, no pings


def test_a_pause_right_after_a_wait_began_is_a_pause_not_a_silent_peer() -> None:
    """Nothing was waited on at the last tick, then a wait began and, before any tick,
    the whole machine stood still for 3 s: the first tick after it must see this
    process's own pause, not blame the peer for the silence the pause made."""
    live = Liveness(["b"], interval_s=0.25, timeout_s=1.5, on_demand=True)
    live.heard("b", 0.0)
    live.tick(0.1)  # idle: nothing wanted
    live.want(["b"], 0.2)  # a wait begins; the stall comes before the next tick
    _, gone = live.tick(3.2)
    assert gone == [] and live.pauses == 1
    assert live.tick(3.3)[1] == []


def test_a_kernel_with_apps_wakes_for_deadlines_not_on_a_clock() -> None:
    """Apps connected and a request under way: the kernel's timer is set to the next
    thing due (a lease check, a ping, the request's deadline), not every 50 ms."""
    k = kernel()
    k.peer_message(m.NodePing(from_node="b"), 0.0)
    addr = b"app1"
    k.app_message(addr, m.Register(app="x", qubits=1), 0.0)
    assert k.next_deadline(0.0) == pytest.approx(1.0)  # its lease, and nothing else
    k.app_message(addr, m.Heartbeat(), 0.6)
    # (later than 1.6: the threshold grows with the gaps seen, see Liveness)
    assert k.next_deadline(0.6) == k.procs.leases.next_deadline() > 1.6
    req = m.EprRequest(
        req=1, remote_node="b", remote_app="y", role="create", kind="M", timeout_s=0.4
    )
    k.app_message(addr, req, 0.7)
    assert k.net.next_deadline() == pytest.approx(1.1)  # b never accepts by then
    k.handle_timer(0.7)  # (asks b at once)
    k.peer_message(m.NodePing(from_node="b"), 0.71)
    assert k.next_deadline(0.75) == pytest.approx(1.1)
    k.handle_timer(1.1)  # the proposal's deadline: the request fails
    assert not k.net.busy()


def test_a_kernel_timer_runs_at_most_every_tick() -> None:
    """A deadline that has passed and stays (a round waiting for a busy device) is
    acted on at most every ``TICK_S``: never a busy loop."""
    from qnodeos.kernel.core import TICK_S

    k = kernel()
    k.app_message(b"app1", m.Register(app="x", qubits=1), 0.0)
    k.handle_timer(5.0)  # (the app's lease is long past: it is failed)
    k.app_message(b"app2", m.Register(app="z", qubits=1), 5.0)
    k.procs.leases.last_heard[str(k.procs.by_addr[b"app2"].app_id)] = 0.0
    assert k.next_deadline(5.0) == pytest.approx(5.0 + TICK_S)
