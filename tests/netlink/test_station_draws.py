"""The station draws a round's heralds a block at a time: the same numbers, in the same
order, as one ``sample`` per herald (so a seed gives the same pairs), and a round that
ends before using its block gives the rest back for the next round."""

from __future__ import annotations

import numpy as np
import pytest

from qnodeos.netlink.models import Depolarise, DoubleClick, LinkModel, Perfect, SingleClick
from qnodeos.netlink.station import Attempt, HeraldingStation, RoundEnd

MODELS = [
    Perfect(cycle_ns=10),
    Depolarise(fidelity=0.9, p_success=0.3, cycle_ns=10),
    Depolarise(fidelity=0.8, p_success=0.02, cycle_ns=10),
    SingleClick(alpha=0.1, eta=0.3, dark_count=0.01, cycle_ns=10),
    DoubleClick(eta=0.5, cycle_ns=10),
]


@pytest.mark.parametrize("model", MODELS, ids=lambda m: m.kind)
def test_sample_many_draws_what_sample_draws_one_by_one(model: LinkModel) -> None:
    a, b = np.random.default_rng(7), np.random.default_rng(7)
    tries, bells, rhos = model.sample_many(a, 300)
    one = [model.sample(b) for _ in range(300)]
    assert tries == [h.attempts for h in one] and bells == [h.bell_index for h in one]
    assert all(x is h.rho for x, h in zip(rhos, one, strict=True))
    assert a.random() == b.random()  # the generators are at the same place


def _reference(
    model: LinkModel, rng: np.random.Generator, rounds: list[tuple[int, int]]
) -> list[list[tuple[int, float, int]]]:
    """Each round's (attempts, time, Bell index) per herald as the station drew them
    before: one ``sample`` per draw (no dead time, no bins, start 0)."""
    out: list[list[tuple[int, float, int]]] = []
    for pairs, max_attempts in rounds:
        t, end, tail = 0.0, max_attempts * model.cycle_ns, 0
        got: list[tuple[int, float, int]] = []
        while len(got) < pairs:
            left = int((end - t) // model.cycle_ns)
            if left < 1:
                break
            h = model.sample(rng)
            if h.attempts > left:
                tail += left
                break
            t += h.attempts * model.cycle_ns
            got.append((tail + h.attempts, t, h.bell_index))
            tail = 0
        out.append(got)
    return out


@pytest.mark.parametrize("model", MODELS, ids=lambda m: m.kind)
def test_rounds_cut_short_by_their_window_leave_the_next_rounds_draws_alone(
    model: LinkModel,
) -> None:
    """Rounds of 50 pairs in windows of 1 to 100,000 attempts: most end before their pairs,
    with draws of their block unused; every herald is still the one-by-one draw."""
    rounds = [(50, w) for w in (5, 400, 20, 1, 90, 100_000, 3, 250)]
    st = HeraldingStation(link="a-b", nodes=("a", "b"), model=model, rng=np.random.default_rng(3))
    got: list[list[tuple[int, float, int]]] = []
    for i, (pairs, window) in enumerate(rounds):
        for node in ("a", "b"):
            out = st.receive(
                Attempt(node=node, key=f"r{i}", start_ns=0, max_attempts=window, pairs=pairs)
            )
        msg = out[0].msg
        assert isinstance(msg, RoundEnd)
        got.append([(h.attempts, h.at_ns, h.bell_index) for h in msg.heralds])
    assert got == _reference(model, np.random.default_rng(3), rounds)
    assert any(0 < len(g) < 50 for g in got) and any(len(g) == 50 for g in got)


def test_heralds_as_columns_and_as_objects_agree() -> None:
    st = HeraldingStation(
        link="a-b", nodes=("a", "b"), model=Perfect(cycle_ns=10), rng=np.random.default_rng(1)
    )
    st.receive(Attempt(node="a", key="k", start_ns=0, max_attempts=100, pairs=4))
    (out, _) = st.receive(Attempt(node="b", key="k", start_ns=5, max_attempts=100, pairs=4))
    msg = out.msg
    assert isinstance(msg, RoundEnd)
    assert list(msg.seqs) == [h.seq for h in msg.heralds] == [1, 2, 3, 4]
    assert list(msg.herald_ns) == [h.at_ns for h in msg.heralds] == [15, 25, 35, 45]
    assert st.heralds == 4
