"""The lag a real-time quantum process reports, checked against independent
computations: percentiles against numpy's on the same samples, the warning against the
network's coherence times worked out by hand."""

from __future__ import annotations

import numpy as np
import pytest

from qnodeos.qdevice.lag import PER_DECADE, LagMeter
from qnodeos.testbed.trace import LAG_WARN_FRACTION, lag_warnings
from tests.conftest import network

# a bin's upper edge is at most this factor above the samples in it
RESOLUTION = 10 ** (1 / PER_DECADE)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_percentiles_agree_with_numpy_within_a_bin(seed: int) -> None:
    rng = np.random.default_rng(seed)
    lags = np.concatenate([rng.lognormal(np.log(1e-4), 1.0, 10_000), rng.uniform(0, 0.05, 100)])
    rng.shuffle(lags)
    meter = LagMeter(window_s=1.0)
    windows = [w for i, lag in enumerate(lags) if (w := meter.add(float(lag), i * 1e-3))]
    got = meter.summary()
    assert got["n"] == len(lags)
    assert got["max_us"] == pytest.approx(lags.max() * 1e6)
    for q, key in ((50, "p50_us"), (99, "p99_us")):
        exact = float(np.percentile(lags, q)) * 1e6
        assert exact / RESOLUTION <= got[key] <= exact * RESOLUTION * 1.01, (key, got, exact)
    # one window per second of samples (the last is still open), covering them all
    assert len(windows) == len(lags) // 1000 - 1 + (len(lags) % 1000 > 0)
    still_open = sum(1 for i in range(len(lags)) if i * 1e-3 >= windows[-1]["wall"])
    assert sum(w["n"] for w in windows) == len(lags) - still_open


def test_lags_not_finite_or_negative_are_handled() -> None:
    meter = LagMeter()
    assert meter.add(float("-inf"), 0.0) is None  # a deadline of -inf: "at once"
    meter.add(-0.5, 0.1)  # early: on time
    assert meter.summary() == {"n": 1, "p50_us": 0.0, "p99_us": 0.0, "max_us": 0.0}


NET = """
[nodes.a]
device = "nv"
speed = {speed}
[nodes.b]
device = "generic"
qubits = 2
[nodes.b.params.kinds.qubit]
t2_ns = 2e6
"""


def test_the_warning_compares_p99_with_the_shortest_coherence_time() -> None:
    # b's T2 of 2 ms is the network's shortest (NV's electron T2 is longer): warn past
    # 1 % of it, 20 us of device time, i.e. 20 us of lag at speed 1, 2 us at speed 10
    cfg = network(NET.format(speed=1.0))
    shortest = min(
        t for c in cfg.nodes.values() for k in c.device.kinds.values() for t in (k.t1_ns, k.t2_ns)
    )
    assert shortest == 2e6
    limit_us = LAG_WARN_FRACTION * shortest / 1e3
    quiet = {"a": {"lag": {"n": 10, "p50_us": 1.0, "p99_us": limit_us * 0.9, "max_us": 1e3}}}
    busy = {"a": {"lag": {"n": 10, "p50_us": 1.0, "p99_us": limit_us * 1.1, "max_us": 1e3}}}
    assert lag_warnings(cfg, quiet) == []
    (warning,) = lag_warnings(cfg, busy)
    assert "node a's quantum process ran up to 1.0 ms late" in warning
    assert "T2 of generic qubit qubits: 2 ms" in warning
    fast = network(NET.format(speed=10.0))
    assert lag_warnings(fast, quiet)  # at speed 10 the same wall lag is 10x the device time
    assert lag_warnings(network(NET.format(speed="inf")), busy) == []  # no real time
