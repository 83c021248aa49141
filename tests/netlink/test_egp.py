"""Two EGP endpoints and a heralding station wired in memory (h11's ConnectionPair
style): the events each end sees, for each kind of request and failure."""

from __future__ import annotations

import math

import numpy as np
import pytest

from qnodeos.errors import LocalError
from qnodeos.lang.messages import EgpRequest
from qnodeos.netlink.egp import (
    EGP,
    Accepted,
    Code,
    Create,
    Err,
    Ev,
    Ok,
    Out,
    Request,
    Round,
    ToLocal,
    ToPeer,
)
from qnodeos.netlink.models import Depolarise, LinkModel, Perfect
from qnodeos.netlink.station import Attempt, HeraldingStation


class Link:
    """alice <-> bob with a station; delivers every message in order. ``now`` is wall
    seconds; the devices run at speed 1, so device ns = now * 1e9."""

    def __init__(self, model: LinkModel, seed: int = 1) -> None:
        rng = np.random.default_rng(seed)
        self.egp = {
            n: EGP(node=n, peer=p, model=model, rng=np.random.default_rng(seed + i))
            for i, (n, p) in enumerate([("alice", "bob"), ("bob", "alice")])
        }
        self.station = HeraldingStation(
            link="alice-bob", nodes=("alice", "bob"), model=model, rng=rng
        )
        self.events: dict[str, list[Ok | Err | Accepted]] = {"alice": [], "bob": []}
        self.peer_messages = 0
        self.now = 0.0

    def run(self, node: str, outs: list[Out]) -> None:
        queue = [(node, o) for o in outs]
        while queue:
            at, out = queue.pop(0)
            if isinstance(out, ToLocal):
                self.events[at].append(out.event)
            elif isinstance(out, ToPeer):
                self.peer_messages += 1
                other = "bob" if at == "alice" else "alice"
                queue += [(other, o) for o in self.egp[other].peer_message(out.msg, self.now)]
            else:
                assert isinstance(out, Round)
                att = Attempt(
                    node=at,
                    key=out.key,
                    start_ns=self.now * 1e9,
                    max_attempts=out.max_attempts,
                    expires_s=out.expires_s,
                )
                for to in self.station.receive(att):
                    self.now = max(self.now, getattr(to.msg, "at_ns", 0.0) / 1e9)
                    queue += [
                        (to.node, o) for o in self.egp[to.node].station_message(to.msg, self.now)
                    ]

    def create(self, node: str, req: Create) -> int:
        cid, outs = self.egp[node].create(req, self.now)
        self.run(node, outs)
        return cid

    def listen(self, node: str, purpose: str, kind: str = "K", number: int = 1) -> None:
        self.run(node, self.egp[node].listen(purpose, kind, number, self.now))


def oks(events: list[Ok | Err | Accepted]) -> list[Ok]:
    return [e for e in events if isinstance(e, Ok)]


def test_create_and_keep_delivers_the_same_pairs_at_both_ends() -> None:
    link = Link(Depolarise(fidelity=0.85, p_success=0.1, cycle_ns=1000))
    link.listen("bob", "p7", "K", 3)
    link.create("alice", Create(remote="bob", purpose="p7", number=3, min_fidelity=0.8))
    a, b = oks(link.events["alice"]), oks(link.events["bob"])
    assert len(a) == len(b) == 3 and not [e for e in link.events["alice"] if isinstance(e, Err)]
    for x, y in zip(a, b, strict=True):
        assert x.ent_id == y.ent_id and x.ent_id[:2] == ("alice", "bob")
        assert x.bell_index == y.bell_index and x.at_ns == y.at_ns
        assert x.goodness == 0.85 and x.attempts >= 1
    assert [x.pair for x in a] == [0, 1, 2]
    assert len({x.ent_id for x in a}) == 3
    assert link.egp["alice"].requests == {} and link.egp["bob"].requests == {}
    assert any(isinstance(e, Accepted) for e in link.events["bob"])


def test_unreachable_fidelity_is_refused_before_anything_is_sent() -> None:
    link = Link(Depolarise(fidelity=0.8, p_success=0.1, cycle_ns=1000))
    link.listen("bob", "p")
    link.create("alice", Create(remote="bob", purpose="p", min_fidelity=0.9))
    (err,) = link.events["alice"]
    assert isinstance(err, Err) and err.code is Code.UNSUPP
    assert "0.9 is above what the depolarise link delivers (0.8000)" in err.message
    assert link.peer_messages == 0 and link.events["bob"] == []


def test_request_waits_for_the_receiving_app_until_its_deadline() -> None:
    link = Link(Perfect(cycle_ns=100))
    link.create("alice", Create(remote="bob", purpose="p3", max_time_s=2.0))
    assert link.events["alice"] == [] and len(link.egp["bob"].waiting) == 1
    link.listen("bob", "p3")  # the app on bob asks: the waiting request goes ahead
    assert len(oks(link.events["alice"])) == len(oks(link.events["bob"])) == 1
    assert link.egp["bob"].waiting == {}


def test_nobody_asking_times_out_and_the_held_request_is_dropped() -> None:
    link = Link(Perfect(cycle_ns=100))
    link.create("alice", Create(remote="bob", purpose="p3", max_time_s=2.0))
    link.run("alice", link.egp["alice"].handle_timer(2.0))
    link.run("bob", link.egp["bob"].handle_timer(2.0))
    (err,) = link.events["alice"]
    assert isinstance(err, Err) and err.code is Code.TIMEOUT and "did not accept" in err.message
    assert link.egp["bob"].waiting == {} and link.egp["alice"].requests == {}


def test_receiver_asking_for_other_pairs_rejects() -> None:
    link = Link(Perfect(cycle_ns=100))
    link.listen("bob", "p", "M", 5)
    link.create("alice", Create(remote="bob", purpose="p", number=2))
    (err,) = link.events["alice"]
    assert isinstance(err, Err) and err.code is Code.REJECTED
    assert "asked for 5 pair(s) of type M, not 2 of type K" in err.message


def test_timeout_is_reported_at_both_ends_together() -> None:
    link = Link(Depolarise(fidelity=0.9, p_success=1e-9, cycle_ns=1000))
    link.listen("bob", "p", "K", 2)
    link.create("alice", Create(remote="bob", purpose="p", number=2, max_time_s=50e-6))
    (ea,), (_acc, eb) = link.events["alice"], link.events["bob"]
    assert isinstance(ea, Err) and isinstance(eb, Err)
    assert ea.code is eb.code is Code.TIMEOUT and "0 of 2 pair(s)" in ea.message


def test_maximum_time_below_one_attempt_is_notime() -> None:
    link = Link(Perfect(cycle_ns=1000))
    link.listen("bob", "p")
    link.create("alice", Create(remote="bob", purpose="p", max_time_s=1e-8))
    assert isinstance(link.events["alice"][0], Err)
    assert link.events["alice"][0].code is Code.NOTIME


def test_crossing_requests_are_ordered_alike_at_both_ends() -> None:
    """Both ends create at once; the master's numbering gives one order to both."""
    link = Link(Depolarise(fidelity=0.9, p_success=0.2, cycle_ns=1000))
    for n in ("alice", "bob"):
        link.listen(n, "p", "K", 2)
    ca, out_a = link.egp["alice"].create(Create(remote="bob", purpose="p", number=2), 0.0)
    cb, out_b = link.egp["bob"].create(Create(remote="alice", purpose="p", number=2), 0.0)
    link.run("bob", out_b)  # bob's proposal reaches alice first
    link.run("alice", out_a)
    seen = {
        n: [(e.origin, e.create_id, e.ent_id) for e in oks(link.events[n])]
        for n in ("alice", "bob")
    }
    assert seen["alice"] == seen["bob"] and len(seen["alice"]) == 4
    assert {(o, c) for o, c, _ in seen["alice"]} == {("alice", ca), ("bob", cb)}


def test_measure_directly_draws_bases_at_each_end_independently() -> None:
    link = Link(Perfect(cycle_ns=100))
    n = 600
    link.listen("bob", "p2", "M", n)
    link.create("alice", Create(remote="bob", purpose="p2", type="M", number=n, bases="XYZ"))
    a, b = oks(link.events["alice"]), oks(link.events["bob"])
    assert len(a) == len(b) == n
    for side in (a, b):
        for basis in "XYZ":
            share = sum(o.basis == basis for o in side) / n
            assert abs(share - 1 / 3) < 4 * math.sqrt(2 / 9 / n)
    same = sum(x.basis == y.basis for x, y in zip(a, b, strict=True)) / n
    assert abs(same - 1 / 3) < 4 * math.sqrt(2 / 9 / n)  # independent choices


def test_silent_peer_times_out_the_proposal() -> None:
    egp = EGP(node="alice", peer="bob", model=Perfect(cycle_ns=100), rng=np.random.default_rng(0))
    cid, outs = egp.create(Create(remote="bob", purpose="p", max_time_s=5.0), 0.0)
    assert isinstance(outs[0], ToPeer) and isinstance(outs[0].msg, EgpRequest)
    assert egp.handle_timer(4.999) == []
    (out,) = egp.handle_timer(5.0)
    assert isinstance(out, ToLocal) and isinstance(out.event, Err)
    assert out.event.code is Code.TIMEOUT and "'bob' did not accept" in out.event.message


def test_abort_fails_the_request_at_both_ends() -> None:
    link = Link(Depolarise(fidelity=0.9, p_success=1e-9, cycle_ns=1000))
    link.listen("bob", "p")
    cid, outs = link.egp["alice"].create(Create(remote="bob", purpose="p", max_time_s=1.0), 0.0)
    (propose,) = [o for o in outs if isinstance(o, ToPeer)]
    for o in link.egp["bob"].peer_message(propose.msg, 0.0):
        if isinstance(o, ToPeer):  # bob's accept; the rounds are not run
            link.egp["alice"].peer_message(o.msg, 0.0)
    out = link.egp["bob"].abort(("alice", cid), Code.NORES, "no free communication qubit", 0.0)
    (err,) = [o.event for o in out if isinstance(o, ToLocal)]
    assert isinstance(err, Err) and err.code is Code.NORES
    assert link.egp["bob"].requests == {} and link.egp["bob"].by_round == {}
    (tell,) = [o for o in out if isinstance(o, ToPeer)]
    (back,) = link.egp["alice"].peer_message(tell.msg, 0.0)
    assert isinstance(back, ToLocal) and isinstance(back.event, Err)
    assert back.event.code is Code.NORES and "'bob' gave up" in back.event.message
    assert link.egp["alice"].requests == {}


def test_illegal_event_names_the_request_and_state() -> None:
    spec = EgpRequest(
        origin="a",
        create_id=4,
        purpose="p",
        kind="K",
        number=1,
        min_fidelity=0,
        deadline_s=1,
        bases="Z",
        queue=1,
    )
    r = Request(spec=spec, queue=1)
    from qnodeos.netlink.egp import State

    with pytest.raises(
        LocalError, match="request a:4: event 'last pair' is not allowed in state 'proposed'"
    ):
        r.fire(Ev.LAST_PAIR)
    assert r.state is State.PROPOSED


def test_ends_that_briefly_disagree_on_the_head_still_deliver_the_same_pairs() -> None:
    """The slave accepts the master's request (queue 1) while the master has not yet
    heard the accept but has accepted the slave's (queue 2): for a moment they attempt
    different rounds; the station ends both and they converge on queue 1, then 2."""
    link = Link(Depolarise(fidelity=0.9, p_success=0.5, cycle_ns=1000))
    for n in ("alice", "bob"):
        link.listen(n, "p")
    ca, out_a = link.egp["alice"].create(Create(remote="bob", purpose="p", number=1), 0.0)
    cb, out_b = link.egp["bob"].create(Create(remote="alice", purpose="p", number=1), 0.0)
    (to_bob,) = out_a
    (to_alice,) = out_b
    assert isinstance(to_bob, ToPeer) and isinstance(to_alice, ToPeer)
    # alice accepts bob's request (queue 2) while her own (queue 1) awaits bob's accept:
    from_alice = link.egp["alice"].peer_message(to_alice.msg, 0.0)
    link.run("alice", from_alice)
    link.run("bob", link.egp["bob"].peer_message(to_bob.msg, 0.0))
    order = [(e.origin, e.create_id, e.ent_id) for e in oks(link.events["alice"])]
    assert {o[:2] for o in order} == {("alice", ca), ("bob", cb)}
    assert order == [(e.origin, e.create_id, e.ent_id) for e in oks(link.events["bob"])]


def test_a_request_withdrawn_before_anyone_asked_is_never_attempted() -> None:
    """alice gives up on a request bob holds for an app that has not asked yet (bob was
    paused, say): when the app asks, bob must not attempt a round alice never will."""
    link = Link(Perfect(cycle_ns=100))
    cid, outs = link.egp["alice"].create(Create(remote="bob", purpose="p", max_time_s=5.0), 0.0)
    (propose,) = [o for o in outs if isinstance(o, ToPeer)]
    assert link.egp["bob"].peer_message(propose.msg, 0.0) == []  # held: nobody asked
    out = link.egp["alice"].abort(("alice", cid), Code.OTHER, "bob stopped answering", 0.1)
    (tell,) = [o for o in out if isinstance(o, ToPeer)]
    assert link.egp["bob"].peer_message(tell.msg, 0.1) == []
    assert link.egp["bob"].waiting == {}
    assert link.egp["bob"].listen("p", "K", 1, 0.2) == []  # no round for the withdrawn one


def test_ends_with_different_time_bins_refuse_to_pair() -> None:
    """Each end reads its own network file: if their schedules for the link differ, the
    request is refused at once with both schedules named, not attempted out of step."""
    link = Link(Perfect(cycle_ns=100))
    link.egp["alice"].schedule = "bins [0] of 2 x 1000 ns"
    link.listen("bob", "p")
    link.create("alice", Create(remote="bob", purpose="p"))
    (err,) = link.events["alice"]
    assert isinstance(err, Err) and err.code is Code.UNSUPP
    assert "disagree on the link's time bins ('alice': bins [0] of 2 x 1000 ns" in err.message
    assert "'bob': continuous" in err.message and "links[].schedule" in err.message
