"""The quantum process's sans-IO server, two of them wired in memory: heralding at the
link's first node, state groups moving between processes, and bad peer input."""

from __future__ import annotations

import math
from collections import deque

import numpy as np
import pytest

from qnodeos.config.network import LinkConfig, NodeConfig
from qnodeos.hardware.params import generic
from qnodeos.lang import codec
from qnodeos.lang import messages as m
from qnodeos.netlink.models import LinkModel, Perfect
from qnodeos.qdevice.server import (
    STATION_SILENT_S,
    Cancel,
    Out,
    QDeviceServer,
    ToKernel,
    ToPeer,
)


def node(name: str, seed: int) -> NodeConfig:
    return NodeConfig(
        name=name,
        device=generic(3),
        speed=math.inf,
        seed=seed,
        app_endpoint="",
        qdevice_endpoint="",
        peer_endpoint="",
    )


class Wire:
    """alice (owner: hosts the station) and bob; delivers everything in order."""

    def __init__(self, model: LinkModel | None = None, seed: int = 1) -> None:
        link = LinkConfig(nodes=("alice", "bob"), model=model or Perfect(cycle_ns=100), seed=seed)
        self.q = {
            n: QDeviceServer(node(n, seed + i), [link]) for i, n in enumerate(("alice", "bob"))
        }
        self.replies: dict[str, list[m.FromDevice]] = {"alice": [], "bob": []}
        self.enc, self.dec = codec.to_device(), codec.from_device()
        self.seq = 0
        self.peer_messages = 0
        self.hold = False  # keep messages between the processes in ``held``
        self.held: list[ToPeer] = []
        for n in self.q:  # each quantum process's classical process says hello first
            self.send(n, m.Ping(seq=0))
            self.replies[n].clear()

    def run(self, at: str, outs: list[Out]) -> None:
        queue = [(at, o) for o in outs]
        while queue:
            here, o = queue.pop(0)
            if isinstance(o, Cancel):
                continue
            if isinstance(o, ToKernel):
                self.replies[here].append(self.dec.decode(o.frames[1]))
            elif self.hold:
                self.held.append(o)
            else:
                self.peer_messages += 1
                queue += [(o.node, x) for x in self.q[o.node].peer_message(o.data, 0.0, 0.0)]

    def release(self) -> None:
        self.hold, held, self.held = False, self.held, []
        for o in held:
            self.run(o.node, [o])

    def send(self, at: str, msg: m.ToDevice) -> None:
        self.run(at, self.q[at].handle([b"k", self.enc.encode(msg)], 0.0, 0.0))

    def entangle(
        self,
        key: str,
        recipe: list[list[m.PhysOp]] | None = None,
        qubit: int = 0,
        pairs: int = 1,
    ) -> None:
        for n in ("bob", "alice"):
            self.seq += 1
            peer = "alice" if n == "bob" else "bob"
            self.send(
                n,
                m.Entangle(
                    seq=self.seq,
                    peer=peer,
                    key=key,
                    qubits=[qubit],
                    max_attempts=10 * pairs,
                    expires_s=60.0,
                    pairs=pairs,
                    recipes=[recipe] if recipe else [],
                ),
            )

    def measure(self, at: str, q: int = 0) -> int:
        self.seq += 1
        self.send(at, m.DeviceRequest(seq=self.seq, ops=[m.PhysOp("meas", (q,))]))
        reply = self.replies[at].pop()
        assert isinstance(reply, m.DeviceReply) and reply.error is None, reply
        return reply.outcomes[0]


def test_a_herald_reaches_both_ends_and_the_pair_lives_at_the_first_node() -> None:
    w = Wire()
    w.entangle("r1")
    (a,), (b,) = w.replies["alice"], w.replies["bob"]
    assert isinstance(a, m.EntangleDone) and isinstance(b, m.EntangleDone)
    assert a.pairs == b.pairs and [p.seq for p in a.pairs] == [1] and a.at_ns == b.at_ns
    alice, bob = w.q["alice"], w.q["bob"]
    assert bob.away == {0: "alice"} and ("bob", 0) in alice.groups.ghosts
    rho = alice.device.reg.density_matrix([0, alice.groups.ghosts[("bob", 0)]])
    assert np.allclose(rho, np.outer([1, 0, 0, 1], [1, 0, 0, 1]) / 2)


@pytest.mark.parametrize("first", ["alice", "bob"])
def test_measuring_either_half_first_gives_correlated_outcomes(first: str) -> None:
    """bob measuring first pulls the group over; alice measuring first sends bob's half
    home. Either way the Z outcomes of Phi+ agree, and nothing is left away."""
    seen = set()
    for seed in range(12):
        w = Wire(seed=seed)
        w.entangle("r")
        second = "bob" if first == "alice" else "alice"
        x = w.measure(first)
        y = w.measure(second)
        assert x == y
        seen.add(x)
        assert w.q["alice"].away == {} and w.q["bob"].away == {}
        assert w.q["alice"].groups.ghosts == {} and w.q["bob"].groups.ghosts == {}
    assert seen == {0, 1}


def test_ops_after_the_herald_run_at_once_at_both_ends() -> None:
    w = Wire()
    meas = [[m.PhysOp("meas", (0,))]] * 4
    w.entangle("r", recipe=meas)
    (a,), (b,) = w.replies["alice"], w.replies["bob"]
    assert isinstance(a, m.EntangleDone) and isinstance(b, m.EntangleDone)
    assert [p.outcomes for p in a.pairs] == [p.outcomes for p in b.pairs]
    assert len(a.pairs[0].outcomes) == 1
    assert w.q["bob"].away == {}  # alice measured first: bob's half came with the round
    assert w.peer_messages == 2  # the attempt and the answer: no state group moved


def test_a_round_of_many_measured_pairs_costs_one_message_each_way() -> None:
    w = Wire()
    meas = [[m.PhysOp("meas", (0,))]] * 4
    w.entangle("r", recipe=meas, pairs=200)
    (a,), (b,) = w.replies["alice"], w.replies["bob"]
    assert isinstance(a, m.EntangleDone) and isinstance(b, m.EntangleDone)
    assert len(a.pairs) == len(b.pairs) == 200 and w.peer_messages == 2
    assert [p.seq for p in a.pairs] == [p.seq for p in b.pairs] == list(range(1, 201))
    # Phi+ measured in Z at both ends: outcomes agree pair by pair, and vary
    assert [p.outcomes for p in a.pairs] == [p.outcomes for p in b.pairs]
    assert {p.outcomes[0] for p in a.pairs} == {0, 1}
    assert w.q["alice"].groups.ghosts == {} and w.q["bob"].away == {}


def test_a_bad_state_group_from_a_peer_is_dropped_and_counted() -> None:
    w = Wire()
    w.entangle("r")
    bob = w.q["bob"]
    before = bob.device.reg.density_matrix([1])
    t = b"t" * 8  # a custody token
    bad = [
        m.QGroup(frm="alice", qubits=[("bob", 0)], rho=b"\x00" * 10, tokens=[t]),  # size
        m.QGroup(frm="alice", qubits=[("bob", 1)], rho=b"\x00" * 64, tokens=[t]),  # not away
        m.QGroup(frm="alice", qubits=[("bob", 0), ("bob", 0)], rho=b"\x00" * 256, tokens=[t] * 2),
    ]
    for msg in bad:
        assert bob.peer_message(codec.qdevice_peer().encode(msg), 0.0, 0.0) == []
    assert bob.peer_message(b"\x93garbage", 0.0, 0.0) == []
    assert bob.bad.total == 4
    assert bob.away == {0: "alice"} and np.allclose(bob.device.reg.density_matrix([1]), before)


def _round_end(bob: QDeviceServer, until: float, alice_pings: bool) -> tuple[float, m.EntangleDone]:
    """Tick bob's quantum process every 50 ms (alice pinging or silent) until its round
    ends; when, and how."""
    ping = codec.qdevice_peer().encode(m.QPing(frm="alice"))
    for i in range(1, int(until / 0.05) + 1):
        now = 0.05 * i
        if alice_pings and i % 5 == 0:
            bob.peer_message(ping, 0.0, now)
        for out in bob.timer(0.0, now):
            if isinstance(out, ToKernel):
                reply = codec.from_device().decode(out.frames[1])
                assert isinstance(reply, m.EntangleDone)
                return now, reply
    raise AssertionError("the round never ended")


def test_a_silent_station_ends_the_other_ends_round() -> None:
    bob = Wire().q["bob"]
    req = m.Entangle(seq=1, peer="alice", key="r", qubits=[0], max_attempts=5, expires_s=10.0)
    outs = bob.handle([b"k", codec.to_device().encode(req)], 0.0, 0.0)
    assert [type(o) for o in outs] == [ToPeer]  # the attempt, to alice's station (lost)
    bob.peer_message(codec.qdevice_peer().encode(m.QPing(frm="alice")), 0.0, 0.0)
    # alice's quantum process says nothing more (killed): bob gives up within 1.5 s
    when, reply = _round_end(bob, 5.0, alice_pings=False)
    assert 1.5 < when <= 1.6 and reply.pairs == []
    assert "station in 'alice'" in reply.reason and "stopped answering" in reply.reason
    assert bob.rounds.active == {}


def test_a_station_that_never_answers_a_live_peer_still_ends_the_round() -> None:
    bob = Wire().q["bob"]
    req = m.Entangle(seq=1, peer="alice", key="r", qubits=[0], max_attempts=5, expires_s=10.0)
    bob.handle([b"k", codec.to_device().encode(req)], 0.0, 0.0)
    when, reply = _round_end(bob, 30.0, alice_pings=True)
    assert 10.0 + STATION_SILENT_S < when <= 10.0 + STATION_SILENT_S + 0.1
    assert "station in 'alice'" in reply.reason and "did not answer" in reply.reason


def test_entangle_with_a_node_without_a_link_is_refused() -> None:
    w = Wire()
    req = m.Entangle(seq=9, peer="carol", key="k", qubits=[0], max_attempts=1, expires_s=1)
    w.send("alice", req)
    (r,) = w.replies["alice"]
    assert isinstance(r, m.EntangleDone) and r.error == "alice has no quantum link to 'carol'"


def test_nv_carbons_dephase_per_entanglement_attempt() -> None:
    """Kalb et al.: each attempt keeps a fraction exp(-(dw*tau)^2/2) of a stored carbon's
    coherence (dw = 2pi * 77 kHz, tau = 163 ns); the electron itself is re-initialised."""
    from qnodeos.hardware.params import nv
    from qnodeos.qdevice.device import QuantumDevice

    dev = QuantumDevice(nv(carbons=1), np.random.default_rng(1))
    c = math.exp(-((2 * math.pi * 77e3 * 163e-9) ** 2) / 2)
    assert c == pytest.approx(0.99689, abs=1e-5)
    dev.reg.apply(np.kron(*(2 * [np.array([[1, 1], [1, -1]]) / math.sqrt(2)])), [1])  # |+>
    dev.attempted(500, comm=0)
    dev.decohere([1], 0.0)  # no time passed: only the attempts
    rho = dev.reg.density_matrix([1])
    assert rho[0, 1].real == pytest.approx(0.5 * c**500, rel=1e-9)
    assert rho[0, 0].real == pytest.approx(0.5)


@pytest.mark.parametrize("bobs_pull_first", [False, True])
def test_two_processes_each_waiting_for_the_others_group_both_finish(
    bobs_pull_first: bool,
) -> None:
    """alice needs the group bob holds and bob the one alice holds, at the same time
    (a CNOT across two pairs at each end). The smaller name is served first and the
    other's pull waits until it is done: no deadlock, no ping-pong, right physics."""
    for seed in range(6):
        w = Wire(seed=seed)
        w.entangle("r1", qubit=0)
        w.entangle("r2", qubit=1)
        w.send("bob", m.DeviceRequest(seq=90, ops=[m.PhysOp("x", (0,)), m.PhysOp("x", (0,))]))
        assert w.q["bob"].away == {1: "alice"}  # bob holds pair 1's group, alice pair 2's
        w.hold = True
        cnot = [m.PhysOp("cnot", (0, 1))]
        w.send("alice", m.DeviceRequest(seq=91, ops=cnot))
        w.send("bob", m.DeviceRequest(seq=92, ops=cnot))
        assert w.q["alice"].wait is not None and w.q["bob"].wait is not None
        assert [o.node for o in w.held] == ["bob", "alice"]  # alice's pull, then bob's
        if bobs_pull_first:
            w.held.reverse()
            w.hold = False
            w.run("alice", [w.held.pop(0)])
            assert len(w.q["alice"].deferred) == 1  # alice waits too and bob > alice
            w.hold = True
        w.release()
        assert w.q["alice"].wait is None and w.q["bob"].wait is None
        assert w.q["alice"].deferred == [] and w.q["bob"].deferred == []
        done = [r for n in ("alice", "bob") for r in w.replies[n] if getattr(r, "seq", 0) >= 91]
        assert len(done) == 2 and all(
            isinstance(r, m.DeviceReply) and r.error is None for r in done
        )
        # CNOT at both ends maps Phi+ x Phi+ to itself: Z outcomes agree pair by pair.
        for q in (0, 1):
            assert w.measure("alice", q) == w.measure("bob", q)


def test_a_message_whose_key_belongs_to_another_node_is_dropped() -> None:
    # With keys, the sender's identity comes from its CURVE key (``user``), never from
    # the ``frm`` field: mallory (a node of the network) cannot speak for alice.
    w = Wire()
    w.entangle("r")
    bob = w.q["bob"]
    forged = [
        m.QRound(frm="alice", key="x", heralds=[m.QHerald(9, 1, 0.0, 0)], attempts=1,
                 at_ns=0.0, reason="", epoch_ns=0),
        m.QGroup(frm="alice", qubits=[("bob", 0)], rho=b"\x00" * 64, tokens=[b"t" * 8]),
        m.QPull(frm="alice", for_node="mallory", qubit=("bob", 0)),
    ]
    for msg in forged:
        out = bob.peer_message(codec.qdevice_peer().encode(msg), 0.0, 0.0, user="node:mallory")
        assert out == []
    assert bob.bad.total == 3 and bob.away == {0: "alice"}
    # a pull from alice's key, for a qubit of hers, is answered (here: not here)
    pull = m.QPull(frm="alice", for_node="alice", qubit=("alice", 1))
    assert bob.peer_message(codec.qdevice_peer().encode(pull), 0.0, 0.0, user="node:alice")


def test_only_our_classical_process_may_use_the_device() -> None:
    cfg = node("alice", 1)
    q = QDeviceServer(cfg, token="s3cret")
    enc, dec = codec.to_device(), codec.from_device()

    def ask(peer: bytes, msg: m.ToDevice) -> m.FromDevice:
        (out,) = q.handle([peer, enc.encode(msg)], 0.0, 0.0)
        assert isinstance(out, ToKernel)
        return dec.decode(out.frames[1])

    flip = m.DeviceRequest(seq=1, ops=[m.PhysOp("x", (0,))])
    stranger = ask(b"eve", flip)  # before the node said hello
    assert isinstance(stranger, m.ErrorReply) and stranger.code == "not_authorized"
    assert isinstance(ask(b"eve", m.Ping(seq=1, token="guess")), m.ErrorReply)
    assert isinstance(ask(b"node", m.Ping(seq=2, token="s3cret")), m.Pong)
    assert isinstance(ask(b"eve", flip), m.ErrorReply)
    assert isinstance(ask(b"eve", m.Ping(seq=3)), m.ErrorReply)
    assert np.allclose(q.device.reg.density_matrix([0]), np.diag([1, 0]))  # untouched
    assert isinstance(ask(b"node", flip), m.DeviceReply)


def test_an_owner_whose_peer_never_attempts_ends_its_round_and_goes_on() -> None:
    w = Wire()
    alice = w.q["alice"]
    req = m.Entangle(seq=1, peer="bob", key="r", qubits=[0], max_attempts=5, expires_s=1.0)
    w.send("alice", req)  # bob never attempts round r
    assert w.replies["alice"] == []
    w.run("alice", alice.timer(0.0, 1.0))  # the station gives up on bob at the expiry
    (done,) = w.replies["alice"]
    assert isinstance(done, m.EntangleDone) and done.pairs == [] and done.final
    assert "did not attempt" in done.reason and alice.jobs == deque()
    w.replies["alice"].clear()
    w.entangle("r2")  # and the next round runs
    (done,) = w.replies["alice"]
    assert isinstance(done, m.EntangleDone) and len(done.pairs) == 1


def _ask(w: Wire, at: str, key: str, seq: int) -> None:
    peer = "bob" if at == "alice" else "alice"
    req = m.Entangle(seq=seq, peer=peer, key=key, qubits=[0], max_attempts=5, expires_s=1.0)
    w.send(at, req)


def _done(w: Wire, at: str) -> m.EntangleDone:
    (done,) = w.replies[at]
    w.replies[at].clear()
    assert isinstance(done, m.EntangleDone)
    return done


def test_the_other_end_coming_after_its_round_expired_hears_at_once_and_alike() -> None:
    """bob's attempt comes after alice's station gave up waiting for it (bob was
    paused): bob hears at once how the round ended (as alice did: it counts), instead
    of waiting STATION_SILENT_S; both then attempt the same next round."""
    w = Wire()
    _ask(w, "alice", "r1", 1)
    w.run("alice", w.q["alice"].timer(0.0, 1.0))  # the station gives up on bob
    assert "did not attempt" in _done(w, "alice").reason
    _ask(w, "bob", "r1", 2)  # bob, late
    late = _done(w, "bob")
    assert late.pairs == [] and not late.again and "did not attempt" in late.reason
    assert w.q["alice"].rounds.peer_qubits == {} and w.q["bob"].rounds.active == {}
    w.entangle("r2")
    assert len(_done(w, "alice").pairs) == len(_done(w, "bob").pairs) == 1


def test_crossed_rounds_end_at_both_ends_at_once_to_be_attempted_again() -> None:
    w = Wire()
    _ask(w, "alice", "a-round", 1)
    _ask(w, "bob", "b-round", 2)  # the two ends disagree on the round
    for at in ("alice", "bob"):
        done = _done(w, at)
        assert done.again and done.pairs == [] and "different rounds" in done.reason
    assert w.q["alice"].rounds.peer_qubits == {} and w.q["bob"].rounds.active == {}


def test_the_other_ends_lone_attempt_ends_when_the_station_stops_waiting() -> None:
    w = Wire()
    _ask(w, "bob", "r1", 1)  # alice never attempts r1
    assert w.replies["bob"] == []
    w.run("alice", w.q["alice"].timer(0.0, 1.0))  # alice's station gives up on it
    done = _done(w, "bob")
    assert done.pairs == [] and not done.again and "did not attempt" in done.reason
    assert w.q["alice"].rounds.peer_qubits == {} and w.q["bob"].rounds.active == {}


def test_a_paused_station_answers_the_round_the_other_end_attempts_again() -> None:
    """alice's quantum process (the station) stops for a while: bob's round ends when
    alice goes silent, but to be attempted again (not counted); when alice runs again
    she pairs bob's attempt with hers and both ends count the same round, with the
    same pair."""
    w = Wire()
    bob = w.q["bob"]
    bob.peer_message(codec.qdevice_peer().encode(m.QPing(frm="alice")), 0.0, 0.0)
    w.hold = True  # alice is stopped: what bob sends her waits
    _ask(w, "bob", "r1", 1)
    for tick in range(1, 9):  # nothing heard from alice for 1.5 s (bob ticks meanwhile,
        w.run("bob", bob.timer(0.0, 0.2 * tick))  # so the silence is not his own pause)
    first = _done(w, "bob")
    assert first.again and first.pairs == [] and "stopped answering" in first.reason
    _ask(w, "bob", "r1", 2)  # bob's node attempts the same round again
    w.release()  # alice runs again: both of bob's attempts reach her
    req = m.Entangle(seq=3, peer="bob", key="r1", qubits=[0], max_attempts=5, expires_s=60.0)
    w.send("alice", req)
    a, b = _done(w, "alice"), _done(w, "bob")
    assert len(a.pairs) == len(b.pairs) == 1 and a.pairs[0].seq == b.pairs[0].seq
    assert not a.again and not b.again


def _realtime_device() -> QDeviceServer:
    cfg = NodeConfig(
        name="a", device=generic(2), speed=1.0, seed=1,
        app_endpoint="", qdevice_endpoint="", peer_endpoint="",
    )  # fmt: skip
    q = QDeviceServer(cfg, epoch_ns=0)  # device ns = wall s * 1e9
    q.handle([b"k", codec.to_device().encode(m.Ping(seq=0))], 0.0, 0.0)
    return q


def _request(q: QDeviceServer, msg: m.ToDevice, now_ns: float) -> list[Out]:
    return q.handle([b"k", codec.to_device().encode(msg)], now_ns, now_ns / 1e9)


SECOND = m.DeviceRequest(seq=2, ops=[m.PhysOp("init", (0,)), m.PhysOp("meas", (0,))])


def test_an_abort_frees_the_device_for_the_batch_queued_behind() -> None:
    """Issue 21: the second batch ran (in device time) after the aborted one, so its
    reply came 1 s late although the device was free. Now it waits until the device
    is free and runs at once when an Abort frees it."""
    q = _realtime_device()
    first = _request(q, m.DeviceRequest(seq=1, ops=[m.PhysOp("wait", (), 1e9)]), 0.0)
    assert [o.due_ns for o in first if isinstance(o, ToKernel)] == [1e9]
    assert _request(q, SECOND, 1e6) == []  # queued: the device is busy until 1 s
    out = _request(q, m.Abort(seq=1), 2e6)
    assert out[0] == Cancel(1)
    (reply,) = [o for o in out if isinstance(o, ToKernel)]
    assert reply.tag == 2 and 2e6 <= reply.due_ns < 3e6  # not 1 s later


def test_a_batch_queued_behind_a_busy_device_runs_when_it_is_free() -> None:
    q = _realtime_device()
    _request(q, m.DeviceRequest(seq=1, ops=[m.PhysOp("wait", (), 1e9)]), 0.0)
    assert _request(q, SECOND, 1e6) == []
    assert q.next_timer_s() == pytest.approx(1.0)
    (reply,) = [o for o in q.timer(1e9, 1.0) if isinstance(o, ToKernel)]
    assert reply.tag == 2 and reply.due_ns == pytest.approx(1e9 + 200, abs=1)
