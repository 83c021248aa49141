"""Link models against their closed forms (shared/reference/hardware.md).

Statistical checks use 4 standard deviations with fixed seeds."""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import pytest

from qnodeos.errors import ConfigError
from qnodeos.netlink.models import (
    PHI_PLUS,
    PSI_MINUS,
    PSI_PLUS,
    Depolarise,
    DoubleClick,
    LinkModel,
    Perfect,
    SingleClick,
    corrected,
    fidelity_to,
)


def test_depolarise_delivers_a_werner_state_of_the_configured_fidelity() -> None:
    m = Depolarise(fidelity=0.8, p_success=0.1, cycle_ns=1000)
    h = m.sample(np.random.default_rng(1))
    assert h.bell_index == PHI_PLUS
    assert fidelity_to(h.rho, PHI_PLUS) == pytest.approx(0.8)
    # Werner: the other three Bell states share 1 - F equally.
    for other in (1, 2, 3):
        assert fidelity_to(h.rho, other) == pytest.approx(0.2 / 3)
    assert np.trace(h.rho).real == pytest.approx(1.0)


@pytest.mark.parametrize("alpha", [0.05, 0.1, 0.3])
def test_single_click_small_eta_matches_2_alpha_eta_and_1_minus_alpha(alpha: float) -> None:
    eta = 3.5e-4  # NV link detection efficiency (2019 parameter set)
    m = SingleClick(alpha=alpha, eta=eta, visibility=1.0, cycle_ns=5000)
    assert m.success_probability() == pytest.approx(2 * alpha * eta, rel=1e-3)
    assert m.expected_fidelity() == pytest.approx(1 - alpha, rel=1e-3)


def test_single_click_visibility_and_dark_counts_lower_fidelity() -> None:
    base = SingleClick(alpha=0.1, eta=1e-3, cycle_ns=5000)
    v = SingleClick(alpha=0.1, eta=1e-3, visibility=0.9, cycle_ns=5000)
    dark = SingleClick(alpha=0.1, eta=1e-3, dark_count=1e-5, cycle_ns=5000)
    assert v.expected_fidelity() == pytest.approx(base.expected_fidelity() * 0.95, rel=1e-6)
    assert dark.success_probability() > base.success_probability()
    assert dark.expected_fidelity() < base.expected_fidelity()


def test_single_click_samples_have_the_stated_mean_fidelity() -> None:
    m = SingleClick(alpha=0.2, eta=0.05, visibility=0.9, dark_count=0.01, cycle_ns=5000)
    rng = np.random.default_rng(3)
    n = 4000
    fids = [fidelity_to((h := m.sample(rng)).rho, h.bell_index) for _ in range(n)]
    sd = float(np.std(fids)) / math.sqrt(n)
    assert abs(float(np.mean(fids)) - m.expected_fidelity()) < 4 * sd


def test_heralded_bell_state_is_psi_plus_or_minus_half_the_time() -> None:
    m = DoubleClick(eta=0.5, visibility=0.8, cycle_ns=10_000)
    rng = np.random.default_rng(5)
    n = 4000
    idx = [m.sample(rng).bell_index for _ in range(n)]
    assert set(idx) == {PSI_PLUS, PSI_MINUS}
    assert abs(idx.count(PSI_PLUS) / n - 0.5) < 4 * 0.5 / math.sqrt(n)
    h = m.sample(rng)
    assert fidelity_to(h.rho, h.bell_index) == pytest.approx((1 + 0.8) / 2)
    assert m.success_probability() == pytest.approx(0.5**2 / 2)


@pytest.mark.parametrize("p", [1.0, 0.3, 0.01])
def test_attempts_are_geometric_with_mean_1_over_p(p: float) -> None:
    m = Depolarise(fidelity=0.9, p_success=p, cycle_ns=1000)
    rng = np.random.default_rng(7)
    n = 5000
    attempts = np.array([m.sample(rng).attempts for _ in range(n)])
    assert attempts.min() >= 1
    sd = math.sqrt((1 - p) / p**2) / math.sqrt(n)
    assert abs(attempts.mean() - 1 / p) <= 4 * sd + 1e-12
    assert m.rate_hz() == pytest.approx(p / 1e-6)


def test_perfect_link() -> None:
    h = Perfect(cycle_ns=100).sample(np.random.default_rng(0))
    assert h.attempts == 1 and fidelity_to(h.rho, PHI_PLUS) == pytest.approx(1.0)


@pytest.mark.parametrize(
    "make, words",
    [
        (lambda: Depolarise(fidelity=1.2, p_success=0.1, cycle_ns=1), "fidelity = 1.2"),
        (lambda: Depolarise(fidelity=0.9, p_success=0.0, cycle_ns=1), "p_success = 0.0"),
        (lambda: SingleClick(alpha=0.7, eta=0.1, cycle_ns=1), "alpha = 0.7"),
        (lambda: DoubleClick(eta=0.1, cycle_ns=0), "cycle_ns = 0"),
    ],
)
def test_bad_parameters_are_named(make: Callable[[], object], words: str) -> None:
    with pytest.raises(ConfigError, match=words):
        make()


@pytest.mark.parametrize(
    "model",
    [
        SingleClick(alpha=0.2, eta=0.3, visibility=0.9, dark_count=0.01, cycle_ns=1000),
        DoubleClick(eta=0.1, visibility=0.8, cycle_ns=1000),
        Depolarise(fidelity=0.8, p_success=0.1, cycle_ns=1000),
        Perfect(cycle_ns=1000),
    ],
)
def test_outcomes_are_the_distribution_sample_draws_from(model: LinkModel) -> None:
    """``outcomes()`` (and ``delivered()``, its mean after the correction to Phi+) is a
    claim about ``sample``: the mean of 20,000 sampled heralds, each corrected for its
    Bell index, agrees with it entry by entry (5 standard errors of a mean of values in
    [-1, 1]), and its fidelity to Phi+ is ``expected_fidelity()``."""
    outs = model.outcomes()
    assert sum(p for p, _, _ in outs) == pytest.approx(1.0)
    exact = model.delivered()
    assert np.trace(exact).real == pytest.approx(1.0)
    assert fidelity_to(exact, PHI_PLUS) == pytest.approx(model.expected_fidelity())
    rng = np.random.default_rng(7)
    n = 20_000
    mean = np.zeros((4, 4), dtype=complex)
    for _ in range(n):
        h = model.sample(rng)
        mean += corrected(h.bell_index, h.rho)
    mean /= n
    assert np.max(np.abs(mean - exact)) < 5 * 0.5 / np.sqrt(n)


def test_single_click_delivers_its_two_photon_part() -> None:
    """Both nodes bright (|11>) lands on |01> after the first node's X or Y: a Psi
    branch alone (what one sampled herald usually is) would have none there."""
    m = SingleClick(alpha=0.2, eta=0.3, cycle_ns=1000)
    w_psi, w_11, w_dark = m._weights()
    assert m.delivered()[1, 1].real == pytest.approx(w_11 / (w_psi + w_11 + w_dark))
