"""The sans-IO kernel, driven with a device in the loop: no sockets, no clock."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from qnodeos.config.network import NodeConfig, NodeLimits
from qnodeos.errors import LocalError
from qnodeos.hardware.params import build
from qnodeos.kernel.blocks import SLICE
from qnodeos.kernel.core import Kernel
from qnodeos.kernel.outputs import Out, Resume, ToApp, ToDevice
from qnodeos.kernel.processes import App, Event, State
from qnodeos.kernel.scheduler import Entry, Scheduler
from qnodeos.lang import codec
from qnodeos.lang import messages as m
from qnodeos.lang.text import parse
from qnodeos.qdevice.server import Cancel, QDeviceServer, ToKernel

A, B = b"app-a", b"app-b"


class Harness:
    def __init__(self, kind: str = "generic", qubits: int = 4, **kw: Any) -> None:
        spec = build(kind, qubits)
        self.kernel = Kernel(node="n", spec=spec, **kw)
        cfg = NodeConfig(
            name="n",
            device=spec,
            speed=float("inf"),
            seed=5,
            app_endpoint="",
            qdevice_endpoint="",
            peer_endpoint="",
        )
        self.server = QDeviceServer(cfg)  # the quantum process, without its sockets
        self.device = self.server.device
        self.to_dev, self.from_dev = codec.to_device(), codec.from_device()
        self.inbox: dict[bytes, list[m.NodeToApp]] = {}
        self.requests = 0
        self.resumes = 0
        self.order: list[bytes] = []
        self.now = 0.0
        self.deliver(self.kernel.hello())
        self.held_back: list[m.DeviceReply] = []
        self.hold = False
        self.aborts: list[int] = []

    def deliver(self, outs: list[Out]) -> None:
        while outs:
            out = outs.pop(0)
            if isinstance(out, ToApp):
                self.inbox.setdefault(out.addr, []).append(out.msg)
                continue
            if isinstance(out, Resume):
                self.resumes += 1
                outs += self.kernel.resume()
                continue
            assert isinstance(out, ToDevice)
            msg = out.msg
            if isinstance(msg, m.Ping):
                (pong,) = self.server.handle([b"k", self.to_dev.encode(msg)], 0.0, 0.0)
                assert isinstance(pong, ToKernel)
                reply = self.from_dev.decode(pong.frames[1])
                assert isinstance(reply, m.Pong)
                outs += self.kernel.device_message(reply)
                continue
            if isinstance(msg, m.Abort):
                self.aborts.append(msg.seq)
                (cancel,) = self.server.handle([b"k", self.to_dev.encode(msg)], 0.0, 0.0)
                assert cancel == Cancel(msg.seq)
                continue
            self.requests += 1
            assert self.kernel.current is not None
            self.order.append(self.kernel.current.app.addr)
            (sent,) = self.server.handle([b"k", self.to_dev.encode(msg)], 0.0, 0.0)
            assert isinstance(sent, ToKernel)
            reply = self.from_dev.decode(sent.frames[1])
            assert isinstance(reply, m.DeviceReply)
            if self.hold:
                self.held_back.append(reply)
            else:
                outs += self.kernel.device_message(reply)

    def send(self, addr: bytes, msg: m.AppToNode) -> m.NodeToApp | None:
        self.deliver(self.kernel.app_message(addr, msg, self.now))
        box = self.inbox.get(addr, [])
        return box.pop(0) if box else None

    def register(self, addr: bytes, qubits: int, priority: int = 0) -> m.NodeToApp | None:
        return self.send(addr, m.Register(app=addr.decode(), qubits=qubits, priority=priority))

    def submit(self, addr: bytes, text: str, block: int = 1) -> m.NodeToApp | None:
        return self.send(addr, m.Submit(block=block, sub=parse(text)))


def test_block_runs_and_returns_values() -> None:
    h = Harness()
    assert isinstance(h.register(A, 2), m.Registered)
    r = h.submit(
        A,
        "array out 2\nqalloc Q0\ninit Q0\nx Q0\nmeas Q0 R0\nstore R0 out[1]\n"
        "set R1 7\nret out\nret R1",
    )
    assert isinstance(r, m.BlockDone)
    assert r.values == {"out": [0, 1], "R1": 7}


def test_block_reports_the_device_time_it_took() -> None:
    h = Harness()  # generic: init 100 ns, x 20 ns, measurement 100 ns
    h.register(A, 1)
    r = h.submit(A, "qalloc Q0\ninit Q0\nx Q0\nmeas Q0 R0\nqfree Q0\nwait 1000\nret R0")
    assert isinstance(r, m.BlockDone) and r.device_ns == 100 + 20 + 100 + 1000


def test_a_block_without_mid_circuit_branching_is_one_device_request() -> None:
    h = Harness()
    h.register(A, 1)
    loop = (
        "array out 50\nset R1 0\ntop:\nbge R1 50 @end\nqalloc Q0\ninit Q0\nh Q0\n"
        "meas Q0 R0\nstore R0 out[R1]\nqfree Q0\nadd R1 R1 1\njmp @top\nend:\nret out"
    )
    before = h.requests
    r = h.submit(A, loop)
    assert isinstance(r, m.BlockDone)
    out = r.values["out"]
    assert isinstance(out, list) and len(out) == 50
    assert h.requests - before == 1


def test_branch_on_measurement_waits_for_the_outcome() -> None:
    h = Harness()
    h.register(A, 1)
    prog = "qalloc Q0\ninit Q0\nx Q0\nmeas Q0 R0\nbeq R0 0 @skip\nset R2 5\nskip:\nret R2"
    r = h.submit(A, prog)
    assert isinstance(r, m.BlockDone) and r.values == {"R2": 5}


def test_app_cannot_reach_another_apps_qubits() -> None:
    h = Harness(qubits=2)
    h.register(A, 1)
    h.register(B, 1)
    assert isinstance(h.submit(A, "qalloc Q0\ninit Q0\nx Q0"), m.BlockDone)
    # B names Q0, which is A's *virtual* id: it means nothing for B.
    r = h.submit(B, "meas Q0 R0\nret R0")
    assert isinstance(r, m.BlockFailed) and "Q0 is not allocated by this app" in r.message
    r = h.submit(B, "x Q5")
    assert isinstance(r, m.BlockFailed) and "Q5 is not allocated" in r.message
    # A's qubit is untouched by B's attempts.
    r = h.submit(A, "meas Q0 R0\nret R0")
    assert isinstance(r, m.BlockDone) and r.values == {"R0": 1}


def test_quota_is_reserved_and_enforced() -> None:
    h = Harness(qubits=3)
    h.register(A, 2)
    r = h.register(B, 2)
    assert isinstance(r, m.ErrorReply) and r.code == "quota" and "only 1 of 3" in r.message
    r = h.submit(A, "qalloc Q0\nqalloc Q1\nqalloc Q2")
    assert isinstance(r, m.BlockFailed) and r.code == "quota"
    assert r.held == []  # a failed block releases what it allocated


def test_freed_qubits_are_scrubbed_before_reuse() -> None:
    h = Harness(qubits=1)
    h.register(A, 1)
    h.submit(A, "qalloc Q0\ninit Q0\nx Q0")
    h.send(A, m.Stop())
    h.register(B, 1)
    # B allocates without init: it must not see A's |1>, only a maximally mixed qubit.
    h.submit(B, "qalloc Q0")
    assert np.allclose(h.device.reg.density_matrix([0]), np.eye(2) / 2)


def test_infinite_loop_is_stopped_by_the_budget() -> None:
    h = Harness(budget=1000)
    h.register(A, 1)
    r = h.submit(A, "top:\njmp @top")
    assert isinstance(r, m.BlockFailed) and "instruction budget of 1000 exceeded" in r.message


def test_long_blocks_pause_every_slice_so_the_node_can_serve_others() -> None:
    h = Harness(budget=10 * SLICE)
    h.register(A, 1)
    r = h.submit(A, "top:\njmp @top")
    assert isinstance(r, m.BlockFailed) and "budget" in r.message
    assert h.resumes == 10  # paused after each slice, then the next step exceeds the budget
    assert isinstance(h.submit(A, "set R0 1\nret R0", block=2), m.BlockDone)


@pytest.mark.parametrize(
    "text, words",
    [
        ("div R0 1 0", "div by zero"),
        ("array a 2\nset R1 5\nload R0 a[R1]", "index 5 out of bounds"),
        ("qalloc Q0\nqalloc Q0", "Q0 is already allocated"),
        ("qalloc Q0\nall_rx 0.5", "all_rx is not available"),
        ("set R0 9223372036854775807\nadd R0 R0 1", "overflows 64 bits"),
        ("wait -5", "wait of -5 ns is negative"),
    ],
)
def test_runtime_errors_fail_the_block_not_the_node(text: str, words: str) -> None:
    h = Harness()
    h.register(A, 2)
    r = h.submit(A, text)
    assert isinstance(r, m.BlockFailed) and words in r.message
    assert isinstance(h.submit(A, "set R0 3\nret R0", block=2), m.BlockDone)


def test_messages_before_register_and_twice_register_are_errors() -> None:
    h = Harness()
    r = h.submit(A, "set R0 1")
    assert isinstance(r, m.ErrorReply) and r.code == "not_registered"
    h.register(A, 1)
    r = h.register(A, 1)
    assert isinstance(r, m.ErrorReply) and r.code == "already_registered"


def test_lease_expiry_frees_everything_and_aborts_the_running_block() -> None:
    h = Harness(qubits=2, lease_s=1.0)
    h.register(A, 2)
    h.hold = True  # the device has A's block when A goes silent
    h.submit(A, "qalloc Q0\ninit Q0\nqalloc Q1\ninit Q1")
    assert h.kernel.current is not None
    h.deliver(h.kernel.handle_timer(0.5))
    assert A in h.kernel.procs.by_addr
    h.deliver(h.kernel.handle_timer(1.5))
    assert A not in h.kernel.procs.by_addr and h.kernel.current is None
    assert h.kernel.memory.free == {0, 1} and h.kernel.memory.reserved == 0
    assert h.aborts == [h.held_back[0].seq]  # the device was told to drop it
    # The late reply of the abandoned block is recognised and ignored.
    h.hold = False
    h.deliver(h.kernel.device_message(h.held_back.pop()))
    assert h.kernel.counters.stale_replies == 1
    assert isinstance(h.register(B, 2), m.Registered)


def test_second_block_while_one_is_outstanding_is_refused() -> None:
    h = Harness()
    h.register(A, 1)
    h.hold = True
    h.submit(A, "qalloc Q0\ninit Q0")
    r = h.submit(A, "set R0 1", block=2)
    assert isinstance(r, m.BlockFailed) and r.code == "busy"


@pytest.mark.parametrize(
    "policy, order",
    [("fcfs", [1, 2, 3]), ("priority", [3, 2, 1]), ("edf", [2, 3, 1])],
)
def test_scheduling_policies(policy: str, order: list[int]) -> None:
    s = Scheduler(policy)
    s.push(Entry(seq=1, app_id=1, priority=0, deadline=float("inf"), payload=None))
    s.push(Entry(seq=2, app_id=2, priority=1, deadline=5.0, payload=None))
    s.push(Entry(seq=3, app_id=3, priority=2, deadline=7.0, payload=None))
    got = []
    while (e := s.pop()) is not None:
        got.append(e.app_id)
    assert got == order


def test_priority_policy_picks_the_waiting_high_priority_block_first() -> None:
    h = Harness(qubits=3, policy="priority")
    for addr, prio in [(A, 0), (B, 9), (b"c", 0)]:
        h.register(addr, 1, prio)
    h.hold = True
    h.submit(b"c", "set R0 1\nqalloc Q0\ninit Q0")  # occupies the device
    h.submit(A, "qalloc Q0\ninit Q0")
    h.submit(B, "qalloc Q0\ninit Q0")
    h.hold = False
    h.deliver(h.kernel.device_message(h.held_back.pop()))
    assert h.order == [b"c", B, A]


def test_illegal_lifecycle_event_names_state_and_leaves_it() -> None:
    app = App(1, "x", b"x", 0, 1)
    with pytest.raises(LocalError, match="event 'finish' is not allowed in state 'new'"):
        app.fire(Event.FINISH)
    assert app.state is State.NEW


def test_identity_comes_from_the_key_not_from_the_message() -> None:
    h = Harness()
    # an app's key names it: registering under another name is refused
    h.deliver(h.kernel.app_message(A, m.Register(app="b", qubits=1), 0.0, user="app:a"))
    (refused,) = h.inbox.pop(A)
    assert isinstance(refused, m.ErrorReply) and refused.code == "not_authorized"
    h.deliver(h.kernel.app_message(A, m.Register(app="a", qubits=1), 0.0, user="app:a"))
    assert isinstance(h.inbox.pop(A)[0], m.Registered)
    # another key on a connection with the same address is ignored
    assert h.kernel.app_message(A, m.Stop(), 0.0, user="app:mallory") == []
    assert A in h.kernel.procs.by_addr
    # a node's key names it: a message claiming another sender is dropped, whatever it
    # is (a message for an app, an acknowledgement, a link-layer reject, a goodbye)
    forged: list[m.NodeToNode] = [
        m.Carry(from_node="bob", id=1, from_app="x", to_app="a", data=b"forged"),
        m.CarryAck(from_node="bob", id=1),
        m.Egp(
            from_node="bob",
            msg=m.EgpReject(origin="n", create_id=1, code="OTHER", message="forged"),
        ),
        m.Egp(from_node="bob", msg=m.EgpExpire(seqs=[1, 2], reason="forged")),
        m.NodeBye(from_node="bob", reason="forged"),
    ]
    for msg in forged:
        assert h.kernel.peer_message(msg, 0.0, user="node:mallory") == []
    assert h.kernel.counters.spoofed == 2 + len(forged)


def test_entanglement_in_a_block_refuses_bad_requests_clearly() -> None:
    """Each a clear BlockFailed; the node keeps serving the app's next block."""
    h = Harness(qubits=2)
    h.register(A, 1)

    def submit(text: str, block: int) -> m.NodeToApp | None:  # unchecked: the node checks
        return h.send(A, m.Submit(block=block, sub=parse(text, check=False)))

    # a node this one has no link to
    r = submit("array i 1\nrequest carol c create K 1 qubits=0 ids=i\nepr 0\nepr_wait 0 1", 1)
    assert isinstance(r, m.BlockFailed) and r.code == "epr"
    assert "no quantum link to 'carol'" in r.message
    # a remote state preparation basis that is not one
    r = submit("request bob b create R 2 chosen=XQ\nepr 0", 2)
    assert isinstance(r, m.BlockFailed) and r.code == "invalid"
    assert "chosen bases must be 2 letters from X, Y, Z" in r.message
    # waiting for more pairs than asked, or for a request never started
    r = submit("request bob b create M 2\nepr_wait 0 1", 3)
    assert isinstance(r, m.BlockFailed) and "which was not started" in r.message
    r = submit("request bob b create M 2\nepr 1", 4)
    assert isinstance(r, m.BlockFailed) and "EPR request 1 is not declared" in r.message
    # more qubits than the quota (a post routine allocating one, say)
    r = submit("qalloc Q0\nqalloc Q1", 5)
    assert isinstance(r, m.BlockFailed) and r.code == "quota"
    assert isinstance(h.submit(A, "qalloc Q0\ninit Q0\nmeas Q0 R0\nret R0", block=6), m.BlockDone)


def test_a_readout_waits_for_the_electron_instead_of_moving_another_apps_state() -> None:
    """NV: app A holds the electron; app B reads its carbon out, which needs the
    electron. B's block waits (its process is WAITING on "qubit") while A's state stays
    where it is; when A frees the electron, B's block goes on, and nothing was moved."""
    h = Harness(kind="nv", qubits=3)
    h.register(A, 1)
    h.register(B, 1)
    assert isinstance(h.submit(A, "qalloc Q0\ninit Q0\nx Q0"), m.BlockDone)
    assert h.kernel.memory.phys(1, 0) == 0  # A holds the electron
    sent: list[m.PhysOp] = []
    real = h.server.handle

    def spy(frames: list[bytes], now_ns: float, now_s: float) -> Any:
        msg = h.to_dev.decode(frames[1])
        if isinstance(msg, m.DeviceRequest):
            sent.extend(msg.ops)
        return real(frames, now_ns, now_s)

    h.server.handle = spy  # type: ignore[method-assign]
    assert h.submit(B, "qalloc Q0\ninit Q0\nh Q0\nmeas Q0 R0\nret R0", block=2) is None
    app_b = h.kernel.procs.by_addr[B]
    assert app_b.state is State.WAITING and app_b.waiting_on == "qubit"
    done = h.submit(A, "meas Q0 R0\nqfree Q0\nret R0", block=3)
    assert isinstance(done, m.BlockDone) and done.values == {"R0": 1}
    h.deliver(h.kernel.handle_timer(h.now))
    (reply,) = h.inbox[B]
    assert isinstance(reply, m.BlockDone) and reply.values["R0"] in (0, 1)
    moves = [op for op in sent if op.op in ("crx", "cry")]
    # B's readout of its carbon: one controlled rotation to copy it onto the free
    # electron, none to move A's state out of the electron and back
    assert len(moves) <= 2, moves


def test_a_readout_moves_another_apps_state_after_waiting_starvation_s() -> None:
    h = Harness(kind="nv", qubits=3, limits=NodeLimits(starvation_s=0.5))
    h.register(A, 1)
    h.register(B, 1)
    h.submit(A, "qalloc Q0\ninit Q0\nx Q0")
    assert h.submit(B, "qalloc Q0\ninit Q0\nmeas Q0 R0\nret R0", block=2) is None
    h.now = 0.6  # A never frees the electron
    h.deliver(h.kernel.handle_timer(h.now))
    (reply,) = h.inbox[B]
    assert isinstance(reply, m.BlockDone)  # after the wait, A's state was moved after all


def test_apps_on_a_node_are_capped_with_a_clear_refusal() -> None:
    """Each connected app costs the node memory and a lease (issue: 2,000 live sessions
    grew the node by 29 KB each): beyond max_apps a Register is refused, and a place
    freed by an app that leaves is available again."""
    h = Harness(limits=NodeLimits(max_apps=3))
    addrs = [f"app-{i}".encode() for i in range(4)]
    for a in addrs[:3]:
        assert isinstance(h.register(a, 0), m.Registered)
    r = h.register(addrs[3], 0)
    assert isinstance(r, m.ErrorReply) and r.code == "too_many_apps"
    assert "max_apps" in r.message and "3 apps" in r.message
    assert isinstance(h.send(addrs[0], m.Stop()), m.Stopped)
    assert isinstance(h.register(addrs[3], 0), m.Registered)
