"""Entanglement inside blocks, across real processes: each test is one block per app
(so one app round trip), asking for pairs inside it."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from qnodeos.testbed.trace import node_spans, work_ns

from .test_entanglement import TWO_NODES, close, pair_apps, run

pytestmark = pytest.mark.slow
PERFECT = 'model = "perfect"\ncycle_ns = 1000'


def both(
    tmp_path: Path,
    mode: str,
    link: str = PERFECT,
    roles: tuple[str, str] = ("create", "recv"),
    **args: object,
) -> tuple[dict, dict]:
    """Run the app on alice (a) and bob (b); alice hosts the link's station."""
    text = TWO_NODES.format(name=f"blk{mode}", speed="inf", link=link)
    text += pair_apps("tests.integration.block_epr_app", roles, ("a", "b"), mode=mode, **args)
    code, res, err = run(tmp_path, text)
    assert code == 0, (err, {k: v.get("error") for k, v in res.items() if "error" in v})
    return res["a"]["result"], res["b"]["result"]


def test_kept_pairs_inside_one_block_agree(tmp_path: Path) -> None:
    a, b = both(tmp_path, "keep", pairs=4)
    assert a["ids"] == b["ids"] and len(set(a["ids"])) == 4
    assert a["outcomes"] == b["outcomes"]  # Phi+ measured in Z at both ends


def test_a_post_routine_takes_many_pairs_through_one_qubit(tmp_path: Path) -> None:
    """20 pairs through one qubit each end, each measured by the post routine as it
    arrives: one block, one app round trip."""
    a, b = both(tmp_path, "sequential", pairs=20)
    assert a["ids"] == b["ids"] and len(set(a["ids"])) == 20
    assert a["outcomes"] == b["outcomes"]
    assert 0 < sum(a["outcomes"]) < 20  # random outcomes, not a constant


@pytest.mark.parametrize("f", [0.9])
def test_chosen_bases_give_werner_correlations(tmp_path: Path, f: float) -> None:
    """Both ends choose each pair's basis (X, Y or Z, the same seed: the same bases):
    outcomes agree with probability (2F+1)/3 in X and Z and disagree so in Y."""
    n = 900
    link = f'model = "depolarise"\nfidelity = {f}\np_success = 0.3\ncycle_ns = 1000'
    a, b = both(tmp_path, "chosen", link=link, pairs=n, seed=7)
    assert a["bases"] == b["bases"] and a["ids"] == b["ids"]
    p = (2 * f + 1) / 3
    for basis in "XYZ":
        both_ends = zip(a["outcomes"], b["outcomes"], a["bases"], strict=True)
        rows = [(x, y) for x, y, c in both_ends if c == basis]
        agree = sum(x == y for x, y in rows) / len(rows)
        expect = p if basis != "Y" else 1 - p
        assert close(agree, expect, math.sqrt(expect * (1 - expect) / len(rows))), (basis, agree)


@pytest.mark.parametrize("creator", ["alice", "bob"])
def test_remote_state_preparation(tmp_path: Path, creator: str) -> None:
    """The creator measures in X; the receiver keeps each half and measures it in X
    (a post routine): on a perfect link the outcomes agree. With bob creating, the
    station's node keeps and bob measures: each pair's state moves to bob's quantum
    process to be measured there, and alice's half comes home."""
    roles = ("create", "recv") if creator == "alice" else ("recv", "create")
    a, b = both(tmp_path, "rsp", roles=roles, pairs=12)
    assert a["ids"] == b["ids"]
    assert a["outcomes"] == b["outcomes"]
    assert 0 < sum(a["outcomes"]) < 12


def test_a_block_waiting_for_pairs_leaves_the_device_to_others(tmp_path: Path) -> None:
    """alice's block asks for a pair that bob's app asks for only 1 s later; meanwhile
    another app on alice runs its local blocks: they finish while the waiting block is
    still waiting (it holds no device time)."""
    text = TWO_NODES.format(name="blkwait", speed="inf", link=PERFECT)
    app = "tests.integration.block_epr_app"
    text += pair_apps(app, ("create", "recv"), ("a", "b"), mode="keep", pairs=1)
    text = text.replace('peer = "a", mode', 'peer = "a", delay = 1.0, mode')  # bob's app
    text += """
[[apps]]
node = "alice"
module = "tests.integration.local_loop"
name = "local"
args = { me = "local", seconds = 2.0 }
"""
    code, res, err = run(tmp_path, text)
    assert code == 0, (err, {k: v.get("error") for k, v in res.items() if "error" in v})
    a = res["a"]["result"]
    done = res["local"]["result"]["done"]
    meanwhile = [t for t in done if a["start"] + 0.2 < t < a["end"] - 0.2]
    assert a["end"] - a["start"] > 0.8  # it did wait for bob's app
    assert len(meanwhile) >= 10, (len(meanwhile), len(done))
    # The same from alice's timeline, in device time: between app a's process going
    # WAITING (on pairs) and READY again, the local app's blocks ran on the device.
    run_dir = tmp_path / "run"
    spans, states = node_spans(run_dir, "alice")
    mine = [s for s in states if s["app"] == "a"]
    went = next(i for i, s in enumerate(mine) if s["on"] == "pairs")
    back = next(s for s in mine[went:] if s["state"] == "ready")
    t0, t1 = mine[went]["device_ns"], back["device_ns"]
    local = [s for s in spans if s["app"] == "local" and t0 <= s["start"] < s["end"] <= t1]
    assert len(local) >= 10, len(local)
    # utilization in results.json is the sum of the timeline's spans' work, per kind
    util = res["_nodes"]["alice"]["utilization"]
    assert util["local_blocks_ns"] == sum(work_ns(s) for s in spans if s["what"] == "block")
    assert util["entanglement_ns"] == sum(work_ns(s) for s in spans if s["what"] == "round")
    total = util["busy_ns"] + util["overhead_ns"] + util["idle_ns"]
    assert abs(total - util["elapsed_ns"]) < 1e-6 * util["elapsed_ns"]
    trace = json.loads((run_dir / "timeline.json").read_text())["traceEvents"]
    blocks_us = sum(e["dur"] for e in trace if e.get("cat") == "block" and e["pid"] == 1)
    assert abs(blocks_us * 1e3 - util["local_blocks_ns"]) < 1.0


def test_delegated_computation_matches_the_werner_closed_form(tmp_path: Path) -> None:
    """qnodeos.apps.dqc (QNodeOS's DQC: remote state preparation, rz(delta), tomography) on a
    Werner link and noiseless devices: the fidelity of each setting is (2F+1)/3, and
    the app's own prediction from the configured noise says the same."""
    f, k = 0.85, 150
    link = f'model = "depolarise"\nfidelity = {f}\np_success = 0.5\ncycle_ns = 1000'
    text = TWO_NODES.format(name="dqc", speed="inf", link=link)
    text += pair_apps("qnodeos.apps.dqc", ("client", "server"), ("client", "server"), k=k)
    client = 'module = "qnodeos.apps.dqc"\nname = "client"\nargs = {'
    text = text.replace(client, client + " settings = [[0, 0], [2, 3]],")
    code, res, err = run(tmp_path, text)
    assert code == 0, (err, {k: v.get("error") for k, v in res.items() if "error" in v})
    expect = (2 * f + 1) / 3
    rows = res["client"]["result"]["settings"]
    assert len(rows) == 2
    for row in rows:
        assert abs(row["predicted"] - expect) < 1e-9, row
        assert close(row["fidelity"], expect, row["stderr"] or 0.01), row
