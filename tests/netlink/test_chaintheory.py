"""The repeater chain's closed forms (netlink/chaintheory.py) against the known
two-link result and against sampled maxima of geometric waits; its Markov chain of
links taking turns against closed forms and against the chain's rounds sampled one
by one."""

from __future__ import annotations

import math

import numpy as np
import pytest

from qnodeos.netlink.chaintheory import (
    mean_attempts,
    mean_time_ns,
    turns_attempts,
    turns_time_ns,
    werner_fidelity,
)


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


def test_links_in_turns_over_two_and_three_hops_have_closed_forms() -> None:
    # two hops: the repeater's links take turns; three: the outer links wait for the
    # middle one, each after its own repeater's previous swap
    assert turns_attempts([0.4]) == pytest.approx(2.5)
    assert turns_attempts([0.3, 0.1]) == pytest.approx(1 / 0.3 + 1 / 0.1)
    ps = [0.3, 0.1, 0.5]
    assert turns_attempts(ps) == pytest.approx(mean_attempts([0.3, 0.5]) + 1 / 0.1)
    assert turns_time_ns([0.2] * 3, [10.0] * 3) == pytest.approx(10 * turns_attempts([0.2] * 3))
    # nested over three hops: the top repeater (n1) waits for n2's swap, holding both
    # halves, so the three links take turns one after another
    assert turns_attempts(ps, "nested") == pytest.approx(1 / 0.3 + 1 / 0.1 + 1 / 0.5)
    # over two hops, and over one, nested and swap ASAP are the same
    assert turns_attempts([0.3, 0.1], "nested") == pytest.approx(turns_attempts([0.3, 0.1]))


def sampled_turns(ps: list[float], rounds: int, runs: int, seed: int) -> tuple[float, float]:
    """Attempts per end-to-end pair, mean and standard error over ``runs`` chains, from
    the rounds themselves: link j's k-th round starts once its left node is done with
    its round k on its left link (an end: its own round k - 1) and its right node with
    its round k - 1 on its right link (an end: always), and lasts a geometric number
    of attempts. The first tenth of the rounds is left out (the chain settling)."""
    rng = np.random.default_rng(seed)
    n = len(ps)
    end = np.zeros((n, runs))
    skip = rounds // 10
    start = end[0]
    for k in range(rounds):
        prev = end.copy()
        for j in range(n):
            left = end[j - 1] if j > 0 else prev[0]
            right = prev[j + 1] if j < n - 1 else left
            end[j] = np.maximum(left, right) + rng.geometric(ps[j], runs)
        if k == skip:
            start = end[0].copy()
    per = (end[0] - start) / (rounds - skip - 1)
    return float(per.mean()), float(per.std() / math.sqrt(runs))


@pytest.mark.parametrize("ps", [[0.2] * 4, [0.3, 0.1, 0.5, 0.2], [0.5] * 6])
def test_links_in_turns_match_the_chain_sampled_round_by_round(ps: list[float]) -> None:
    mean, err = sampled_turns(ps, rounds=600, runs=200, seed=3)
    assert abs(turns_attempts(ps) - mean) <= 4 * err, (turns_attempts(ps), mean, err)


def test_links_in_turns_refuse_what_they_do_not_model() -> None:
    with pytest.raises(ValueError, match="probabilities in"):
        turns_attempts([0.5] * 13)
    with pytest.raises(ValueError, match="the same for every link"):
        turns_time_ns([0.5, 0.5], [10.0, 20.0])
    with pytest.raises(ValueError, match="policy 'cutoff'"):
        turns_attempts([0.5, 0.5], "cutoff")
