"""The shipped `chain` network (qnodeos run chain) in deterministic mode: 4 hops, no app
at the repeaters, e2estats's fidelity next to its prediction within 4 standard errors."""

from __future__ import annotations

import qnodeos


def test_chain_runs_and_its_fidelity_matches_the_prediction() -> None:
    res = qnodeos.Network.shipped("chain").set("apps.a.args.pairs=600", "apps.b.args.pairs=600")
    run = res.run(deterministic=True)
    r = run["a"]
    # pairs.csv / Results: each end-to-end pair with its path, swaps and age at delivery
    rows = [p for p in run.pair_rows if p["app"] == "a"]
    assert len(rows) == 600
    assert {p["path"] for p in rows} == {"n0-n1-n2-n3-n4"}
    assert {int(p["swaps"]) for p in rows} == {3}
    assert all(float(p["age_s"]) >= 0 for p in rows)
    assert r["path"] == ["n0", "n1", "n2", "n3", "n4"]
    w = ((4 * 0.97 - 1) / 3) ** 4
    assert abs(r["predicted_fidelity"] - (3 * w + 1) / 4) < 1e-12
    assert abs(r["fidelity"] - r["predicted_fidelity"]) <= 4 * r["fidelity_stderr"]


def test_chain_takes_a_cutoff_from_the_command_line() -> None:
    net = qnodeos.Network.shipped("chain").set(
        "network.args.cutoff_s=0.0001", "apps.a.args.pairs=90", "apps.b.args.pairs=90"
    )
    assert net.config.protocol_args == {"cutoff_s": 0.0001}
    run = net.run(deterministic=True)
    assert run["a"]["pairs"] == 90 and run["b"]["pairs"] == 90
