"""The heralding station: both ends always hear the same outcome."""

from __future__ import annotations

import math

import numpy as np
import pytest

from qnodeos.netlink.models import Depolarise, Perfect
from qnodeos.netlink.schedule import TimeBins
from qnodeos.netlink.station import Attempt, HeraldingStation, Rejected, RoundEnd, ToNode


def station(p: float = 1.0, cycle: float = 10.0, seed: int = 1) -> HeraldingStation:
    model = (
        Perfect(cycle_ns=cycle)
        if p == 1.0
        else Depolarise(fidelity=0.9, p_success=p, cycle_ns=cycle)
    )
    return HeraldingStation(
        link="a-b", nodes=("a", "b"), model=model, rng=np.random.default_rng(seed)
    )


def both(out: list[ToNode]) -> RoundEnd:
    assert [o.node for o in out] == ["a", "b"]
    assert out[0].msg is out[1].msg
    msg = out[0].msg
    assert not isinstance(msg, Rejected)
    return msg


def test_pairs_attempts_in_their_common_window() -> None:
    st = station()
    assert st.receive(Attempt(node="b", key="k7", start_ns=100, max_attempts=5)) == []  # to 150
    msg = both(st.receive(Attempt(node="a", key="k7", start_ns=130, max_attempts=10)))
    (h,) = msg.heralds
    assert h.attempts == 1 and h.at_ns == 140 and msg.reason == ""
    assert st.pending == {}


def test_no_overlap_means_no_herald_for_both() -> None:
    st = station()
    st.receive(Attempt(node="a", key="k1", start_ns=0, max_attempts=2))  # ends at 20
    msg = both(st.receive(Attempt(node="b", key="k1", start_ns=50, max_attempts=2)))
    assert msg.heralds == () and "do not overlap" in msg.reason


def test_success_rate_and_times_follow_the_model() -> None:
    p, n, cycle = 0.05, 4000, 10.0
    st = station(p=p, cycle=cycle)
    heralded = 0
    for key in range(n):
        st.receive(Attempt(node="a", key=str(key), start_ns=0, max_attempts=20))
        msg = both(st.receive(Attempt(node="b", key=str(key), start_ns=0, max_attempts=20)))
        if msg.heralds:
            heralded += 1
            (h,) = msg.heralds
            assert 1 <= h.attempts <= 20 and h.at_ns == h.attempts * cycle
        else:
            assert msg.attempts == 20 and msg.at_ns == 200
    expected = 1 - (1 - p) ** 20  # P(first success within 20 attempts)
    assert abs(heralded / n - expected) < 4 * math.sqrt(expected * (1 - expected) / n)


@pytest.mark.parametrize(
    "attempt, words",
    [
        (Attempt(node="eve", key="k1", start_ns=0, max_attempts=1), "'eve' is not on link a-b"),
        (Attempt(node="a", key="k1", start_ns=0, max_attempts=0), "bad window"),
        (Attempt(node="a", key="k1", start_ns=-5, max_attempts=3), "bad window"),
        (Attempt(node="a", key="k1", start_ns=0, max_attempts=3, pairs=0), "bad round"),
        (Attempt(node="a", key="k1", start_ns=0, max_attempts=3, dead_ns=-1), "bad round"),
    ],
)
def test_bad_attempts_are_rejected_without_changing_state(attempt: Attempt, words: str) -> None:
    st = station()
    out = st.receive(attempt)
    assert len(out) == 1 and isinstance(out[0].msg, Rejected) and words in out[0].msg.reason
    assert st.pending == {}


def test_an_end_attempting_a_round_again_replaces_its_attempt_and_it_runs_once() -> None:
    """A node that stopped waiting for the station (it was silent) attempts the same
    round again: the newer attempt stands; the round runs once, for both."""
    st = station()
    st.receive(Attempt(node="a", key="k3", start_ns=0, max_attempts=5))
    again = Attempt(node="a", key="k3", start_ns=10, max_attempts=5)
    assert st.receive(again) == [] and st.pending == {"k3": again}
    out = st.receive(Attempt(node="b", key="k3", start_ns=10, max_attempts=5))
    assert [o.node for o in out] == ["a", "b"] and st.pending == {}
    assert all(isinstance(o.msg, RoundEnd) and len(o.msg.heralds) == 1 for o in out)


def test_lone_attempt_expires_at_its_wall_clock_expiry() -> None:
    st = station()
    st.receive(Attempt(node="a", key="k9", start_ns=0, max_attempts=4, expires_s=2.5))
    assert st.next_deadline() == 2.5
    assert st.handle_timer(2.4) == []
    (out,) = st.handle_timer(2.5)
    assert out.node == "a" and isinstance(out.msg, RoundEnd) and out.msg.at_ns == 40
    assert out.msg.heralds == ()
    assert "did not attempt" in out.msg.reason and st.pending == {}


def test_a_late_peer_hears_the_same_ending_as_the_expired_one() -> None:
    st = station()
    st.receive(Attempt(node="a", key="k5", start_ns=0, max_attempts=2, expires_s=1.0))
    (first,) = st.handle_timer(1.0)
    (late,) = st.receive(Attempt(node="b", key="k5", start_ns=30, max_attempts=2))
    assert late.node == "b" and late.msg is first.msg and st.pending == {}


def test_ends_attempting_different_rounds_are_both_ended_at_once() -> None:
    st = station()
    assert st.receive(Attempt(node="b", key="r2", start_ns=5, max_attempts=9)) == []
    out = st.receive(Attempt(node="a", key="r1", start_ns=0, max_attempts=9))
    assert [(o.node, o.msg.key) for o in out] == [("a", "r1"), ("b", "r2")]
    assert all(isinstance(o.msg, RoundEnd) and "different rounds" in o.msg.reason for o in out)
    assert all(isinstance(o.msg, RoundEnd) and o.msg.again for o in out)
    assert st.pending == {} and st.expired == {}


def test_a_round_makes_many_pairs_each_after_the_dead_time() -> None:
    p, cycle, dead = 0.05, 10.0, 35.0
    st = station(p=p, cycle=cycle)
    st.receive(Attempt(node="a", key="r", start_ns=0, max_attempts=10**6, pairs=500, dead_ns=dead))
    msg = both(st.receive(Attempt(node="b", key="r", start_ns=0, max_attempts=10**6, pairs=500)))
    assert len(msg.heralds) == 500 and msg.reason == ""
    assert [h.seq for h in msg.heralds] == list(range(1, 501))
    t = 0.0
    for h in msg.heralds:  # each herald: its attempts after the previous one's dead time
        assert h.at_ns == t + h.attempts * cycle
        t = h.at_ns + dead
    # attempts per pair are geometric with mean 1/p, as with one pair per round
    mean = sum(h.attempts for h in msg.heralds) / 500
    sd = math.sqrt((1 - p) / p**2 / 500)
    assert abs(mean - 1 / p) < 4 * sd


def test_a_round_stops_when_its_window_is_used_up() -> None:
    st = station(p=0.5, cycle=10.0)
    st.receive(Attempt(node="a", key="r", start_ns=0, max_attempts=30, pairs=100))
    msg = both(st.receive(Attempt(node="b", key="r", start_ns=0, max_attempts=30, pairs=100)))
    assert 0 < len(msg.heralds) < 100 and msg.at_ns <= 300
    assert sum(h.attempts for h in msg.heralds) + msg.attempts <= 30
    assert msg.reason


def test_with_time_bins_no_herald_falls_outside_the_links_bins() -> None:
    """Bins of 1,000 ns, the link owns bins 1 and 2 of every 5: each round starts at
    the link's next bin and ends with it; over many rounds every herald lies in the
    link's bins, and the pair rate is the continuous rate times the bin fraction (2/5)."""
    from qnodeos.netlink.schedule import TimeBins

    sched = TimeBins(bin_ns=1000, period=5, bins=(1, 2))
    model = Depolarise(fidelity=0.9, p_success=0.02, cycle_ns=10)
    st = HeraldingStation(
        link="a-b", nodes=("a", "b"), model=model, rng=np.random.default_rng(3), schedule=sched
    )
    t, heralds, rounds = 0.0, 0, 3000
    for i in range(rounds):
        for node in "ab":
            att = Attempt(node=node, key=f"r{i}", start_ns=t, max_attempts=10**4, pairs=50)
            out = st.receive(att)
        msg = both(out)
        for h in msg.heralds:  # an attempt ends after it started, within the bin
            assert int((h.at_ns - 1) // 1000) % 5 in (1, 2), h.at_ns
        heralds += len(msg.heralds)
        t = msg.at_ns
    rate = heralds / t  # per ns of device time
    expect = model.success_probability() / 10 * sched.fraction
    assert abs(rate - expect) <= 4 * expect / math.sqrt(heralds), (rate, expect)


def test_time_bins_are_counted_from_the_wall_clock_both_ends_share() -> None:
    """Two devices that started 0.3 ms apart (real time, speed 1) count the same bins:
    at any wall instant, each device's next window begins at the same wall time."""
    s = TimeBins(bin_ns=1e6, period=2, bins=(0,))
    t0a, t0b = 1_700_000_000_000_100_000, 1_700_000_000_000_400_000  # wall ns of time 0
    a, b = s.aligned(t0a, 1.0), s.aligned(t0b, 1.0)
    for since_b in range(0, 5_000_000, 70_000):  # wall ns since b's time 0
        start_a = a.window(since_b + (t0b - t0a))[0] - (t0b - t0a)  # in b's time
        start_b = b.window(since_b)[0]
        assert abs(start_a - start_b) < 1e-3
        assert (start_b + t0b % 2_000_000) % 2_000_000 < 1_000_000  # an even ms of wall time
    assert s.aligned(t0a, math.inf) == s  # as fast as possible: the station's time
