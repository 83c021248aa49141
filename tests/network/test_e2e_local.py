"""End-to-end pairs over repeaters in deterministic mode (a whole network in one trio
run on MockClock): the unchanged EPR socket API to a node with no link, one id at both
ends, Phi+-frame results, and Werner parameters multiplying over perfect swaps.

Tolerances: 4 standard errors of the estimate, computed from the expected value."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import pytest
import trio

import qnodeos.sdk.client as client
from qnodeos import sdk
from qnodeos.config.network import NetworkConfig
from qnodeos.testbed.local import local_network
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
async def running(cfg: NetworkConfig, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[None]:
    async with local_network(cfg) as eps:
        monkeypatch.setattr(client, "resolve_endpoint", lambda node, _n, _e: eps[node])
        yield


async def both(*calls: Callable[[], Awaitable[Any]]) -> list[Any]:
    out: list[Any] = [None] * len(calls)

    async def one(i: int) -> None:
        out[i] = await calls[i]()

    async with trio.open_nursery() as n:
        for i in range(len(calls)):
            n.start_soon(one, i)
    return out


PERFECT = 'model = "perfect"\ncycle_ns = 1000'


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
