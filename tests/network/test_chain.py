"""The shipped `chain` network (qnodeos run chain) in deterministic mode: 4 hops, no app
at the repeaters, its fidelity next to its prediction within 4 standard errors; and a
sweep over its number of nodes."""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path

import pytest

import qnodeos
from qnodeos.apps.chain import format_result, turns_model, turns_policy
from qnodeos.netlink.chaintheory import turns_time_ns
from qnodeos.testbed.plot import plot_sweep


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


def test_the_hop_sweep_rows_hold_measured_and_predicted_values_that_agree(
    tmp_path: Path,
) -> None:
    """``qnodeos sweep chain --set chain.nodes=2,3,5`` (deterministic, small): each row's
    fidelity within 4 standard errors of the Werner product; the rate within 4 of the
    swap-ASAP prediction over one hop (a plain link), within 4 of the one-link-at-a-time
    repeater's closed form over two hops, and between the two bounds beyond; and
    ``qnodeos plot`` draws it."""
    n = 300
    rows = qnodeos.Network.shipped("chain").sweep(
        "chain.nodes=2,3,5", f"apps.a.args.pairs={n}", f"apps.b.args.pairs={n}",
        deterministic=True, lean=True, out=tmp_path,
    )  # fmt: skip
    assert [r["chain.nodes"] for r in rows] == [2, 3, 5]
    p, cycle_s = 0.2, 10e-6
    for r in rows:
        hops = r["chain.nodes"] - 1
        assert r["a.hops"] == hops and r["a.pairs"] == n
        f = r["a.fidelity_theory"]
        assert f == pytest.approx((3 * ((4 * 0.97 - 1) / 3) ** hops + 1) / 4)
        # F's spread from three correlators of ~n/9 pairs each, at the predicted F
        f_err = math.sqrt(3 * (1 - (4 * f - 1) ** 2 / 9) / (n / 9)) / 4
        assert abs(r["a.fidelity"] - f) <= 4 * f_err, r
        rate, err = r["a.rate_hz"], r["a.rate_hz_stderr"]
        assert r["a.rate_hz_sequential"] == pytest.approx(p / cycle_s / hops)
        assert r["a.rate_hz_sequential"] - 4 * err <= rate <= r["a.rate_hz_theory"] + 4 * err, r
        print(
            f"\n{hops} hop(s): F = {r['a.fidelity']:.3f} (predicted {f:.3f}), rate = "
            f"{rate:.0f} ± {err:.0f}/s (swap ASAP {r['a.rate_hz_theory']:.0f}, one link at "
            f"a time {r['a.rate_hz_sequential']:.0f})"
        )
    one, two = rows[0], rows[1]
    assert one["a.rate_hz_theory"] == pytest.approx(p / cycle_s)
    assert abs(one["a.rate_hz"] - one["a.rate_hz_theory"]) <= 4 * one["a.rate_hz_stderr"]
    ideal = (3 - 2 * p) / (p * (2 - p)) * cycle_s
    assert two["a.rate_hz_theory"] == pytest.approx(1 / ideal)
    assert abs(two["a.rate_hz"] - two["a.rate_hz_sequential"]) <= 4 * two["a.rate_hz_stderr"]
    png = plot_sweep(tmp_path, None, ["a.fidelity", "a.rate_hz"])
    assert png.stat().st_size > 10_000


@pytest.mark.parametrize("hops", [3, 4])
def test_the_rate_over_3_and_4_hops_matches_links_taking_turns(hops: int) -> None:
    """The measured rate (device time) within 4 standard errors of the Markov chain of
    repeaters whose links take turns (netlink/chaintheory.py), which the app gives."""
    n = 300
    net = qnodeos.Network.shipped("chain").set(
        f"chain.nodes={hops + 1}", f"apps.a.args.pairs={n}", f"apps.b.args.pairs={n}"
    )
    r = net.run(deterministic=True)["a"]
    assert r["rate_hz_turns"] == pytest.approx(1e9 / turns_time_ns([0.2] * hops, [1e4] * hops))
    assert r["rate_hz_sequential"] < r["rate_hz_turns"] < r["rate_hz_theory"]
    assert abs(r["rate_hz"] - r["rate_hz_turns"]) <= 4 * r["rate_hz_stderr"], r


def test_the_rate_of_nested_swapping_over_4_hops_matches_links_taking_turns() -> None:
    n, nested = 300, "network.protocol=qnodeos.netlink.protocols:Nested"
    net = qnodeos.Network.shipped("chain").set(
        nested, "network.args={}", f"apps.a.args.pairs={n}", f"apps.b.args.pairs={n}"
    )
    r = net.run(deterministic=True)["a"]
    turns = 1e9 / turns_time_ns([0.2] * 4, [1e4] * 4, "nested")
    assert r["rate_hz_turns"] == pytest.approx(turns)
    assert abs(r["rate_hz"] - turns) <= 4 * r["rate_hz_stderr"], r


def test_links_in_turns_are_predicted_only_where_the_chain_runs_so() -> None:
    def policy(*changes: str) -> str:
        cfg = qnodeos.Network.shipped("chain").set(*changes).config
        path = list(cfg.chain)
        models = [lk.model for lk in cfg.links]
        return turns_policy(cfg, path, models)

    assert policy() == "asap"
    assert policy("network.protocol=qnodeos.netlink.protocols:Nested", "network.args={}") == (
        "nested"
    )
    assert policy("chain.node.qubits=4") == ""  # a window of two halves per side
    assert policy("network.args.cutoff_s=0.0002") == ""
    assert policy("network.protocol=tests.network.young_swap:YoungSwap") == ""


def test_a_rate_far_below_the_prediction_is_explained() -> None:
    """In real processes, messages between processes cost device time, so the rate is
    far below the links' physics: the printout says so and points to --deterministic;
    a rate that compares gets no such line."""
    r = {
        "role": "create", "pairs": 900, "hops": 4, "path": ["n0", "n1", "n2", "n3", "n4"],
        "fidelity": 0.85, "fidelity_stderr": 0.02, "rate_hz": 181.5, "rate_hz_stderr": 2.7,
        "fidelity_theory": 0.887, "rate_hz_turns": 7372.3, "rate_hz_theory": 10166.4,
    }  # fmt: skip
    assert "--deterministic" in format_result(r)
    assert "--deterministic" not in format_result({**r, "rate_hz": 7171.0})


def test_where_no_rate_is_predicted_the_printout_says_why_and_predicts_nothing() -> None:
    """With a cutoff, links of unequal cycles, repeaters with room for several halves
    or a protocol the Markov chain does not know, the chain prints no predicted rate
    (the all-at-once figure is shown as a reference only) and says why; with a cutoff,
    it also gives the rate the chain would make without it."""

    def model(*changes: str, cycles: list[float] | None = None) -> tuple[str, str]:
        cfg = qnodeos.Network.shipped("chain").set(*changes).config
        models = [lk.model for lk in cfg.links]
        if cycles is not None:
            models = [
                dataclasses.replace(x, cycle_ns=c) for x, c in zip(models, cycles, strict=True)
            ]
        return turns_model(cfg, list(cfg.chain), models)

    assert model() == ("asap", "")
    policy, why = model("network.args.cutoff_s=0.0002")
    assert policy == "asap" and "cutoff of 0.0002 s" in why
    policy, why = model(cycles=[1e4, 2e4, 1e4, 1e4])
    assert policy == "" and "cycles differ (10000, 20000, 10000, 10000 ns" in why
    policy, why = model("chain.node.qubits=4")
    assert policy == "" and "n1, n2, n3 hold several halves per side" in why
    policy, why = model("network.protocol=tests.network.young_swap:YoungSwap")
    assert policy == "" and "young_swap:YoungSwap is not one the Markov chain models" in why

    net = qnodeos.Network.shipped("chain").set(
        "network.args.cutoff_s=0.0002", "apps.a.args.pairs=60", "apps.b.args.pairs=60"
    )
    r = net.run(deterministic=True)["a"]
    assert "rate_hz_turns" not in r
    assert r["rate_hz_turns_uncut"] == pytest.approx(1e9 / turns_time_ns([0.2] * 4, [1e4] * 4))
    text = format_result(r)
    rate_line = next(line for line in text.splitlines() if line.startswith("  rate"))
    assert "predicted" not in rate_line
    assert "no rate prediction: a cutoff of 0.0002 s" in text
    assert f"no cutoff {r['rate_hz_turns_uncut']:.1f} pairs/s" in text
    assert "--deterministic" not in text  # no prediction to fall short of
