"""Links over fibre (netlink/fibre.py): loss and delays from a link's length, checked in
closed form, from the network file, and on pairs made in deterministic mode (rates and
probabilities within 4 standard errors)."""

from __future__ import annotations

import math
from typing import Any

import pytest

from qnodeos import sdk
from qnodeos.errors import ConfigError
from qnodeos.netlink.fibre import C_KM_PER_S, Fibre, over_fibre
from qnodeos.netlink.models import Depolarise, DoubleClick, Perfect, SingleClick
from tests.conftest import network
from tests.netlink.test_pairs_local import TWO, both, close, linkstats, running

US_PER_KM = 1.44 / C_KM_PER_S * 1e6  # light in the default fibre, microseconds per km


def link(extra: str) -> str:
    return TWO.format(
        speed=1.0,
        params="",
        link=f'model = "depolarise"\nfidelity = 0.9\np_success = 0.5\ncycle_ns = 1000\n{extra}',
    )


def test_transmissivity_and_cycle_follow_the_length_and_the_station() -> None:
    mid = Fibre(length_km=20.0)
    at_a = Fibre(length_km=20.0, station_km=0.0)
    assert mid.arms_km() == (10.0, 10.0) and at_a.arms_km() == (0.0, 20.0)
    assert mid.transmissivity() == pytest.approx(10**-0.4)
    assert Fibre(length_km=20.0, attenuation_db_km=0.25).transmissivity() == pytest.approx(10**-0.5)
    # the longer arm's round trip: L / v at the midpoint, 2 L / v with the station at a node
    assert mid.herald_wait_ns() == pytest.approx(20 * US_PER_KM * 1e3)
    assert at_a.herald_wait_ns() == pytest.approx(40 * US_PER_KM * 1e3)
    assert Fibre(length_km=1.0, refractive_index=1.5).one_way_s() == pytest.approx(1.5 / C_KM_PER_S)


@pytest.mark.parametrize("station", [None, 0.0, 15.0])
def test_each_model_loses_what_its_herald_needs(station: float | None) -> None:
    f = Fibre(length_km=20.0, station_km=station)
    ta, tb = (f.transmissivity(km) for km in f.arms_km())
    cycle = 5000 + f.herald_wait_ns()
    dep = over_fibre(Depolarise(fidelity=0.9, p_success=0.3, cycle_ns=5000), f)
    assert dep.success_probability() == pytest.approx(0.3 * 10**-0.4)  # whole fibre
    assert dep.expected_fidelity() == 0.9 and dep.cycle_ns == pytest.approx(cycle)
    dc = over_fibre(DoubleClick(eta=0.1, visibility=0.9, cycle_ns=5000), f)
    assert dc.success_probability() == pytest.approx(0.01 * ta * tb / 2)
    assert dc.expected_fidelity() == pytest.approx(0.95)
    sc = SingleClick(alpha=0.05, eta=1e-3, cycle_ns=5000)
    lossy = over_fibre(sc, f)
    # one photon from either node: 2 alpha eta (T_a + T_b) / 2, to first order in eta
    assert lossy.success_probability() == pytest.approx(
        sc.success_probability() * (ta + tb) / 2, rel=2e-3
    )
    perfect = over_fibre(Perfect(cycle_ns=5000), f)
    assert perfect.success_probability() == pytest.approx(ta * tb)
    assert perfect.expected_fidelity() == 1.0
    assert lossy.rate_hz() == pytest.approx(lossy.success_probability() / (cycle * 1e-9))


def test_a_link_without_a_length_keeps_its_meaning() -> None:
    plain = network(link("")).links[0]
    zero = network(link("length_km = 0")).links[0]
    assert plain.fibre is None and plain.delay_s == 0.0
    assert plain.model == zero.model == Depolarise(fidelity=0.9, p_success=0.5, cycle_ns=1000)


def test_the_network_file_gives_loss_and_delay() -> None:
    cfg = network(link('length_km = 20\nstation = "bob"\nattenuation_db_km = 0.25'))
    lk = cfg.links[0]
    assert lk.fibre == Fibre(length_km=20.0, attenuation_db_km=0.25, station_km=20.0)
    assert lk.model.success_probability() == pytest.approx(0.5 * 10**-0.5)
    assert lk.model.cycle_ns == pytest.approx(1000 + 40 * US_PER_KM * 1e3)
    assert cfg.delay("alice", "bob") == pytest.approx(20 * US_PER_KM * 1e-6)
    slower = network(link("length_km = 20\ndelay_s = 0.001")).links[0]
    assert slower.delay_s == 0.001  # a slower classical channel may be given


@pytest.mark.parametrize(
    ("extra", "words"),
    [
        ("length_km = -1", "length_km = -1.0 not in [0, 100000]"),
        ("length_km = nan", "length_km = nan not in"),
        ('length_km = "far"', "length_km: expected int/float"),
        ("length_km = 5\nattenuation_db_km = -0.2", "attenuation_db_km = -0.2 not in"),
        ("length_km = 5\nrefractive_index = 0.5", "refractive_index = 0.5 not in [1, 4]"),
        ('length_km = 5\nstation = "carol"', "station: 'carol' is not 'midpoint' nor one"),
        ("attenuation_db_km = 0.3", "attenuation_db_km need(s) the fibre's length_km"),
        ('station = "alice"', "station need(s) the fibre's length_km"),
        ("length_km = 100\ndelay_s = 1e-5", "less than light takes over its fibre"),
    ],
)
def test_bad_fibre_values_are_refused_by_name(extra: str, words: str) -> None:
    with pytest.raises(ConfigError, match="links\\[0\\]") as err:
        network(link(extra))
    assert words in str(err.value)


async def measured_pairs(cfg: Any, monkeypatch: pytest.MonkeyPatch, n: int) -> list[sdk.Pair]:
    """``n`` measure-directly pairs as alice got them (their times and attempts)."""

    async def make(node: str, me: str, peer: str, role: str) -> list[sdk.Pair]:
        other = "bob" if node == "alice" else "alice"
        async with sdk.connect(node, app=me, qubits=1) as conn:
            epr = conn.epr_socket(other, peer)
            if role == "create":
                return await epr.create_measure(n, timeout=60.0)
            return await epr.recv_measure(n, timeout=60.0)

    async with running(cfg, monkeypatch):
        got, _ = await both(
            lambda: make("alice", "a", "b", "create"), lambda: make("bob", "b", "a", "recv")
        )
    out: list[sdk.Pair] = got
    return out


@pytest.mark.parametrize("station", ["midpoint", "alice"])
async def test_pair_timestamps_show_the_heralding_delay(
    autojump_clock: object, monkeypatch: pytest.MonkeyPatch, station: str
) -> None:
    """Each pair comes ``attempts`` cycles of the fibre after the previous one (plus the
    fixed time to measure it): the cycle is the local one plus the longer arm's round
    trip, twice as long with the station at a node as at the midpoint."""
    cfg = network(link(f'length_km = 20\nstation = "{station}"'))
    cycle = 1000 + (2 if station == "alice" else 1) * 20 * US_PER_KM * 1e3
    assert cfg.links[0].model.cycle_ns == pytest.approx(cycle)
    pairs = await measured_pairs(cfg, monkeypatch, 40)
    extra = [b.at_ns - a.at_ns - b.attempts * cycle for a, b in zip(pairs, pairs[1:], strict=False)]
    # one fixed measuring time (100 ns), to within the ns the device rounds its times to
    assert 0 <= min(extra) and max(extra) - min(extra) < 2.5 and max(extra) < 1000, extra


@pytest.mark.parametrize("station", ["midpoint", "alice"])
async def test_probability_and_rate_over_fibre_match_the_closed_form(
    autojump_clock: object, monkeypatch: pytest.MonkeyPatch, station: str
) -> None:
    """p = p0 10^(-alpha L / 10) per attempt, and the rate p / (cycle + 2 max(arm) / v),
    within 4 standard errors, for the station at the midpoint and at one node."""
    cfg = network(link(f'length_km = 20\nstation = "{station}"'))
    n = 1200

    r = await linkstats(cfg, monkeypatch, n)
    p = 0.5 * 10 ** (-0.2 * 20 / 10)
    wait_ns = (2 if station == "alice" else 1) * 20 * US_PER_KM * 1e3
    rate = p / ((1000 + wait_ns) * 1e-9)
    assert close(r["p_success"], p, p * math.sqrt((1 - p) / n)), (r["p_success"], p)
    # the rate's spread: a geometric number of cycles per pair, relative sqrt(1 - p) / sqrt(n)
    assert close(r["rate_hz"], rate, rate * math.sqrt((1 - p) / n)), (r["rate_hz"], rate)
    print(f"\nstation {station}: p = {r['p_success']:.4f} (predicted {p:.4f}), "
          f"rate = {r['rate_hz']:.1f}/s (predicted {rate:.1f}/s)")  # fmt: skip


async def test_a_classical_message_takes_the_light_time_of_the_fibre(
    autojump_clock: object, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Deterministic mode: a message between the apps of a 200 km link arrives about
    L / v = 0.96 ms after it was sent (the side-by-side link: at once)."""
    import trio

    async def one_way(extra: str) -> float:
        cfg = network(link(extra))

        async def alice() -> float:
            async with sdk.connect("alice", app="a", qubits=1) as conn:
                sock = conn.socket("bob", "b")
                await sock.recv()  # bob is there
                await sock.send(trio.current_time())
                return float(await sock.recv())

        async def bob() -> float:
            async with sdk.connect("bob", app="b", qubits=1) as conn:
                sock = conn.socket("alice", "a")
                await sock.send("ready")
                sent = await sock.recv()
                took = trio.current_time() - sent
                await sock.send(took)
                return float(took)

        async with running(cfg, monkeypatch):
            took, _ = await both(alice, bob)
        out: float = took
        return out

    light = 200 * US_PER_KM * 1e-6
    near, far = await one_way(""), await one_way("length_km = 200")
    print(f"\none way: side by side {near * 1e6:.1f} us, over 200 km {far * 1e6:.1f} us "
          f"(light {light * 1e6:.1f} us)")  # fmt: skip
    assert near < 1e-4 and light <= far - near < light + 1e-4, (near, far, light)
