"""Utilization in results.json, across real processes in real time (issue 20): at both
ends of a link it equals the modelled device work computed independently from the
network file, the device's parameter table and the timelines, within 1 %; the time the
devices waited (for the other end, for a state held by the other process) is reported
apart. The same as ``tests/test_utilization.py``, with a real OS's latencies."""

from __future__ import annotations

from pathlib import Path

import pytest

from qnodeos.config.network import parse_network
from tests.test_utilization import NET, check, modelled

from .test_entanglement import pair_apps, run

pytestmark = pytest.mark.slow


def test_utilization_is_the_modelled_work_at_both_ends_in_real_processes(
    tmp_path: Path,
) -> None:
    text = 'name = "util"\n' + NET.format(schedule="")
    text += pair_apps("tests.integration.util_app", ("create", "recv"), ("a", "b"), kept=20)
    code, res, err = run(tmp_path, text, timeout=60)
    assert code == 0, (err, {k: v.get("error") for k, v in res.items() if "error" in v})
    cfg = parse_network(text)
    run_dir = tmp_path / "run"
    for node in ("alice", "bob"):
        check(res["_nodes"][node]["utilization"], modelled(run_dir, cfg, node), node)
    assert res["_nodes"]["bob"]["utilization"]["waits_ns"]["transfer"] > 0
