"""Nested (doubling) swapping, the built-in ``Nested`` protocol named in the network
file, on a 4-hop chain in deterministic mode: the pairs are the same Werner pairs as
with swap-as-soon-as-possible (w = the product of the links'), and every end-to-end
pair was made in the nested order: n1 and n3 swapped before n2 joined their pairs
(from the repeaters' swap logs; a classical delay on every link makes the order
strict). With swap-as-soon-as-possible, n2 often swaps first."""

from __future__ import annotations

import math
from typing import Any

import pytest

from qnodeos.netlink.protocols import nesting
from qnodeos.testbed.local import service
from tests.conftest import network
from tests.network.test_e2e_local import both, chain_text, parity_sign, per_basis, running

FIDS = [0.95, 0.93, 0.97, 0.92]
NESTED = '[network]\nprotocol = "qnodeos.netlink.protocols:Nested"\n'


def test_nesting_splits_paths_in_halves() -> None:
    assert [nesting(8, i) for i in range(1, 8)] == [
        (0, 2, 2), (0, 4, 4), (2, 4, 2), (0, 8, None), (4, 6, 6), (4, 8, 4), (6, 8, 6),
    ]  # fmt: skip
    assert [nesting(3, i) for i in (1, 2)] == [(0, 3, None), (1, 3, 1)]


async def run(
    monkeypatch: pytest.MonkeyPatch, extra: str, n: int, name: str, **opts: Any
) -> tuple[list[Any], list[Any], dict[str, Any]]:
    text = chain_text(FIDS).replace("seed = 10", "delay_s = 1e-5\nseed = 10") + extra
    cfg = network(text, name=name)
    async with running(cfg, monkeypatch) as eps:
        a, b = await both(
            lambda: per_basis("n0", "n4", True, n, 600.0, **opts),
            lambda: per_basis("n4", "n0", False, n, 600.0),
        )
        nets = {r: service(eps[r]).kernel.net for r in ("n1", "n2", "n3")}
    return a, b, nets


def nested_order(nets: dict[str, Any]) -> tuple[int, int]:
    """(pairs whose n2 swap came strictly after both the n1 and n3 swaps it joins,
    pairs in all): n2's left link pair is n1's right one, its right is n3's left."""
    n1 = {right: t for t, _, _, right in nets["n1"].swap_log}
    n3 = {left: t for t, _, left, _ in nets["n3"].swap_log}
    after = sum(1 for t, _, left, right in nets["n2"].swap_log if n1[left] < t and n3[right] < t)
    return after, len(nets["n2"].swap_log)


async def test_nested_swapping_on_four_hops(
    autojump_clock: object, monkeypatch: pytest.MonkeyPatch
) -> None:
    n = 300  # per basis
    a, b, nets = await run(monkeypatch, NESTED, n, "nested")
    assert [p.ent_id for p in a] == [p.ent_id for p in b]
    assert all(net.protocol_name.endswith(":Nested") for net in nets.values())
    terms = [
        parity_sign(p.basis) * (1 - 2 * (p.outcome ^ q.outcome)) for p, q in zip(a, b, strict=True)
    ]
    w = math.prod((4 * f - 1) / 3 for f in FIDS)
    got = sum(terms) / len(terms)
    err = math.sqrt((1 - w * w) / len(terms))
    after, total = nested_order(nets)
    print(f"\nnested, 4 hops: w {got:.4f} (product {w:.4f} +- {err:.4f}); {after}/{total} nested")
    assert abs(got - w) <= 4 * err
    assert total == 3 * n and after == total

    _, _, asap = await run(monkeypatch, "", 40, "asap")
    after, total = nested_order(asap)
    print(f"swap as soon as possible: {after}/{total} in the nested order")
    assert after < total  # the check above can fail


async def test_a_request_may_ask_for_nested_swapping(
    autojump_clock: object, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No protocol in the network file (swap as soon as possible), but the request
    says ``policy="nested"``: its pairs are swapped in the nested order."""
    a, b, nets = await run(monkeypatch, "", 40, "per-request", policy="nested")
    assert [p.ent_id for p in a] == [p.ent_id for p in b]
    after, total = nested_order(nets)
    assert total == 120 and after == total
