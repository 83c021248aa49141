"""End-to-end distillation per request, in deterministic mode: the creating app asks
for measured pairs with ``distill`` and ``rounds`` (or ``target_fidelity``); the ends
distil the end-to-end pairs made over a repeater and deliver the survivors.

On Werner links with noiseless swaps the raw end-to-end pair is Werner with the product
of the links' Werner parameters, so the rounds' success rate and the delivered pairs'
fidelity must match the closed forms (``netlink.distill``) within 4 standard errors."""

from __future__ import annotations

import itertools
import math
from typing import Any

import pytest

from qnodeos import sdk
from qnodeos.config.network import NetworkConfig
from qnodeos.netlink.distill import after_rounds, levels, werner_product
from qnodeos.sdk.epr import EprError
from qnodeos.testbed.local import service
from tests.conftest import network
from tests.network.test_distill_link import PER, fidelity, kept_reads
from tests.network.test_e2e_local import both, chain_text, per_basis, running

FIDS = [0.9, 0.85]
NAMES = itertools.count()  # each test's network its own name: nothing of one reaches the next


def chain(qubits: int) -> NetworkConfig:
    return network(chain_text(FIDS).replace("qubits = 4", f"qubits = {qubits}"),
                   name=f"distil{next(NAMES)}")  # fmt: skip


async def distilled(
    monkeypatch: pytest.MonkeyPatch, n: int, **opts: Any
) -> tuple[list[Any], list[Any], Any]:
    """n distilled pairs n0 - n2 measured in each of X, Y, Z (one request per basis),
    both ends' lists, and the creating end's network stack."""
    cfg = chain(6)

    async with running(cfg, monkeypatch) as eps:
        a, b = await both(
            lambda: per_basis("n0", "n2", True, n, 600.0, **opts),
            lambda: per_basis("n2", "n0", False, n, 600.0),
        )
        net = service(eps["n0"]).kernel.net
    return a, b, net


@pytest.mark.parametrize("scheme, rounds", [("bbpssw", 1), ("dejmps", 1), ("dejmps", 2)])
async def test_distilled_pairs_match_the_closed_forms(
    autojump_clock: object, monkeypatch: pytest.MonkeyPatch, scheme: str, rounds: int
) -> None:
    n = 400  # per basis
    a, b, net = await distilled(monkeypatch, n, distill=scheme, rounds=rounds)
    assert sorted(p.ent_id for p in a) == sorted(p.ent_id for p in b)  # the same pairs
    assert len({p.ent_id for p in a}) == 3 * n
    a.sort(key=lambda p: p.ent_id)
    b.sort(key=lambda p: p.ent_id)
    f0 = werner_product(FIDS)
    want_f, _ = after_rounds(f0, scheme, rounds)
    f, err = fidelity(a, b)
    tries = net.distill_ok + net.distill_failed
    print(
        f"\n{scheme} x{rounds}: F = {f:.4f} +- {err:.4f} (closed form {want_f:.4f}, raw {f0:.4f});"
        f" rounds ok {net.distill_ok} / {tries}"
    )
    assert abs(f - want_f) < 4 * err
    if rounds == 1:
        p = levels(f0, scheme, 1)[0][0]
        rate = net.distill_ok / tries
        assert abs(rate - p) < 4 * math.sqrt(p * (1 - p) / tries), (rate, p)


async def test_a_target_fidelity_picks_the_rounds(
    autojump_clock: object, monkeypatch: pytest.MonkeyPatch
) -> None:
    """target 0.85 from F = 0.77 needs 2 DEJMPS rounds (1 reaches 0.83)."""
    a, b, net = await distilled(monkeypatch, 20, distill="dejmps", target_fidelity=0.85)
    assert sorted(p.ent_id for p in a) == sorted(p.ent_id for p in b)
    assert net.distill_ok >= 3 * 20 * 3


async def test_an_unreachable_target_fails_clearly(
    autojump_clock: object, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Both apps are told why, and the rest of the network goes on."""
    with pytest.raises(BaseExceptionGroup) as info:
        await distilled(monkeypatch, 2, distill="bbpssw", target_fidelity=0.9999)
    errors = info.value.subgroup(EprError)
    assert errors is not None
    flat: list[BaseException] = []
    todo: list[BaseException] = [errors]
    while todo:
        e = todo.pop()
        todo += list(e.exceptions) if isinstance(e, BaseExceptionGroup) else []
        flat += [] if isinstance(e, BaseExceptionGroup) else [e]
    assert len(flat) == 2, flat
    assert all("target fidelity 0.9999 is beyond 8 rounds of bbpssw" in str(e) for e in flat)


async def test_bad_distillation_options_are_refused(
    autojump_clock: object, monkeypatch: pytest.MonkeyPatch
) -> None:
    cfg = chain(4)
    async with running(cfg, monkeypatch):
        async with sdk.connect("n0", app="app", qubits=1) as conn:
            epr = conn.epr_socket("n2", "app")
            with pytest.raises(EprError, match="known: bbpssw, dejmps"):
                await epr.create_measure(2, distill="nope", rounds=1)
            with pytest.raises(EprError, match="known: asap, nested"):
                await epr.create_measure(2, policy="nope")
            with pytest.raises(EprError, match="needs rounds"):
                await epr.create_measure(2, distill="dejmps")
            with pytest.raises(EprError, match="distilling needs 5 qubits"):
                await epr.create_measure(2, distill="dejmps", rounds=3)


async def test_kept_pairs_distilled_end_to_end_match_the_closed_form(
    autojump_clock: object, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Kept pairs over the repeater, one DEJMPS round: the apps get them in Phi+ in the
    same order, with the closed form's fidelity (within 4 standard errors)."""
    requests = 40
    cfg = chain(PER + 3)
    async with running(cfg, monkeypatch):
        a, b = await both(
            lambda: kept_reads("n0", "n2", True, requests, distill="dejmps", rounds=1),
            lambda: kept_reads("n2", "n0", False, requests),
        )
    assert [x.ent_id for x in a] == [x.ent_id for x in b]
    assert len({x.ent_id for x in a}) == PER * requests
    want_f = after_rounds(werner_product(FIDS), "dejmps", 1)[0]
    f, err = fidelity(a, b)
    print(f"\nkept e2e dejmps: F = {f:.4f} +- {err:.4f} (closed form {want_f:.4f})")
    assert abs(f - want_f) < 4 * err
    assert {x.goodness for x in a} == {x.goodness for x in b}
