"""Who may do what to a circuit (sans-IO, a repeater's kernel alone): a setup only from
the path's first node, for a path of real links through us; a teardown only from a node
on the path; circuits per peer capped; a circuit's qubits freed when it ends."""

from __future__ import annotations

import pytest

import qnodeos.kernel.circuit as circuit
import qnodeos.kernel.circuits as circuits
from qnodeos.kernel.circuits import REPEATER_QUBITS
from qnodeos.kernel.core import Kernel
from qnodeos.kernel.outputs import ToNode
from qnodeos.kernel.processes import App
from qnodeos.lang import messages as m
from tests.conftest import network

NET = network(
    """
[nodes.a]
device = "generic"
[nodes.r]
device = "generic"
qubits = 16
[nodes.b]
device = "generic"
[nodes.x]
device = "generic"
[[links]]
nodes = ["a", "r"]
model = "perfect"
cycle_ns = 1000
[[links]]
nodes = ["r", "b"]
model = "perfect"
cycle_ns = 1000
[[links]]
nodes = ["x", "r"]
model = "perfect"
cycle_ns = 1000
"""
)


def repeater() -> Kernel:
    return Kernel(
        node="r",
        spec=NET.nodes["r"].device,
        peers=["a", "b", "x"],
        links=NET.links_of("r"),
        topology=[lk.nodes for lk in NET.links],
    )


def end(node: str) -> Kernel:
    """The kernel of end node ``node`` (a or b) of NET."""
    others = [n for n in ("a", "r", "b", "x") if n != node]
    return Kernel(
        node=node,
        spec=NET.nodes[node].device,
        peers=others,
        links=NET.links_of(node),
        topology=[lk.nodes for lk in NET.links],
    )


def setup(n: int, path: list[str]) -> m.NetSetup:
    return m.NetSetup(circuit=n, path=path, purpose="a/p|b/q", kind="K", number=1, timeout_s=5)


def test_setups_only_from_the_first_node_over_real_links() -> None:
    k = repeater()
    for frm, path in [
        ("x", ["a", "r", "b"]),  # not the path's first node
        ("a", ["a", "b", "r"]),  # a-b is no link
        ("a", ["a", "r", "a"]),  # a loop
        ("a", ["a", "x", "b"]),  # not through us
    ]:
        assert k.peer_message(m.Net(from_node=frm, msg=setup(1, path)), 0.0) == []
    assert k.net.circuits == {}
    assert k.net.ignored == 4
    k.peer_message(m.Net(from_node="a", msg=setup(1, ["a", "r", "b"])), 0.0)
    assert list(k.net.circuits) == [("a", 1)]
    # the same circuit again is not a second one
    k.peer_message(m.Net(from_node="a", msg=setup(1, ["a", "r", "b"])), 0.0)
    assert len(k.net.circuits) == 1


def test_teardown_only_from_the_path_and_it_frees_the_qubits() -> None:
    k = repeater()
    k.peer_message(m.Net(from_node="a", msg=setup(1, ["a", "r", "b"])), 0.0)
    (app,) = [a for a in k.memory.quota if a < 0]
    assert k.memory.quota[app] == REPEATER_QUBITS
    down = m.NetTeardown(origin="a", circuit=1, reason="forged")
    k.peer_message(m.Net(from_node="x", msg=down), 0.0)
    assert ("a", 1) in k.net.circuits
    k.peer_message(m.Net(from_node="b", msg=down), 0.0)
    assert k.net.circuits == {} and app not in k.memory.quota
    assert not k.net.listening and not k.net.wants  # its link requests ended too


def refused(out: list[object]) -> set[str]:
    """The nodes told that a setup was refused."""
    return {
        o.node
        for o in out
        if isinstance(o, ToNode)
        and isinstance(o.msg, m.Net)
        and isinstance(o.msg.msg, m.NetTeardown)
    }


def test_circuits_are_capped_by_qubits_and_per_peer(monkeypatch: pytest.MonkeyPatch) -> None:
    k = repeater()
    for i in range(16 // REPEATER_QUBITS):  # each reserves its qubits
        out = k.peer_message(m.Net(from_node="a", msg=setup(i + 1, ["a", "r", "b"])), 0.0)
        assert refused(out) == set()
    assert len(k.net.circuits) == 8
    # no qubits left: the next one waits for a circuit to end (not past its timeout)
    out = k.peer_message(m.Net(from_node="a", msg=setup(99, ["a", "r", "b"])), 0.0)
    assert len(k.net.circuits) == 8 and refused(out) == set()
    assert list(k.net.qubit_waits) == [("a", 99)]
    down = m.NetTeardown(origin="a", circuit=1, reason="failed")
    k.peer_message(m.Net(from_node="b", msg=down), 1.0)
    assert ("a", 99) in k.net.circuits and not k.net.qubit_waits
    out = k.peer_message(m.Net(from_node="a", msg=setup(100, ["a", "r", "b"])), 2.0)
    assert list(k.net.qubit_waits) == [("a", 100)]
    out = k.handle_timer(2.0 + 5.0)  # its timeout passed: refused, both ends told
    told = {
        o.node
        for o in out
        if isinstance(o, ToNode)
        and isinstance(o.msg, m.Net)
        and isinstance(o.msg.msg, m.NetTeardown)
        and o.msg.msg.circuit == 100
    }
    assert told == {"a", "b"} and not k.net.qubit_waits
    monkeypatch.setattr(circuits, "MAX_CIRCUITS_PER_PEER", 3)
    k = repeater()
    for i in range(4):
        out = k.peer_message(m.Net(from_node="a", msg=setup(i + 1, ["a", "r", "b"])), 0.0)
    assert len(k.net.circuits) == 3 and refused(out) == {"a", "b"}
    # another node's circuits are not held back by a's
    assert (
        refused(k.peer_message(m.Net(from_node="x", msg=setup(1, ["x", "r", "b"])), 0.0)) == set()
    )


def test_an_end_takes_swap_records_only_from_the_repeater_they_name() -> None:
    """At the creating end: a record from a node that is not on the path, or from
    another node than the repeater at its index, is dropped and counted; the
    repeater's own is kept (until the pair's story is whole)."""
    k = end("a")
    addr = b"app"
    k.app_message(addr, m.Register(app="app", qubits=1), 0.0)
    req = m.EprRequest(req=1, remote_node="b", remote_app="q", role="create", kind="M")
    out = k.app_message(addr, req, 0.0)
    setups = [o for o in out if isinstance(o, ToNode) and isinstance(o.msg, m.Net)]
    assert {o.node for o in setups} == {"r", "b"}  # the path a - r - b, set up
    (key,) = k.net.circuits
    c = k.net.circuits[key]
    rec = m.NetSwapped(origin="a", circuit=key[1], index=1, left=5, right=6, m1=0, m2=1)
    for frm in ("x", "b"):
        assert k.peer_message(m.Net(from_node=frm, msg=rec), 0.0) == []
    assert c.records == {} and k.net.ignored == 2
    k.peer_message(m.Net(from_node="r", msg=rec), 0.0)
    assert list(c.records) == [(1, 5)]


def test_the_receiving_end_keeps_records_that_come_before_its_app_asks() -> None:
    """The setup waits for the app; the repeater's swap records that come meanwhile are
    kept and, once the app asks, checked (a forged one is dropped) and used; a circuit
    that fails before its app asks takes its setup and its records with it."""
    k = end("b")
    path = ["a", "r", "b"]
    k.peer_message(m.Net(from_node="a", msg=setup(1, path)), 0.0)
    assert k.net.circuits == {} and list(k.net.setups) == ["a/p|b/q"]
    rec = m.NetSwapped(origin="a", circuit=1, index=1, left=5, right=6, m1=0, m2=1)
    for frm in ("x", "r"):
        assert k.peer_message(m.Net(from_node=frm, msg=rec), 0.0) == []
    assert k.net.early_records == 2
    addr = b"app"
    k.app_message(addr, m.Register(app="q", qubits=1), 0.0)
    req = m.EprRequest(req=1, remote_node="a", remote_app="p", role="recv", kind="K", qubits=[0])
    k.app_message(addr, req, 0.0)
    c = k.net.circuits[("a", 1)]
    assert list(c.records) == [(1, 6)] and k.net.ignored == 1  # x's was forged
    assert not k.net.early and k.net.early_records == 0
    # circuit 2 fails (r says so) while its setup waits: setup and records go
    k.peer_message(m.Net(from_node="a", msg=setup(2, path)), 0.0)
    rec2 = m.NetSwapped(origin="a", circuit=2, index=1, left=7, right=8, m1=0, m2=0)
    k.peer_message(m.Net(from_node="r", msg=rec2), 0.0)
    assert k.net.early_records == 1
    down = m.NetTeardown(origin="a", circuit=2, reason="failed")
    k.peer_message(m.Net(from_node="r", msg=down), 0.0)
    assert not k.net.setups and not k.net.early and k.net.early_records == 0


def test_one_node_flooding_early_records_cannot_evict_anothers() -> None:
    """Records for circuits that are not open here are kept up to a share per sender:
    x sending records for made-up circuits fills its own share, and then is dropped;
    r's early record for a real circuit stays, and is used when the app asks."""
    k = end("b")
    path = ["a", "r", "b"]
    k.peer_message(m.Net(from_node="a", msg=setup(1, path)), 0.0)
    rec = m.NetSwapped(origin="a", circuit=1, index=1, left=5, right=6, m1=0, m2=1)
    k.peer_message(m.Net(from_node="r", msg=rec), 0.0)
    for n in range(100, 100 + circuit.EARLY_RECORDS):  # more than everyone's cap
        fake = m.NetSwapped(origin="a", circuit=n, index=1, left=1, right=2, m1=0, m2=0)
        k.peer_message(m.Net(from_node="x", msg=fake), 0.0)
    assert k.net.early_from == {"r": 1, "x": circuit.EARLY_PER_SENDER}
    assert k.net.early_records == 1 + circuit.EARLY_PER_SENDER
    addr = b"app"
    k.app_message(addr, m.Register(app="q", qubits=1), 0.0)
    req = m.EprRequest(req=1, remote_node="a", remote_app="p", role="recv", kind="K", qubits=[0])
    k.app_message(addr, req, 0.0)
    assert list(k.net.circuits[("a", 1)].records) == [(1, 6)]  # r's record was kept
    assert k.net.early_from == {"x": circuit.EARLY_PER_SENDER}


def test_a_setup_names_only_its_own_ends_apps() -> None:
    """x cannot pose as b to an app on r: a setup whose apps are not at the ends of its
    path is ignored, so r's app asking b for pairs is never joined to x's circuit, and
    its plain listen on the b link stays where it is."""
    k = repeater()
    k.memory.open(1, 4)
    app = App(app_id=1, name="rq", addr=b"rq", priority=0, quota=4)
    listen = m.EprRequest(
        req=1, remote_node="b", remote_app="bq", role="recv", kind="M", number=3, timeout_s=30
    )
    k.net.request(app, listen, 0.0)
    assert list(k.net.listening) == ["b/bq|r/rq"]
    forged = m.NetSetup(
        circuit=7, path=["x", "r"], purpose="b/bq|r/rq", kind="M", number=3,
        timeout_s=1000.0, distill="dejmps", rounds=1,
    )  # fmt: skip
    assert k.peer_message(m.Net(from_node="x", msg=forged), 0.0) == []
    assert k.net.ignored == 1 and not k.net.setups and not k.net.e2e_listening
    assert list(k.net.listening) == ["b/bq|r/rq"]
    assert "b/bq|r/rq" in k.net.egps["b"].listening
    # the same from a node on a real path, with its own app named, is taken
    mine = m.NetSetup(
        circuit=8, path=["x", "r"], purpose="r/rq|x/xq", kind="M", number=3,
        timeout_s=1000.0, distill="dejmps", rounds=1,
    )  # fmt: skip
    k.peer_message(m.Net(from_node="x", msg=mine), 0.0)
    assert list(k.net.setups) == ["r/rq|x/xq"]
