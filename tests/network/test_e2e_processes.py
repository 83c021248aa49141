"""End-to-end Werner fidelity in real processes (``qnodeos run``): linkstats, unchanged,
between the ends of 2- and 4-hop chains of Werner links, no app at the repeaters. The
fidelity it measures (random X, Y, Z bases at both ends) is (3w + 1)/4 with w = prod w_i
within 4 standard errors (its own, from the three correlators); kept pairs are
test_e2e_kept_processes.py."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.integration.helpers import ROOT

pytestmark = pytest.mark.slow


def chain_file(fids: list[float], pairs: int) -> str:
    n = len(fids)
    body = 'name = "e2eproc"\n'
    for i in range(n + 1):
        body += f'[nodes.n{i}]\ndevice = "generic"\nqubits = 2\nseed = {i + 1}\n'
    for i, f in enumerate(fids):
        body += (
            f'[[links]]\nnodes = ["n{i}", "n{i + 1}"]\nmodel = "depolarise"\nfidelity = {f}\n'
            f"p_success = 0.5\ncycle_ns = 1000\nseed = {100 + i}\n"
        )
    for role, me, at, peer, peer_at in (
        ("create", "a", "n0", "b", f"n{n}"),
        ("recv", "b", f"n{n}", "a", "n0"),
    ):
        body += (
            f'[[apps]]\nnode = "{at}"\nname = "{me}"\nmodule = "qnodeos.apps.linkstats"\n'
            f'args = {{ role = "{role}", me = "{me}", peer_node = "{peer_at}", peer = "{peer}", '
            f"pairs = {pairs}, batch = 300 }}\n"
        )
    return body


def run_a(tmp_path: Path, text: str) -> dict[str, Any]:
    """``qnodeos run`` the network ``text``; app a's result."""
    net = tmp_path / "net.toml"
    net.write_text(text)
    run_dir = tmp_path / "run"
    done = subprocess.run(
        [sys.executable, "-m", "qnodeos", "run", str(net), "--run-dir", str(run_dir)],
        cwd=ROOT,
        env={**os.environ, "TMPDIR": str(tmp_path)},
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    out: dict[str, Any] = json.loads((run_dir / "app-a.json").read_text())["result"]
    return out


@pytest.mark.parametrize("fids", [[0.95, 0.9], [0.97, 0.95, 0.96, 0.94]])
def test_werner_fidelity_over_real_processes(tmp_path: Path, fids: list[float]) -> None:
    r = run_a(tmp_path, chain_file(fids, 1500))
    w = math.prod((4 * f - 1) / 3 for f in fids)
    want = (3 * w + 1) / 4
    print(
        f"\n{len(fids)} hops: F measured {r['fidelity']:.4f} +- {r['fidelity_stderr']:.4f}, "
        f"predicted {want:.4f}; {r['pairs']} pairs"
    )
    assert abs(r["fidelity"] - want) <= 4 * r["fidelity_stderr"]
