"""Distillation on one link (two neighbours, no repeater), in deterministic mode: the
creating app asks a neighbour for distilled pairs; the two ends distil the link's
pairs over a circuit of one hop, as they do end-to-end ones.

A depolarising link makes Werner pairs of its fidelity, so the rounds' success rate and
the delivered pairs' fidelity must match the closed forms (``netlink.distill``) within
4 standard errors."""

from __future__ import annotations

import itertools
import math
import random
from typing import Any, NamedTuple

import msgspec
import pytest
import trio

from qnodeos import sdk
from qnodeos.config.network import NetworkConfig
from qnodeos.errors import ProtocolError
from qnodeos.lang import codec
from qnodeos.lang import messages as m
from qnodeos.netlink.distill import after_rounds, levels
from qnodeos.sdk.epr import EprError
from qnodeos.testbed.local import service
from tests.conftest import network
from tests.network.distil_policy import KeepOlder
from tests.network.test_e2e_local import both, chain_text, per_basis, running

F_LINK = 0.8
PER = 4  # kept pairs per request
NAMES = itertools.count()


def link(qubits: int) -> NetworkConfig:
    return network(chain_text([F_LINK]).replace("qubits = 4", f"qubits = {qubits}"),
                   name=f"distil-link{next(NAMES)}")  # fmt: skip


def fidelity(a: list[Any], b: list[Any]) -> tuple[float, float]:
    """F = (1 + <XX> - <YY> + <ZZ>)/4, and its standard error."""
    f, var = 0.25, 0.0
    for basis in "XYZ":
        same = [(p, q) for p, q in zip(a, b, strict=True) if p.basis == q.basis == basis]
        sign = -1 if basis == "Y" else 1
        vals = [sign * (1 - 2 * (p.outcome ^ q.outcome)) for p, q in same]
        mean = sum(vals) / len(vals)
        f += mean / 4
        var += (1 - mean**2) / len(vals) / 16
    return f, math.sqrt(var)


def match_closed_forms(what: str, a: list[Any], b: list[Any], net: Any, scheme: str) -> None:
    """One round of ``scheme`` on Werner pairs of ``F_LINK``: the pairs ``a`` and ``b``
    (the two ends', in one order) have the closed form's fidelity, the creating end's
    rounds (``net``) its success probability, within 4 standard errors; both ends report
    the closed form's fidelity as the pairs' goodness."""
    want_f = after_rounds(F_LINK, scheme, 1)[0]
    f, err = fidelity(a, b)
    tries = net.distill_ok + net.distill_failed
    p = levels(F_LINK, scheme, 1)[0][0]
    rate = net.distill_ok / tries
    print(f"\n{what}: F = {f:.4f} +- {err:.4f} ({want_f:.4f}); ok {net.distill_ok}/{tries}")
    assert abs(f - want_f) < 4 * err
    assert abs(rate - p) < 4 * math.sqrt(p * (1 - p) / tries), (rate, p)
    goods = {x.goodness for x in a} | {x.goodness for x in b}  # both ends predict the same
    assert len(goods) == 1 and goods.pop() == pytest.approx(want_f)


@pytest.mark.parametrize("scheme", ["bbpssw", "dejmps"])
async def test_measured_pairs_distilled_on_a_link_match_the_closed_forms(
    autojump_clock: object, monkeypatch: pytest.MonkeyPatch, scheme: str
) -> None:
    n = 200  # per basis
    async with running(link(5), monkeypatch) as eps:
        a, b = await both(
            lambda: per_basis("n0", "n1", True, n, 600.0, distill=scheme, rounds=1),
            lambda: per_basis("n1", "n0", False, n, 600.0),
        )
        net = service(eps["n0"]).kernel.net
    assert sorted(p.ent_id for p in a) == sorted(p.ent_id for p in b)  # the same pairs
    assert len({p.ent_id for p in a}) == 3 * n
    a.sort(key=lambda p: p.ent_id)
    b.sort(key=lambda p: p.ent_id)
    match_closed_forms(f"measured {scheme}", a, b, net, scheme)


async def test_both_ends_measure_each_pair_in_the_basis_chosen_for_its_place(
    autojump_clock: object, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Several last-level rounds in flight (a target fidelity that needs 2 rounds, room
    for 10 pairs): pair i is delivered i-th at both ends and measured in ``chosen[i]``
    at both. (Both ends finish last-level rounds in one order: the receiving end runs
    a round only once the creator's outcome is there and settles it when it ran, and
    the creator settles it when the receiving end's outcome comes.)"""
    n = 24
    chosen = "".join(random.Random(5).choice("XYZ") for _ in range(n))

    async def side(me: str, other: str, role: str) -> list[Any]:
        async with sdk.connect(me, app="app", qubits=1) as conn:
            epr = conn.epr_socket(other, "app")
            req = m.EprRequest(
                req=1, remote_node=other, remote_app="app", role=role, kind="M", number=n,
                timeout_s=600.0, bases="XYZ", chosen=chosen,
                distill="dejmps" if role == "create" else "",
                target_fidelity=0.86 if role == "create" else 0.0,
            )  # fmt: skip
            return await epr._link.collect(req)

    async with running(link(12), monkeypatch) as eps:
        a, b = await both(lambda: side("n0", "n1", "create"), lambda: side("n1", "n0", "recv"))
        net = service(eps["n0"]).kernel.net
    assert [p.ent_id for p in a] == [p.ent_id for p in b]
    assert "".join(p.basis for p in a) == "".join(p.basis for p in b) == chosen
    assert net.distill_failed > 0  # places of failed rounds were taken by later ones


class Read(NamedTuple):
    """A kept pair's half as its app measured it."""

    ent_id: tuple[str, str, int]
    basis: str
    outcome: int
    goodness: float


async def kept_reads(me: str, other: str, create: bool, requests: int, **opts: Any) -> list[Read]:
    """``requests`` requests of ``PER`` distilled kept pairs; the app measures the i-th
    pair it gets in basis ``"XYZ"[i % 3]`` (the same at both ends: they get the pairs in
    the same order)."""
    out: list[Read] = []
    async with sdk.connect(me, app="app", qubits=PER) as conn:
        epr = conn.epr_socket(other, "app")
        for _ in range(requests):
            call = epr.create_keep(PER, timeout=600.0, **opts) if create else epr.recv_keep(PER)
            pairs = await call
            futures = []
            async with conn.block():
                for j, pair in enumerate(pairs):
                    q = pair.qubit
                    assert q is not None and pair.bell_index == 0
                    basis = "XYZ"[(len(out) + j) % 3]
                    if basis == "X":
                        q.h()
                    elif basis == "Y":
                        q.rx(math.pi / 2)  # the same at both ends: <YY> of Phi+ is -1
                    futures.append((pair, basis, q.measure()))
            out += [Read(p.ent_id, b, int(f.value), p.goodness) for p, b, f in futures]
    return out


@pytest.mark.parametrize("scheme", ["bbpssw", "dejmps"])
async def test_kept_pairs_distilled_on_a_link_match_the_closed_forms(
    autojump_clock: object, monkeypatch: pytest.MonkeyPatch, scheme: str
) -> None:
    requests = 60
    async with running(link(PER + 3), monkeypatch) as eps:
        a, b = await both(
            lambda: kept_reads("n0", "n1", True, requests, distill=scheme, rounds=1),
            lambda: kept_reads("n1", "n0", False, requests),
        )
        net = service(eps["n0"]).kernel.net
    assert [x.ent_id for x in a] == [x.ent_id for x in b]  # the same pairs, in order
    assert len({x.ent_id for x in a}) == PER * requests
    match_closed_forms(f"kept {scheme}", a, b, net, scheme)


def with_protocol(path: str) -> NetworkConfig:
    text = f'[network]\nprotocol = "{path}"\n' + chain_text([F_LINK])
    return network(text.replace("qubits = 4", "qubits = 6"), name=f"distil-link{next(NAMES)}")


async def test_a_distillation_policy_from_the_network_file_chooses_the_pairs(
    autojump_clock: object, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``KeepOlder`` (tests/network/distil_policy.py) overrides ``distil``: the rounds run
    are the ones it chose, and the delivered pairs are the older pairs it kept."""
    KeepOlder.chosen.clear()
    n = 12
    async with running(with_protocol("tests.network.distil_policy:KeepOlder"), monkeypatch):
        a, b = await both(
            lambda: per_basis("n0", "n1", True, n, 600.0, distill="dejmps", rounds=2),
            lambda: per_basis("n1", "n0", False, n, 600.0),
        )
    assert sorted(p.ent_id for p in a) == sorted(p.ent_id for p in b)
    chosen = KeepOlder.chosen
    assert chosen and all(keep < target for _, keep, target in chosen)  # the older kept
    assert {lv for lv, _, _ in chosen} == {0, 1}
    last = {keep for lv, keep, _ in chosen if lv == 1}
    assert {p.ent_id[2] for p in a} <= last  # what it kept at the last level, delivered


async def test_a_wrong_distillation_choice_ends_the_request_naming_the_policy(
    autojump_clock: object, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Both apps are told, naming the policy and its choice."""

    async def side(me: str, other: str, create: bool) -> None:
        async with sdk.connect(me, app="app", qubits=1) as conn:
            epr = conn.epr_socket(other, "app")
            with pytest.raises(EprError, match=r"SamePair at 'n0' chose to distil: Distill"):
                if create:
                    await epr.create_measure(2, distill="dejmps", rounds=1, timeout=60.0)
                else:
                    await epr.recv_measure(2, timeout=60.0)

    async with running(with_protocol("tests.network.bad_protocol:SamePair"), monkeypatch):
        await both(lambda: side("n0", "n1", True), lambda: side("n1", "n0", False))


async def test_bbpssw_twirls_so_two_rounds_match_the_closed_form(
    autojump_clock: object, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two BBPSSW rounds: the first round's output is not Werner; the twirl before the
    second (random bilateral rotations both ends apply, drawn by the creator) makes it
    so, and the delivered pairs have the closed form's fidelity (within 4 standard
    errors)."""
    n = 100  # per basis
    async with running(link(5), monkeypatch):
        a, b = await both(
            lambda: per_basis("n0", "n1", True, n, 600.0, distill="bbpssw", rounds=2),
            lambda: per_basis("n1", "n0", False, n, 600.0),
        )
    a.sort(key=lambda p: p.ent_id)
    b.sort(key=lambda p: p.ent_id)
    assert [p.ent_id for p in a] == [p.ent_id for p in b] and len(a) == 3 * n
    want_f = after_rounds(F_LINK, "bbpssw", 2)[0]
    f, err = fidelity(a, b)
    print(f"\nbbpssw x2: F = {f:.4f} +- {err:.4f} (closed form {want_f:.4f})")
    assert abs(f - want_f) < 4 * err
    assert {p.goodness for p in a} == {p.goodness for p in b} == {want_f}


def test_the_distillation_messages_round_trip_and_bad_ones_are_refused() -> None:
    c = codec.node_to_node()
    good = [
        m.NetSetup(circuit=1, path=["a", "b"], purpose="a/x|b/y", kind="K", number=2,
                   timeout_s=5.0, distill="bbpssw", rounds=2),
        m.NetDistil(origin="a", circuit=1, keep=4, target=3, level=1, outcome=1, rounds=2,
                    fidelity=0.8, twirl=[0, 11]),
    ]  # fmt: skip
    for body in good:
        msg = m.Net(from_node="a", msg=body)
        assert c.decode(c.encode(msg)) == msg
    bad = [
        msgspec.structs.replace(good[0], path=["a"]),  # one node is no link
        msgspec.structs.replace(good[1], twirl=[12, 0]),  # one of 12
        msgspec.structs.replace(good[1], twirl=[0, 1, 2]),  # one per pair
        msgspec.structs.replace(good[1], fidelity=1.5),
    ]
    for body in bad:
        with pytest.raises(ProtocolError):
            c.decode(c.encode(m.Net(from_node="a", msg=body)))


@pytest.mark.parametrize("late", ["creator", "receiver"])
async def test_either_app_may_ask_first(
    autojump_clock: object, monkeypatch: pytest.MonkeyPatch, late: str
) -> None:
    """The receiving app asks on the link as always: if it asked first, it waits on the
    link and is moved to the creator's circuit when its setup comes; if it asks after
    the setup came, it joins the circuit at once."""

    async def side(me: str, other: str, create: bool) -> list[Any]:
        if late == ("creator" if create else "receiver"):
            await trio.sleep(0.5)
        async with sdk.connect(me, app="app", qubits=1) as conn:
            epr = conn.epr_socket(other, "app")
            if create:
                return await epr.create_measure(6, distill="dejmps", rounds=1, timeout=60.0)
            return await epr.recv_measure(6, timeout=60.0)

    async with running(link(5), monkeypatch):
        a, b = await both(lambda: side("n0", "n1", True), lambda: side("n1", "n0", False))
    assert [p.ent_id for p in a] == [p.ent_id for p in b] and len(a) == 6
