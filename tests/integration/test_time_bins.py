"""Time bins of 1 ms across real processes in real time (issue 20): heralds only in the
link's bins, as many in each of its two consecutive bins, a round goes on over many
bins (asking for a round per bin costs a message round trip of wall time each), and
the pair rate is close to the continuous rate times the bins' share of time.

``tests/netlink/test_bins.py`` checks the rate within 4 standard errors in
deterministic mode, with a real node's latencies modelled. Here a real, possibly busy,
machine adds its own: a node takes about a millisecond to ask for its next round (one
round per 10,000 attempts), which may fall in a bin, so the rate is only required to be
within 20 % (measured 0.90-0.95 on a busy 2-core machine; before: 0.12-0.27, with 6 %
of the heralds in the first bin), or within 50 % when the run itself reports that the
host made it late (its quantum processes' p99 lag past three bins)."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from qnodeos.config.network import parse_network

from .test_entanglement import TWO_NODES, pair_apps, run

pytestmark = pytest.mark.slow


def test_one_ms_bins_in_real_time(tmp_path: Path) -> None:
    n = 2000
    link = (
        'model = "depolarise"\nfidelity = 0.9\np_success = 0.01\ncycle_ns = 1000\n'
        "schedule = { bin_ns = 1000000, period = 4, bins = [0, 1] }"
    )
    text = TWO_NODES.format(name="bins", speed=1.0, link=link)
    text += pair_apps("qnodeos.apps.linkstats", ("create", "recv"), ("a", "b"), pairs=n, batch=n)
    code, res, err = run(tmp_path, text, timeout=60)
    assert code == 0, (err, {k: v.get("error") for k, v in res.items() if "error" in v})
    cfg = parse_network(text)
    sched = cfg.links[0].schedule
    assert sched is not None
    run_dir = tmp_path / "run"
    for node in ("alice", "bob"):
        lines = (run_dir / f"timeline-{node}-device.jsonl").read_text().splitlines()
        clock = next(r for r in map(json.loads, lines) if r["kind"] == "clock")
        mine = sched.aligned(clock["epoch_ns"], clock["speed"])
        per_bin = [0] * sched.period
        with (run_dir / "pairs.csv").open() as f:
            for row in csv.DictReader(f):
                if row["node"] == node:  # herald time, then its readout (< 500 ns)
                    t = float(row["herald_ns"]) - 500 + mine.offset_ns
                    per_bin[int(t // sched.bin_ns) % sched.period] += 1
        assert per_bin[2] == per_bin[3] == 0 and sum(per_bin) == n, (node, per_bin)
        assert min(per_bin[:2]) >= 0.4 * n, (node, per_bin)
        rounds = [r for r in map(json.loads, lines) if r["kind"] == "round"]
        periods = (rounds[-1]["end"] - rounds[0]["start"]) / (sched.bin_ns * sched.period)
        assert len(rounds) <= periods / 4, (node, len(rounds), periods)
    rate = res["a"]["result"]["rate_hz"]
    expect = cfg.links[0].model.rate_hz() * sched.fraction
    lag_ms = max(res["_nodes"][n]["lag"]["p99_us"] for n in ("alice", "bob")) / 1e3
    print(
        f"\n1 ms bins: {rate:.0f} pairs/s, {rate / expect:.3f} of p/cycle x {sched.fraction}; "
        f"p99 lag {lag_ms:.2f} ms"
    )
    # On a busy machine (the run's own lag report shows it: p99 past 3 ms, three bins)
    # the nodes act late in real time and the rate drops with it: slower, not failed
    # (measured 0.70 beside 4 busy loops on 2 cores, p99 lag 3-8 ms).
    assert rate >= (0.8 if lag_ms < 3.0 else 0.5) * expect, (rate, expect, lag_ms)
