"""End-to-end Werner fidelity of *kept* pairs: the apps at the ends of 2- and 4-hop
chains of Werner links keep each pair, then measure it in X, Y or Z by its entanglement
id (tests/network/keptstats.py); no app at the repeaters, noiseless devices.
F = (3w + 1)/4 with w = prod w_i within 4 standard errors, in real processes
(``qnodeos run``; about 10 s for 2 hops, so not marked slow) and in deterministic mode.
The measured-directly case is test_e2e_processes.py.

Each request is a new circuit, and the receiving app often asks after the repeaters
have swapped; over 4 hops that used to stall (test_e2e_late_receiver.py)."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pytest

import qnodeos
from tests.network.test_e2e_processes import chain_file, run_a

TWO, FOUR = [0.95, 0.9], [0.97, 0.95, 0.96, 0.94]


def kept_chain(fids: list[float], pairs: int, batch: int) -> str:
    """``chain_file`` with keptstats at the ends, ``batch`` pairs per request."""
    text = chain_file(fids, pairs).replace("qnodeos.apps.linkstats", "tests.network.keptstats")
    return text.replace(", batch = 300", f", batch = {batch}")


def check(r: dict[str, Any], fids: list[float], how: str) -> None:
    w = math.prod((4 * f - 1) / 3 for f in fids)
    want = (3 * w + 1) / 4
    print(
        f"\n{len(fids)} hops, kept, {how}: F measured {r['fidelity']:.4f} +- "
        f"{r['fidelity_stderr']:.4f}, predicted {want:.4f}; {r['pairs']} pairs, "
        f"{r['reordered']} listed in another order at the other end"
    )
    assert abs(r["fidelity"] - want) <= 4 * r["fidelity_stderr"]


@pytest.mark.parametrize("fids", [TWO, FOUR])
def test_kept_pairs_are_werner_with_the_product_over_real_processes(
    tmp_path: Path, fids: list[float]
) -> None:
    check(run_a(tmp_path, kept_chain(fids, 600, 1)), fids, "real processes")


@pytest.mark.parametrize("fids", [TWO, FOUR])
def test_kept_pairs_are_werner_with_the_product_in_deterministic_mode(fids: list[float]) -> None:
    run = qnodeos.Network(kept_chain(fids, 600, 1), "kept").run(deterministic=True)
    assert run.ok, run.errors
    check(run["a"], fids, "deterministic")


@pytest.mark.slow
def test_a_deterministic_run_repeats_exactly() -> None:
    """Two runs of one network in deterministic mode give the same pairs at the same
    times: nothing in them depends on the CPU time a message took (the fair intake
    charges each app message a fixed cost there). 900 requests: charged by CPU time,
    the receiving app went over its share after some hundreds, at a point that moved
    from run to run."""
    text = kept_chain(TWO, 900, 1)
    runs = [qnodeos.Network(text, f"again{i}").run(deterministic=True) for i in range(2)]
    assert all(r.ok for r in runs), [r.errors for r in runs]
    assert runs[0].pair_rows == runs[1].pair_rows
    assert runs[0]["a"] == runs[1]["a"]
