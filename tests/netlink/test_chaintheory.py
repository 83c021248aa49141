"""The repeater chain's closed forms (netlink/chaintheory.py) against the known
two-link result and against sampled maxima of geometric waits."""

from __future__ import annotations

import math

import numpy as np
import pytest

from qnodeos.netlink.chaintheory import mean_attempts, mean_time_ns, werner_fidelity


@pytest.mark.parametrize("p", [0.1, 0.5, 0.9])
def test_two_links_wait_the_known_swap_asap_time(p: float) -> None:
    assert mean_attempts([p, p]) == pytest.approx((3 - 2 * p) / (p * (2 - p)))


@pytest.mark.parametrize(
    ("ps", "cycles"),
    [([0.2] * 4, [1.0] * 4), ([0.3, 0.1, 0.5], [1.0, 1.0, 1.0]), ([0.3, 0.2], [10.0, 25.0])],
)
def test_the_mean_wait_is_the_mean_of_the_largest_link_wait(
    ps: list[float], cycles: list[float]
) -> None:
    rng = np.random.default_rng(5)
    n = 400_000
    waits = np.max([c * rng.geometric(p, n) for p, c in zip(ps, cycles, strict=True)], axis=0)
    mean, err = float(waits.mean()), float(waits.std() / math.sqrt(n))
    assert abs(mean_time_ns(ps, cycles) - mean) <= 4 * err, (mean_time_ns(ps, cycles), mean)


def test_werner_parameters_multiply() -> None:
    assert werner_fidelity([1.0, 1.0]) == 1.0
    w = (4 * 0.9 - 1) / 3 * (4 * 0.8 - 1) / 3
    assert werner_fidelity([0.9, 0.8]) == pytest.approx((3 * w + 1) / 4)


def test_bad_inputs_are_refused() -> None:
    with pytest.raises(ValueError, match="probabilities in"):
        mean_attempts([0.0, 0.5])
    with pytest.raises(ValueError, match="one cycle > 0 per link"):
        mean_time_ns([0.5], [0.0])
