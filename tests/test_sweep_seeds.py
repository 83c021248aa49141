"""``qnodeos sweep --repeat``: every repeat after the first shifts every seed of the
network, a ``[chain]``'s included, so repeats are independent runs."""

from __future__ import annotations

from pathlib import Path

import qnodeos
from qnodeos.config import overrides
from qnodeos.config.network import parse_network
from qnodeos.facade.sweep import _seed_shifts

CHAIN = Path(qnodeos.__file__).parent / "data" / "chain.toml"


def seeds(text: str, settings: list[str]) -> dict[str, int | None]:
    net = parse_network(overrides.applied(text, "chain", None, settings), "chain")
    out = {n: c.seed for n, c in net.nodes.items()}
    out.update({"-".join(lk.nodes): lk.seed for lk in net.links})
    return out


def test_a_repeat_shifts_every_seed_of_a_chain() -> None:
    text = CHAIN.read_text()
    first = seeds(text, ["chain.nodes=3"])
    assert first == {"n0": 1, "n1": 2, "n2": 3, "n0-n1": 11, "n1-n2": 12}
    second = seeds(text, ["chain.nodes=3", *_seed_shifts(text, 1, ["chain.nodes=3"])])
    assert second == {k: v + 1000 for k, v in first.items() if v is not None}
    assert _seed_shifts(text, 0) == []


def test_a_repeat_shifts_the_seeds_the_sweep_sets_too() -> None:
    text = CHAIN.read_text()
    given = ["chain.link.seed=40", "chain.node.seed=7"]
    assert _seed_shifts(text, 2, given) == ["chain.node.seed=2007", "chain.link.seed=2040"]


def test_repeats_of_the_chain_are_different_runs(tmp_path: Path) -> None:
    rows = qnodeos.Network.shipped("chain").sweep(
        "chain.link.fidelity=0.97:0.97:1", "chain.nodes=3", "apps.a.args.pairs=40",
        "apps.b.args.pairs=40",
        repeat=2, deterministic=True, lean=True, out=tmp_path,
    )  # fmt: skip
    assert [r["repeat"] for r in rows] == [0, 1]
    assert rows[0]["a.rate_hz"] != rows[1]["a.rate_hz"]
