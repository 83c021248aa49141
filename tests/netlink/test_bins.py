"""Time bins (issue 20): a binned link makes pairs at its continuous rate p/cycle times
the bins' share of time, also with bins of 1 ms in real time, where getting a round to
the device takes wall time (the node's timer wakes up to a millisecond late; a message
goes to the quantum process).

Tolerances: 4 standard errors, computed from the expected value, as in
``test_pairs_local``."""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
import trio

import qnodeos.kernel.service as service_mod
import qnodeos.sdk.client as client
from qnodeos import sdk
from qnodeos.kernel.service import NodeService
from qnodeos.netlink.models import Depolarise
from qnodeos.netlink.schedule import LEAD_S, TimeBins, lead_ns
from qnodeos.netlink.station import Attempt, HeraldingStation, Rejected, RoundEnd, ToNode
from qnodeos.testbed.local import local_network, service
from tests.conftest import network

# -- the schedule --------------------------------------------------------------------


def test_consecutive_bins_are_one_stretch_of_the_links_time() -> None:
    s = TimeBins(bin_ns=1000, period=4, bins=(0, 1))
    assert s.window(0) == (0, 2000)
    assert s.window(1500) == (1500, 2000)
    assert s.window(1990, room=20) == (4000, 6000)  # too little left: the next stretch
    every = TimeBins(bin_ns=1000, period=2, bins=(0, 1))
    assert every.window(500) == (500, 2000)  # at most a period at a time


def test_time_in_counts_only_the_links_bins() -> None:
    s = TimeBins(bin_ns=1000, period=4, bins=(0, 2)).aligned(250, 1.0)  # time 0 in bin 0
    assert s.time_in(0, 4000) == 2000
    assert s.time_in(750, 1750) == 0  # bin 1, and bin 0's end before it
    assert s.time_in(-250 + 2500, -250 + 10_500) == 4000
    assert s.time_in(5, 5) == 0 and s.time_in(10, 5) == 0


def test_the_lead_is_wall_time_at_the_devices_speed() -> None:
    assert lead_ns(1.0) == LEAD_S * 1e9
    assert lead_ns(2.0) == 2 * LEAD_S * 1e9
    assert lead_ns(math.inf) == 0.0


# -- the station ---------------------------------------------------------------------


def _station(sched: TimeBins, p: float = 0.02, **kw: float) -> HeraldingStation:
    model = Depolarise(fidelity=0.9, p_success=p, cycle_ns=10)
    return HeraldingStation(
        link="a-b", nodes=("a", "b"), model=model, rng=np.random.default_rng(5),
        schedule=sched, **kw,
    )  # fmt: skip


def _round(st: HeraldingStation, key: str, a: float, b: float, **kw: Any) -> RoundEnd:
    st.receive(Attempt(node="a", key=key, start_ns=a, **{"max_attempts": 10**4, **kw}))
    out: list[ToNode] = st.receive(
        Attempt(node="b", key=key, start_ns=b, **{"max_attempts": 10**4, **kw})
    )
    assert [o.node for o in out] == ["a", "b"] and out[0].msg is out[1].msg
    msg = out[0].msg
    assert not isinstance(msg, Rejected)
    return msg


def test_a_round_that_came_early_waits_for_its_bin_and_one_that_came_too_early_ends() -> None:
    sched = TimeBins(bin_ns=1000, period=4, bins=(2,))
    st = _station(sched, p=1.0, hold_ns=1500)
    early = _round(st, "r1", 600, 800, pairs=1)  # its bin begins 1200 ns later
    assert early.start_ns == 2000 and [h.at_ns for h in early.heralds] == [2010]
    far = _round(st, "r2", 4100, 4200, pairs=1)  # the next bin is 1800 ns off: too far
    assert far.heralds == () and far.attempts == 0 and far.start_ns == -1
    assert "outside the link's time bins" in far.reason


def test_a_round_goes_on_over_short_gaps_and_heralds_only_in_bins() -> None:
    """Bins of 1,000 ns, the link owns 0 and 1 of every 4 (a stretch of 2,000 ns, then
    a gap of 2,000): with gaps up to 2,000 ns bridged, one round runs through many
    stretches; its heralds lie in the bins, and each herald's attempts fill the link's
    time since the previous one (its dead time aside) exactly."""
    sched = TimeBins(bin_ns=1000, period=4, bins=(0, 1))
    st = _station(sched, p=0.005, bridge_ns=2000)
    msg = _round(st, "r", 0, 0, pairs=50, max_attempts=2000)
    assert len(msg.heralds) > 3 and msg.start_ns == 0
    t = msg.start_ns
    for h in msg.heralds:
        assert int((h.at_ns - 1) // 1000) % 4 in (0, 1), h.at_ns
        assert sched.time_in(t, h.at_ns) == h.attempts * 10
        t = h.at_ns
    spent = sum(h.attempts for h in msg.heralds) + msg.attempts
    assert spent <= 2000 and msg.at_ns % 4000 in (0, 2000)  # it ends with a stretch
    assert msg.at_ns > 8000  # three gaps bridged at least
    none = _station(sched, p=0.005, bridge_ns=1500)  # the gap is longer: one stretch
    assert _round(none, "r", 0, 0, pairs=50, max_attempts=2000).at_ns <= 2000


def test_a_round_ends_with_a_stretch_it_cannot_use_whole() -> None:
    """200 attempts left but a stretch of 200 ns x 10 = 2,000 ns / 10 ns takes 200: it
    goes on; with 150 left it stops at the end of the stretch before, so its node's
    next round comes in the gap, not in the middle of a bin."""
    sched = TimeBins(bin_ns=1000, period=4, bins=(0, 1))
    st = _station(sched, p=1e-9, bridge_ns=2000)
    two = _round(st, "r", 0, 0, max_attempts=400)
    assert two.at_ns == 6000 and two.attempts == 400
    cut = _round(st, "s", 0, 0, max_attempts=350)
    assert cut.at_ns == 2000 and cut.attempts == 200


def test_bridged_rounds_make_the_continuous_rate_times_the_fraction() -> None:
    sched = TimeBins(bin_ns=1000, period=2, bins=(1,))
    st = _station(sched, p=0.01, bridge_ns=1000)
    t, heralds = 0.0, 0
    for i in range(400):
        msg = _round(st, f"r{i}", t, t, pairs=30, max_attempts=500)
        heralds += len(msg.heralds)
        t = msg.at_ns
    expect = 0.01 / 10 * sched.fraction  # per ns
    assert abs(heralds / t - expect) <= 4 * expect / math.sqrt(heralds), (heralds / t, expect)


# -- end to end, with the OS's latencies -----------------------------------------------

# The node's timer wakes late (epoll waits whole ms: up to 1 ms), and a message from the
# classical to the quantum process takes a while. Both are powers of two in seconds, so
# times stay exact: on MockClock, ``Liveness`` in the quantum process would otherwise
# see ``t + 0.25 - t < 0.25`` at its ping deadline and its loop spin there for ever.
TIMER_LATE_S = 2**-11 + 2**-13  # 0.61 ms
HOP_S = 2**-12  # 0.24 ms

TWO = """
[nodes.alice]
device = "generic"
qubits = 2
speed = 1.0
seed = 1
[nodes.bob]
device = "generic"
qubits = 2
speed = 1.0
seed = 2
[[links]]
nodes = ["alice", "bob"]
model = "depolarise"
fidelity = 0.9
p_success = 0.02
cycle_ns = 1000
seed = 9
schedule = {{ bin_ns = 1000000, period = {period}, bins = {bins} }}
"""


class _Slow:
    """A socket whose messages arrive ``HOP_S`` late, in order."""

    def __init__(self, sock: Any) -> None:
        self.sock = sock
        self.due = -math.inf

    async def send(self, frames: list[bytes]) -> None:
        self.due = max(self.due + 1e-9, trio.current_time() + HOP_S)
        await trio.sleep_until(self.due)
        await self.sock.send(frames)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.sock, name)


@pytest.fixture
def os_latency(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Deterministic mode with a real node's latencies: its timer wakes ``TIMER_LATE_S``
    after the time it asked for, and its device gets each message ``HOP_S`` late."""
    rearm = NodeService._rearm_timer

    def late(self: NodeService) -> None:
        wake = self.kernel.wake_at
        if wake is not None:
            self.kernel.wake_at = wake + TIMER_LATE_S
        try:
            rearm(self)
        finally:
            self.kernel.wake_at = wake

    dealer = service_mod.connect_dealer

    def slow_dealer(endpoint: str, *args: Any, **kw: Any) -> Any:
        sock = dealer(endpoint, *args, **kw)
        return _Slow(sock) if endpoint.endswith("/qdevice") else sock

    monkeypatch.setattr(NodeService, "_rearm_timer", late)
    monkeypatch.setattr(service_mod, "connect_dealer", slow_dealer)
    yield


@pytest.mark.parametrize(("bins", "period"), [([0, 1], 4), ([0], 2)])
async def test_one_ms_bins_make_the_continuous_rate_times_the_fraction(
    autojump_clock: object,
    monkeypatch: pytest.MonkeyPatch,
    os_latency: None,
    bins: list[int],
    period: int,
) -> None:
    """Bins of 1 ms at speed 1, with a real node's latencies: heralds come at the
    link's continuous rate p/cycle times its share of time, and as many in each of its
    bins (before: a round reached the device late in the first bin, was cut at its
    end and asked for again, so 123 of 2,000 heralds came in bin 0 and the rate was
    0.27 of the expected; rounds that missed a bin lost it)."""
    cfg = network(TWO.format(bins=bins, period=period))
    n = 2000
    async with local_network(cfg) as eps:
        monkeypatch.setattr(client, "resolve_endpoint", lambda node, _n, _e: eps[node])
        got: dict[str, list[sdk.Pair]] = {}

        async def side(node: str, me: str, peer_node: str, peer: str) -> None:
            async with sdk.connect(node, app=me, qubits=1) as conn:
                epr = conn.epr_socket(peer_node, peer)
                if node == "alice":
                    got[node] = await epr.create_measure(n, timeout=30)
                else:
                    got[node] = await epr.recv_measure(n, timeout=30)

        async with trio.open_nursery() as nursery:
            nursery.start_soon(side, "alice", "a", "bob", "b")
            nursery.start_soon(side, "bob", "b", "alice", "a")
        epoch = service(eps["alice"]).kernel.device_epoch_ns
    assert epoch is not None
    sched = cfg.links[0].schedule
    assert sched is not None
    mine = sched.aligned(epoch, 1.0)
    at = [p.at_ns for p in got["alice"]]  # the station's end: device time of each herald
    per_bin = [0] * period  # its recipe (a readout) ends < 500 ns after the herald
    for t in at:
        per_bin[int((t - 500 + mine.offset_ns) // sched.bin_ns) % period] += 1
    assert all(per_bin[b] == 0 for b in range(period) if b not in bins), per_bin
    if len(bins) == 2:
        assert abs(per_bin[0] - per_bin[1]) <= 4 * math.sqrt(n), per_bin
    rate = (n - 1) / ((at[-1] - at[0]) * 1e-9)
    expect = cfg.links[0].model.rate_hz() * sched.fraction
    assert abs(rate - expect) <= 4 * expect / math.sqrt(n), (rate, expect, per_bin)
