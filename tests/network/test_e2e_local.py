"""End-to-end pairs over repeaters in deterministic mode (a whole network in one trio
run on MockClock): the unchanged EPR socket API to a node with no link, one id at both
ends, Phi+-frame results, and Werner parameters multiplying over perfect swaps.

Tolerances: 4 standard errors of the estimate, computed from the expected value."""

from __future__ import annotations

import math
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import pytest
import trio

import qnodeos.sdk.client as client
from qnodeos import sdk
from qnodeos.config.network import NetworkConfig
from qnodeos.testbed.local import local_network, service
from tests.conftest import network


def chain(n: int, link: str, device: str = "generic", extra: str = "") -> NetworkConfig:
    """``n`` + 1 nodes n0 .. n{n} in a line, every link ``link``."""
    body = ""
    for i in range(n + 1):
        body += f'[nodes.n{i}]\ndevice = "{device}"\nqubits = 4\nspeed = 1.0\nseed = {i + 1}\n'
        body += extra.format(node=f"n{i}")
    for i in range(n):
        body += f'[[links]]\nnodes = ["n{i}", "n{i + 1}"]\n{link}\nseed = {100 + i}\n'
    return network(body)


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


PERFECT = 'model = "perfect"\ncycle_ns = 1000'


async def per_basis(
    me: str, other: str, create: bool, n: int, timeout: float, **opts: Any
) -> list[Any]:
    """App "app" on ``me``: ``n`` measured pairs with app "app" on ``other`` in each of
    X, Y and Z, one request per basis (``opts``: the creator's extra options)."""
    out: list[Any] = []
    async with sdk.connect(me, app="app", qubits=1) as conn:
        epr = conn.epr_socket(other, "app")
        for basis in "XYZ":
            if create:
                out += await epr.create_measure(n, bases=basis, timeout=timeout, **opts)
            else:
                out += await epr.recv_measure(n, bases=basis, timeout=timeout)
    return out


async def test_kept_pair_to_a_non_neighbour_is_phi_plus_with_one_id(
    autojump_clock: object, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Perfect links and gates: a kept end-to-end pair over 2 hops is exactly Phi+
    (ZZ and XX outcomes agree every time), whatever the swap outcomes were."""
    cfg = chain(2, PERFECT)
    shots = 40

    async def side(me: str, other: str, create: bool) -> list[tuple[Any, int, int]]:
        out = []
        async with sdk.connect(me, app="app", qubits=1) as conn:
            epr = conn.epr_socket(other, "app")
            for i in range(shots):
                (pair,) = await (epr.create_keep() if create else epr.recv_keep())
                q = pair.qubit
                assert q is not None
                async with conn.block():
                    if i % 2:
                        q.h()
                    mm = q.measure()
                out.append((pair.ent_id, pair.bell_index, mm.value))
        return out

    async with running(cfg, monkeypatch):
        a, b = await both(lambda: side("n0", "n2", True), lambda: side("n2", "n0", False))
    assert [x[0] for x in a] == [x[0] for x in b]  # one id at both ends, same order
    assert all(x[0][:2] == ("n0", "n2") for x in a)
    assert len({x[0] for x in a}) == shots
    assert [x[2] for x in a] == [x[2] for x in b]  # Phi+: XX = ZZ = +1
    assert len({x[1] for x in a}) > 1  # the swaps really left different Bell states
    assert a[0][1] == b[0][1]


async def test_measured_pairs_over_three_hops_read_as_phi_plus(
    autojump_clock: object, monkeypatch: pytest.MonkeyPatch
) -> None:
    cfg = chain(3, PERFECT)
    n = 60

    async def side(me: str, other: str, create: bool) -> list[Any]:
        async with sdk.connect(me, app="app", qubits=1) as conn:
            epr = conn.epr_socket(other, "app")
            call = epr.create_measure if create else epr.recv_measure
            return list(await call(n, bases="XYZ"))

    async with running(cfg, monkeypatch):
        a, b = await both(lambda: side("n0", "n3", True), lambda: side("n3", "n0", False))
    assert [p.ent_id for p in a] == [p.ent_id for p in b]
    same = [(p, q) for p, q in zip(a, b, strict=True) if p.basis == q.basis]
    assert len(same) > 10
    for p, q in same:  # Phi+: equal in X and Z, opposite in Y
        assert (p.outcome ^ q.outcome) == (1 if p.basis == "Y" else 0), (p, q)


def werner_link(f: float) -> str:
    return f'model = "depolarise"\nfidelity = {f}\np_success = 0.5\ncycle_ns = 1000'


def chain_of(fids: list[float]) -> NetworkConfig:
    return network(chain_text(fids))


def chain_text(fids: list[float]) -> str:
    body = ""
    for i in range(len(fids) + 1):
        body += f'[nodes.n{i}]\ndevice = "generic"\nqubits = 4\nspeed = 1.0\nseed = {i + 1}\n'
    for i, f in enumerate(fids):
        body += f'[[links]]\nnodes = ["n{i}", "n{i + 1}"]\n{werner_link(f)}\nseed = {100 + i}\n'
    return body


def parity_sign(basis: str) -> int:
    return -1 if basis == "Y" else 1  # Phi+: <XX> = <ZZ> = +1, <YY> = -1


@pytest.mark.parametrize("fids", [[0.9, 0.85], [0.95, 0.93, 0.97, 0.92]])
async def test_werner_parameters_multiply_over_perfect_swaps_measured(
    autojump_clock: object, monkeypatch: pytest.MonkeyPatch, fids: list[float]
) -> None:
    """Werner links w_i = (4F_i - 1)/3, noiseless swaps: the end-to-end pair is Werner
    with w = prod w_i, so each same-basis correlator (sign-corrected for Y) is w; the
    mean of N such +-1 terms has standard error sqrt((1 - w^2)/N)."""
    cfg = chain_of(fids)
    last = f"n{len(fids)}"
    n = 300  # per basis
    async with running(cfg, monkeypatch):
        a, b = await both(
            lambda: per_basis("n0", last, True, n, 60.0),
            lambda: per_basis(last, "n0", False, n, 60.0),
        )
    assert [p.ent_id for p in a] == [p.ent_id for p in b]
    pairs = zip(a, b, strict=True)
    terms = [parity_sign(p.basis) * (1 - 2 * (p.outcome ^ q.outcome)) for p, q in pairs]
    w = math.prod((4 * f - 1) / 3 for f in fids)
    got = sum(terms) / len(terms)
    err = math.sqrt((1 - w * w) / len(terms))
    print(f"w measured {got:.4f}, predicted {w:.4f}, stderr {err:.4f}")
    assert abs(got - w) <= 4 * err, (got, w, err)
    f_got, f_want = (3 * got + 1) / 4, (3 * w + 1) / 4
    assert abs(f_got - f_want) <= 3 * err  # F = (3w + 1)/4: 3/4 of w's error, and then some


def correlators(a: list[Any], b: list[Any]) -> dict[str, tuple[float, int]]:
    """Per basis: the mean of (-1)^(o1 + o2) over pairs both measured in it, and how many."""
    out: dict[str, tuple[float, int]] = {}
    for basis in "XYZ":
        terms = [
            1 - 2 * (p.outcome ^ q.outcome)
            for p, q in zip(a, b, strict=True)
            if p.basis == q.basis == basis
        ]
        out[basis] = (sum(terms) / len(terms), len(terms))
    return out


async def test_gate_and_readout_noise_at_the_repeater_match_the_prediction(
    autojump_clock: object, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Werner links w1, w2; at the repeater, CNOT depolarising p2, H depolarising p1,
    readout flips p01/p10 (the ends noiseless). The CNOT's error leaves the ends
    maximally mixed: w = (1 - p2) w1 w2. A depolarised or misread left half makes a
    wrong Z correction (prob q_z = p1/2 (+) e, e = (p01 + p10)/2, (+) the XOR of two
    independent flips), a misread right half a wrong X one (q_x = e). So <XX> = w(1 -
    2 q_z), <ZZ> = w(1 - 2 q_x), <YY> = -w(1 - 2 q_z)(1 - 2 q_x); each within 4 sigma."""
    p1, p2, p01, p10 = 0.04, 0.05, 0.03, 0.01
    noise = (
        f"[nodes.n1.params.kinds.qubit.gates.h]\nerror = {p1}\n"
        f"[nodes.n1.params.two_qubit.cnot.spec]\nerror = {p2}\n"
        f"[nodes.n1.params.kinds.qubit.meas]\np01 = {p01}\np10 = {p10}\n"
    )
    fids = [0.95, 0.9]
    cfg = network(chain_text(fids) + noise)
    n = 400
    async with running(cfg, monkeypatch):
        a, b = await both(
            lambda: per_basis("n0", "n2", True, n, 60.0),
            lambda: per_basis("n2", "n0", False, n, 60.0),
        )
    w = (1 - p2) * math.prod((4 * f - 1) / 3 for f in fids)
    e = (p01 + p10) / 2
    qz = (p1 / 2) * (1 - e) + e * (1 - p1 / 2)
    want = {"X": w * (1 - 2 * qz), "Z": w * (1 - 2 * e), "Y": -w * (1 - 2 * qz) * (1 - 2 * e)}
    got = correlators(a, b)
    for basis, (c, k) in got.items():
        err = math.sqrt((1 - want[basis] ** 2) / k)
        print(f"<{basis}{basis}> measured {c:.4f}, predicted {want[basis]:.4f} +- {err:.4f}")
        assert abs(c - want[basis]) <= 4 * err, (basis, c, want[basis], err)


async def test_kept_pairs_over_two_hops_are_werner_with_the_product(
    autojump_clock: object, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Kept halves measured by the apps in X, Y or Z: the same correlators as for
    measured pairs, w = w1 w2 (noiseless devices), within 4 sigma."""
    fids = [0.92, 0.88]
    cfg = network(chain_text(fids))
    n = 150  # per basis

    async def side(me: str, other: str, create: bool) -> list[tuple[str, int]]:
        out = []
        async with sdk.connect(me, app="app", qubits=1) as conn:
            epr = conn.epr_socket(other, "app")
            for i in range(3 * n):
                basis = "XYZ"[i % 3]
                (pair,) = await (epr.create_keep() if create else epr.recv_keep())
                q = pair.qubit
                assert q is not None
                async with conn.block():
                    if basis == "X":
                        q.h()
                    elif basis == "Y":
                        q.rx(math.pi / 2)
                    mm = q.measure()
                out.append((basis, mm.value))
        return out

    async with running(cfg, monkeypatch):
        a, b = await both(lambda: side("n0", "n2", True), lambda: side("n2", "n0", False))
    w = math.prod((4 * f - 1) / 3 for f in fids)
    for basis in "XYZ":
        terms = [1 - 2 * (x ^ y) for (s, x), (_, y) in zip(a, b, strict=True) if s == basis]
        c = sum(terms) / len(terms) * parity_sign(basis)
        err = math.sqrt((1 - w * w) / len(terms))
        print(f"kept <{basis}{basis}> (sign-corrected) {c:.4f}, predicted {w:.4f} +- {err:.4f}")
        assert abs(c - w) <= 4 * err, (basis, c, w, err)


async def test_a_repeater_with_qubits_to_spare_pipelines_and_batches(
    autojump_clock: object, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A repeater of 16 qubits holds 8 link pairs per side: its links make 8 pairs per
    round and its swaps go to the device 8 at a time (perfect links); the pairs are as
    good (ZZ and XX agree every time) and both ends have the same ones."""
    body = ""
    for i in range(3):
        body += f'[nodes.n{i}]\ndevice = "generic"\nqubits = 16\nspeed = 1.0\nseed = {i + 1}\n'
    for i in range(2):
        body += f'[[links]]\nnodes = ["n{i}", "n{i + 1}"]\n{PERFECT}\nseed = {100 + i}\n'
    cfg = network(body, name="window")
    n = 400
    async with running(cfg, monkeypatch) as eps:
        a, b = await both(
            lambda: per_basis("n0", "n2", True, n, 60.0),
            lambda: per_basis("n2", "n0", False, n, 60.0),
        )
        rep = service(eps["n1"]).kernel.net
    assert [p.ent_id for p in a] == [p.ent_id for p in b]
    assert all(p.outcome ^ q.outcome == (p.basis == "Y") for p, q in zip(a, b, strict=True))
    swaps = len(rep.swap_log)
    batches = len({(round(t, 12), c) for t, c, _, _ in rep.swap_log})
    print(f"\nrepeater: {rep.rounds} rounds and {batches} swap batches for {swaps} swaps")
    assert swaps == 3 * n
    assert rep.rounds <= 2 * 3 * n / 8 + 6  # 8 pairs a round (and a few short ones)
    assert batches <= 3 * n / 8 + 6
