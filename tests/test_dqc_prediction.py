"""qnodeos.apps.dqc's printed prediction (issue 20): it must come from the link model's mean
heralded state, |11> (both nodes bright) and dark-count parts included, not from one
sampled herald. Checked against a closed form from the network's parameters and
against the mean of many sampled heralds; no processes are started."""

from __future__ import annotations

import math

import numpy as np
import pytest

import qnodeos
from qnodeos.apps import dqc
from qnodeos.config.defaults import shipped_network_text
from qnodeos.config.network import NetworkConfig, parse_network
from qnodeos.netlink.models import Matrix, SingleClick, corrected

SETTINGS = [(a4 * math.pi / 4, t4 * math.pi / 4) for a4, t4 in dqc.SETTINGS]
TOL = 1e-9  # closed form vs predictor: the same arithmetic, in another order


def shipped() -> NetworkConfig:
    return qnodeos.Network.shipped("dqc").config


def closed_form(cfg: NetworkConfig, alpha: float) -> float:
    """DQC fidelity for setting alpha, worked out by hand from the parameters.

    Single click (qnodeos.netlink.models docstring): a herald is one bright node seen (weight
    2a(1-a)eta; Psi with coherence V), both bright (a^2(2eta - eta^2); |11>), or a
    dark count (2d P(nothing seen); diagonal). Only the first carries coherence, so the
    server's state after remote preparation has XY Bloch length r = V w_psi / w_total,
    pointing at rz(alpha)|+>; the client's outcomes are 50/50, so its readout error
    shrinks r by 1 - p01 - p10; the server's readout maps <s> -> (1 - p01 - p10) <s> +
    (p10 - p01)."""
    (link,) = cfg.links
    m = link.model
    assert isinstance(m, SingleClick)
    a, e, d, v = m.alpha, m.eta, m.dark_count, m.visibility
    w_psi = 2 * a * (1 - a) * e
    w_11 = a * a * (2 * e - e * e)
    w_dark = 2 * d * (1 - a * e) ** 2  # P(nothing seen) = (1 - a eta)^2
    r = v * w_psi / (w_psi + w_11 + w_dark)
    c = cfg.nodes["client"].device.kind(0).meas
    s = cfg.nodes["server"].device.kind(0).meas
    assert c is not None and s is not None
    r *= 1 - c.p01 - c.p10
    shrink, shift = 1 - s.p01 - s.p10, s.p10 - s.p01
    ex, ey = shrink * r * math.cos(alpha) + shift, shrink * r * math.sin(alpha) + shift
    return (1 + ex * math.cos(alpha) + ey * math.sin(alpha)) / 2


def test_prediction_matches_the_closed_form_of_the_single_click_model() -> None:
    cfg = shipped()
    predict = dqc.predictor(cfg, "client", "server")
    for alpha, theta in SETTINGS:
        assert predict(alpha, theta) == pytest.approx(closed_form(cfg, alpha), abs=TOL)
    # the values issue 20 quotes for the shipped network (0.915 / 0.960 before the fix)
    assert round(predict(0.0, 0.0), 3) == 0.894
    assert round(predict(math.pi, 0.0), 3) == 0.939


def test_the_old_single_sample_prediction_fails_the_check(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The check above can fail: with the state of one sampled herald (the old way, a
    Psi branch: no |11> part) the prediction is ~0.02 too high."""

    def one_sample(model: SingleClick) -> Matrix:
        h = model.sample(np.random.default_rng(0))
        return corrected(h.bell_index, h.rho)

    cfg = shipped()
    monkeypatch.setattr(SingleClick, "delivered", one_sample)
    old = dqc.predictor(cfg, "client", "server")
    for alpha, theta in SETTINGS:
        assert old(alpha, theta) - closed_form(cfg, alpha) > 0.015
    assert round(old(0.0, 0.0), 3) == 0.915 and round(old(math.pi, 0.0), 3) == 0.960


def test_prediction_does_not_depend_on_the_links_node_order() -> None:
    text = shipped_network_text("dqc")
    assert text is not None and 'nodes = ["client", "server"]' in text
    flipped = parse_network(text.replace('["client", "server"]', '["server", "client"]', 1))
    a = dqc.predictor(shipped(), "client", "server")
    b = dqc.predictor(flipped, "client", "server")
    for alpha, theta in SETTINGS:
        assert b(alpha, theta) == pytest.approx(a(alpha, theta), abs=1e-12)
