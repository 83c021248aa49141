"""The shipped `chain` network (qnodeos run chain) in deterministic mode: 4 hops, no app
at the repeaters, e2estats's fidelity next to its prediction within 4 standard errors."""

from __future__ import annotations

import qnodeos


def test_chain_runs_and_its_fidelity_matches_the_prediction() -> None:
    res = qnodeos.Network.shipped("chain").set("apps.a.args.pairs=600", "apps.b.args.pairs=600")
    r = res.run(deterministic=True)["a"]
    assert r["path"] == ["n0", "n1", "n2", "n3", "n4"]
    w = ((4 * 0.97 - 1) / 3) ** 4
    assert abs(r["predicted_fidelity"] - (3 * w + 1) / 4) < 1e-12
    assert abs(r["fidelity"] - r["predicted_fidelity"]) <= 4 * r["fidelity_stderr"]
