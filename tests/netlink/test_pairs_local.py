"""Entanglement end to end in deterministic mode (a whole network in one trio run on
MockClock): link models, rates and decoherence while holding, against closed forms.

Tolerances: 4 standard errors of the estimate, the error computed from the expected
value (binomial or geometric), so a failure means a real disagreement, not bad luck
(about 1 in 16,000 per check)."""

from __future__ import annotations

import math
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
import trio

import qnodeos.apps.linkstats
import qnodeos.sdk.client as client
from qnodeos import sdk
from qnodeos.config.network import NetworkConfig
from qnodeos.netlink.models import SingleClick
from qnodeos.runtime.timeline import ENV
from qnodeos.testbed.local import local_network, service
from qnodeos.testbed.trace import node_spans
from tests.conftest import network

TWO = """
[nodes.alice]
device = "generic"
qubits = 4
speed = {speed}
seed = 1
[nodes.bob]
device = "generic"
qubits = 4
speed = {speed}
seed = 2
{params}
[[links]]
nodes = ["alice", "bob"]
{link}
seed = 9
"""


@asynccontextmanager
async def running(
    cfg: NetworkConfig, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[dict[str, str]]:
    async with local_network(cfg) as eps:
        monkeypatch.setattr(client, "resolve_endpoint", lambda node, _n, _e: eps[node])
        yield eps


async def both(*calls: Callable[[], Awaitable[Any]]) -> list[Any]:
    out: list[Any] = [None] * len(calls)

    async def one(i: int) -> None:
        out[i] = await calls[i]()

    async with trio.open_nursery() as n:
        for i in range(len(calls)):
            n.start_soon(one, i)
    return out


async def linkstats(cfg: NetworkConfig, monkeypatch: pytest.MonkeyPatch, n: int) -> dict[str, Any]:
    """Run qnodeos.apps.linkstats for ``n`` pairs between alice and bob; alice's result."""
    async with running(cfg, monkeypatch):
        r, _ = await both(
            lambda: qnodeos.apps.linkstats.main(
                "alice", role="create", me="a", peer_node="bob", peer="b", pairs=n
            ),
            lambda: qnodeos.apps.linkstats.main(
                "bob", role="recv", me="b", peer_node="alice", peer="a", pairs=n
            ),
        )
    result: dict[str, Any] = r
    return result


def close(measured: float, expected: float, stderr: float) -> bool:
    return abs(measured - expected) <= 4 * stderr


async def test_single_click_fidelity_probability_and_rate_match_the_model(
    autojump_clock: object, monkeypatch: pytest.MonkeyPatch
) -> None:
    link = (
        'model = "single_click"\ncycle_ns = 5000\nalpha = 0.08\neta = 0.05\n'
        "visibility = 0.9\ndark_count = 1e-6"
    )
    cfg = network(TWO.format(speed=1.0, params="", link=link))
    model = cfg.links[0].model
    assert isinstance(model, SingleClick)
    n = 1500
    r = await linkstats(cfg, monkeypatch, n)
    f, p = model.expected_fidelity(), model.success_probability()
    # F from three correlators of ~n/9 pairs each: its standard error as for the model's F
    f_err = math.sqrt(3 * (1 - (4 * f - 1) ** 2 / 9) / (n / 9)) / 4
    assert close(r["fidelity"], f, f_err), (r["fidelity"], f, f_err)
    assert close(r["p_success"], p, p * math.sqrt((1 - p) / n)), (r["p_success"], p)
    # Rate in device time at speed 1: attempts back to back, plus the 100 ns measurement
    # after each herald (deterministic mode: no OS time), so within 4 sigma of p/cycle.
    rate = model.rate_hz()
    assert close(r["rate_hz"], rate, rate / math.sqrt(n)), (r["rate_hz"], rate)


@pytest.mark.parametrize("speed", [0.5, 4.0])
async def test_wall_clock_pair_rate_is_p_over_cycle_times_the_speed(
    autojump_clock: object, monkeypatch: pytest.MonkeyPatch, speed: float
) -> None:
    link = 'model = "depolarise"\nfidelity = 0.9\np_success = 0.05\ncycle_ns = 20000'
    cfg = network(TWO.format(speed=speed, params="", link=link))
    n = 800
    r = await linkstats(cfg, monkeypatch, n)
    rate = cfg.links[0].model.rate_hz() * speed
    assert close(r["wall_rate_hz"], rate, rate / math.sqrt(n)), (r["wall_rate_hz"], rate)


async def test_kept_pair_decoheres_with_the_time_the_app_holds_it(
    autojump_clock: object, monkeypatch: pytest.MonkeyPatch
) -> None:
    """T2 = 40 ms on both ends, T1 not modelled: holding a Phi+ pair for t leaves
    <XX> = e^(-2t/T2) (each half dephases) and <ZZ> = 1."""
    params = "\n".join(f"[nodes.{n}.params.kinds.qubit]\nt2_ns = 4e7" for n in ("alice", "bob"))
    cfg = network(TWO.format(speed=1.0, params=params, link='model = "perfect"\ncycle_ns = 1000'))
    shots = 300
    waits = [0.0, 0.02, 0.04]
    async with running(cfg, monkeypatch):

        async def side(node: str, me: str, peer: str, create: bool) -> list[tuple[int, int]]:
            out = []
            async with sdk.connect(node, app=me, qubits=1) as conn:
                epr = conn.epr_socket("bob" if create else "alice", peer)
                for i in range(shots * len(waits)):
                    wait = waits[i % len(waits)]
                    basis = (i // len(waits)) % 2  # X, Z alternately per wait
                    (pair,) = await (epr.create_keep() if create else epr.recv_keep())
                    q = pair.qubit
                    assert q is not None
                    await trio.sleep(wait)  # the app holds the pair
                    async with conn.block():
                        if basis == 0:
                            q.h()
                        m = q.measure()
                    out.append((i, m.value))
            return out

        a, b = await both(
            lambda: side("alice", "a", "b", True), lambda: side("bob", "b", "a", False)
        )
    for k, wait in enumerate(waits):
        for basis, expected in ((0, math.exp(-2 * wait / 0.04)), (1, 1.0)):
            rows = [
                (x, y)
                for (i, x), (_, y) in zip(a, b, strict=True)
                if i % len(waits) == k and (i // len(waits)) % 2 == basis
            ]
            corr = sum(1 if x == y else -1 for x, y in rows) / len(rows)
            p_same = (1 + expected) / 2
            err = 2 * math.sqrt(max(p_same * (1 - p_same), 1e-4) / len(rows))
            assert close(corr, expected, err), (wait, basis, corr, expected)


async def test_nv_moves_a_kept_pair_into_a_carbon_when_the_electron_is_needed(
    autojump_clock: object, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Noiseless NV nodes: the first pair sits on the electron; asking for a second moves
    it into a carbon (remapped, still entangled); both pairs then read out through the
    electron agree in Z and in X."""
    noiseless = ""
    for n in ("alice", "bob"):
        noiseless += f"""
[nodes.{n}.params.kinds.electron]
init = {{ error = 0.0 }}
gates = {{ rx = {{ error = 0.0 }}, ry = {{ error = 0.0 }}, rz = {{ error = 0.0 }} }}
meas = {{ p01 = 0.0, p10 = 0.0 }}
[nodes.{n}.params.kinds.carbon]
init = {{ error = 0.0 }}
gates = {{ rx = {{ error = 0.0 }}, ry = {{ error = 0.0 }}, rz = {{ error = 0.0 }} }}
[nodes.{n}.params.two_qubit]
crx = {{ spec = {{ error = 0.0 }} }}
"""
    text = TWO.format(speed=1.0, params=noiseless, link='model = "perfect"\ncycle_ns = 1000')
    cfg = network(text.replace('device = "generic"\nqubits = 4', 'device = "nv"\nqubits = 3'))
    async with running(cfg, monkeypatch) as eps:

        async def side(node: str, me: str, peer: str, create: bool) -> list[int]:
            async with sdk.connect(node, app=me, qubits=2) as conn:
                epr = conn.epr_socket("bob" if create else "alice", peer)
                outs = []
                for basis in ("Z", "X") * 10:
                    p1 = await (epr.create_keep() if create else epr.recv_keep())
                    p2 = await (epr.create_keep() if create else epr.recv_keep())
                    async with conn.block():
                        ms = []
                        for p in (p1[0], p2[0]):
                            assert p.qubit is not None
                            if basis == "X":
                                p.qubit.h()
                            ms.append(p.qubit.measure())
                    outs += [m.value for m in ms]
                return outs

        a, b = await both(
            lambda: side("alice", "a", "b", True), lambda: side("bob", "b", "a", False)
        )
        assert service(eps["alice"]).kernel.net.moves >= 20
        assert service(eps["bob"]).kernel.net.moves >= 20
    assert a == b


THREE = """
[nodes.alice]
qubits = 2
seed = 1
[nodes.bob]
qubits = 2
seed = 2
[nodes.charlie]
qubits = 2
seed = 3
[[links]]
nodes = ["alice", "bob"]
model = "perfect"
cycle_ns = 1000
[[links]]
nodes = ["bob", "charlie"]
model = "perfect"
cycle_ns = 1000
"""


async def test_ghz_over_three_nodes_is_perfect_on_perfect_links(
    autojump_clock: object, monkeypatch: pytest.MonkeyPatch
) -> None:
    import qnodeos.apps.ghz

    nodes = ["alice", "bob", "charlie"]
    async with running(network(THREE), monkeypatch):
        a, _, _ = await both(
            *(
                (lambda r=r, n=n: qnodeos.apps.ghz.main(n, role=r, nodes=nodes, rounds=40))
                for r, n in zip("abc", nodes, strict=True)
            )
        )
    assert a["z_agree"] == 1.0 and a["xxx"] == 1.0


@pytest.mark.parametrize("phi, p0", [(0.0, 1.0), (math.pi / 2, 0.5), (2.0, math.cos(1.0) ** 2)])
async def test_blind_computation_gives_cos2_phi_over_2(
    autojump_clock: object, monkeypatch: pytest.MonkeyPatch, phi: float, p0: float
) -> None:
    import qnodeos.apps.blind

    cfg = network(TWO.format(speed="inf", params="", link='model = "perfect"\ncycle_ns = 1000'))
    n = 300
    async with running(cfg, monkeypatch):
        client_r, _ = await both(
            lambda: qnodeos.apps.blind.main(
                "alice", role="client", me="c", peer_node="bob", peer="s", rounds=n, phi=phi, seed=5
            ),
            lambda: qnodeos.apps.blind.main(
                "bob", role="server", me="s", peer_node="alice", peer="c"
            ),
        )
    err = math.sqrt(max(p0 * (1 - p0), 1 / n) / n)
    assert close(client_r["p0"], p0, err), (client_r, p0)


async def _measured_pairs(
    cfg: NetworkConfig, monkeypatch: pytest.MonkeyPatch, n: int, per_request: int
) -> tuple[list[sdk.Pair], list[sdk.Pair]]:
    """``n`` measured pairs (bases X/Z) between alice and bob, ``per_request`` at a time."""

    async def side(node: str, me: str, peer_node: str, peer: str, create: bool) -> list[sdk.Pair]:
        got: list[sdk.Pair] = []
        async with sdk.connect(node, app=me, qubits=1) as conn:
            epr = conn.epr_socket(peer_node, peer)
            ask = epr.create_measure if create else epr.recv_measure
            while len(got) < n:
                got += await ask(per_request, bases="XZ")
        return got

    async with running(cfg, monkeypatch):
        a, b = await both(
            lambda: side("alice", "a", "bob", "b", True),
            lambda: side("bob", "b", "alice", "a", False),
        )
    return a, b


async def test_batched_and_one_pair_rounds_make_the_same_pairs(
    autojump_clock: object, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The same network and seeds, 600 measured pairs asked for one per request (one
    round each) or all in one request (rounds of many pairs): the station draws the
    same heralds and each end the same bases and outcomes, so the two runs agree pair
    for pair; and both agree with the Werner closed form."""
    link = 'model = "depolarise"\nfidelity = 0.85\np_success = 0.3\ncycle_ns = 1000'
    n = 600
    runs = []
    for per_request in (1, n):
        cfg = network(TWO.format(speed="inf", params="", link=link))
        runs.append(await _measured_pairs(cfg, monkeypatch, n, per_request))
    (a1, b1), (an, bn) = runs

    def view(pairs: list[sdk.Pair]) -> list[tuple[object, ...]]:
        return [(p.ent_id, p.basis, p.outcome, p.attempts) for p in pairs]

    assert view(a1) == view(an) and view(b1) == view(bn)
    assert [p.ent_id for p in an] == [p.ent_id for p in bn]
    same = [(x.outcome, y.outcome) for x, y in zip(an, bn, strict=True) if x.basis == y.basis]
    agree = sum(x == y for x, y in same) / len(same)
    expect = (2 * 0.85 + 1) / 3
    assert close(agree, expect, math.sqrt(expect * (1 - expect) / len(same))), agree


async def test_the_readme_block_example_runs(
    autojump_clock: object, monkeypatch: pytest.MonkeyPatch
) -> None:
    """README's "Entanglement inside a block" example, with the other end's block."""
    link = 'model = "perfect"\ncycle_ns = 1000'
    text = TWO.format(speed="inf", params="", link=link).replace("qubits = 4", "qubits = 6")
    cfg = network(text)

    async def creator() -> tuple[Any, Any, Any]:
        async with sdk.connect("alice", app="a", qubits=4) as node:
            epr = node.epr_socket("bob", "b")
            async with node.block() as b:
                kept = b.create_keep(epr, 2)
                kept.qubits[0].h()
                m = kept.qubits[0].measure()
                meas = b.create_measure(epr, 100, chosen="XZ" * 50)
                rsp = b.create_rsp(epr, 4, rotations=[(0.0, 0.3, 0.0)])
                seq = b.recv_keep(epr, 20, sequential=True, post=lambda b, q, i: q.measure())
            assert m.value in (0, 1) and rsp.outcomes is not None
            return meas, seq, rsp

    async def receiver() -> tuple[Any, Any, Any]:
        async with sdk.connect("bob", app="b", qubits=5) as node:
            epr = node.epr_socket("alice", "a")
            async with node.block() as b:
                b.recv_keep(epr, 2)
                meas = b.recv_measure(epr, 100, chosen="XZ" * 50)
                rsp = b.recv_rsp(epr, 4, sequential=True, post=lambda b, q, i: q.measure())
                seq = b.create_keep(epr, 20, sequential=True, post=lambda b, q, i: q.measure())
            return meas, seq, rsp

    async with running(cfg, monkeypatch):
        (ma, sa, ra), (mb, sb, rb) = await both(creator, receiver)
    assert ma.ids.value == mb.ids.value and ma.outcomes.value == mb.outcomes.value
    assert sa.ids.value == sb.ids.value and ra.ids.value == rb.ids.value


@pytest.mark.parametrize("bins", [[0], [0, 2]])
async def test_time_bins_scale_the_pair_rate_by_their_fraction(
    autojump_clock: object, monkeypatch: pytest.MonkeyPatch, bins: list[int], tmp_path: Path
) -> None:
    """The link may attempt in ``bins`` of every 4 bins of 200 us: pairs come at the
    continuous rate p/cycle times the link's share of time (1/4 or 1/2). From both
    devices' timelines: every attempt round starts in one of the link's bins, and its
    attempts fit in the link's time up to its end (gaps this short between bins are
    waited through, not re-requested)."""
    monkeypatch.setenv(ENV, str(tmp_path))
    link = (
        'model = "depolarise"\nfidelity = 0.9\np_success = 0.02\ncycle_ns = 1000\n'
        f"schedule = {{ bin_ns = 200000, period = 4, bins = {bins} }}"
    )
    cfg = network(TWO.format(speed=1.0, params="", link=link))
    n = 600
    r = await linkstats(cfg, monkeypatch, n)
    rate = cfg.links[0].model.rate_hz() * len(bins) / 4
    # heralds in a bin come at p/cycle; the gaps between the link's bins add to the
    # span; the first and last partial bins make up less than 4 sigma here
    assert close(r["rate_hz"], rate, rate / math.sqrt(n)), (r["rate_hz"], rate)
    for node in ("alice", "bob"):
        rounds = [s for s in node_spans(tmp_path, node)[0] if s["what"] == "round"]
        sched = cfg.links[0].schedule
        assert len(rounds) >= 3 and sched is not None
        for s in rounds:
            assert int(s["start"] // 200_000) % 4 in bins, (node, s)
            assert s["work_ns"] <= sched.time_in(s["start"], s["end"]) + 1e-6, (node, s)


async def test_a_request_for_an_app_that_left_waits_briefly_for_its_restart(
    autojump_clock: object, monkeypatch: pytest.MonkeyPatch
) -> None:
    """bob's app "b" leaves; alice asks for pairs with "b" before the next "b" is up
    (a restart, or the next phase of a script): the request waits for it. Had no app of
    that name come back, it would be refused after about a second, not at its deadline."""
    link = 'model = "perfect"\ncycle_ns = 1000'
    cfg = network(TWO.format(speed="inf", params="", link=link))

    async def first_b() -> None:
        async with sdk.connect("bob", app="b", qubits=1):
            pass

    async def alice(peer_app: str) -> tuple[list[sdk.Pair] | str, float]:
        t0 = trio.current_time()
        async with sdk.connect("alice", app=f"a-{peer_app}", qubits=1) as node:
            try:
                got = await node.epr_socket("bob", peer_app).create_measure(3, timeout=20)
            except sdk.EprError as exc:
                return exc.code, trio.current_time() - t0
        return got, trio.current_time() - t0

    async def second_b() -> list[sdk.Pair]:
        await trio.sleep(0.5)
        async with sdk.connect("bob", app="b", qubits=1) as node:
            return await node.epr_socket("alice", "a-b").recv_measure(3)

    async with running(cfg, monkeypatch):
        await first_b()
        async with sdk.connect("bob", app="gone", qubits=1):
            pass
        (got, _), mine = await both(lambda: alice("b"), second_b)
        refused, after = await alice("gone")
    assert isinstance(got, list) and [p.ent_id for p in got] == [p.ent_id for p in mine]
    assert refused == "REJECTED" and 0.9 < after < 2.0, (refused, after)
