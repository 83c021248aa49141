"""The example apps shipped inside the netqasm package run unchanged, from their folders
in the installed package, on qnodeos nodes in real processes (``qnodeos netqasm``),
and agree with closed forms on a perfect link and on a Werner link of fidelity F
(w = (4F - 1)/3):

- teleport: the received state's fidelity (read with --states, an exact density
  matrix, not a sample) is (2F + 1)/3 for any input state;
- bb84: QBER 2(1 - F)/3 (binomial, 4 sigma), 0 and equal keys on a perfect link;
- chsh (alice - repeater - bob, entanglement swapping by teleportation): win rate
  (1 + w1 w2 / sqrt 2)/2 per setting, S = 2 sqrt 2 w1 w2 (4 sigma);
- dist_cnot: the truth table |c>|t> -> |c>|t xor c>, the target right with
  probability (2F + 1)/3 (exact states; the controller's joint state of control and
  target, as the app reads it with ``reduced_dm=False``, too).
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tests.conftest import within

pytestmark = pytest.mark.slow
netqasm = pytest.importorskip("netqasm")
APPS = Path(netqasm.__file__).parent / "examples" / "apps"
ROOT = Path(__file__).resolve().parents[2]


def run(app: str, *args: str, tmp: Path) -> dict[str, Any]:
    """``qnodeos netqasm`` on the installed example ``app``; each party's result."""
    out = subprocess.run(
        [sys.executable, "-m", "qnodeos", "netqasm", str(APPS / app), "--json", "--quiet",
         "--run-dir", str(tmp / "run"), *args],
        cwd=ROOT, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    data = json.loads(out.stdout)
    return {k: v["result"] for k, v in data.items() if not k.startswith("_")}


def dm(entry: list[list[list[float]]]) -> np.ndarray:
    return np.array([[complex(*z) for z in row] for row in entry])


def link(fidelity: float) -> list[str]:
    return [] if fidelity == 1.0 else ["--fidelity", str(fidelity)]


@pytest.mark.parametrize("fidelity", [1.0, 0.8])
def test_teleport(fidelity: float, tmp_path: Path) -> None:
    phi, theta = 0.7, 1.1
    got = run("teleport", "--states", "--input", f"sender.phi={phi}",
              "--input", f"sender.theta={theta}", *link(fidelity), tmp=tmp_path)  # fmt: skip
    sender, receiver = got["sender"], got["receiver"]
    assert receiver["correction1"] == ("Z" if sender["m1"] else "None")
    assert receiver["correction2"] == ("X" if sender["m2"] else "None")
    (rho,) = [dm(v) for v in receiver["qubit_states"].values()]
    psi = np.array([math.cos(theta / 2), np.exp(1j * phi) * math.sin(theta / 2)])
    assert abs((psi.conj() @ rho @ psi).real - (2 * fidelity + 1) / 3) < 1e-9


def same_basis_agree(alice: dict[str, Any], bob: dict[str, Any]) -> bool:
    """bb84's table: [index, basis, same basis as the other, outcome, check] per pair."""
    rows = list(zip(alice["table"], bob["table"], strict=True))
    same = [(a[3], b[3]) for a, b in rows if a[2]]
    return len(same) > 10 and all(x == y for x, y in same)


@pytest.mark.parametrize("fidelity,bits", [(1.0, 100), (0.85, 400)])
def test_bb84(fidelity: float, bits: int, tmp_path: Path) -> None:
    got = run("bb84", "--input", f"alice.num_bits={bits}", "--input", f"bob.num_bits={bits}",
              *link(fidelity), tmp=tmp_path)  # fmt: skip
    alice, bob = got["alice"], got["bob"]
    compared = alice["outcome_comparison_count"]
    assert compared > 0 and alice["qber"] == bob["qber"]
    if fidelity == 1.0:  # where the bases agree, so do the outcomes
        assert alice["qber"] == 0 and same_basis_agree(alice, bob)
    else:
        assert within(alice["qber"], 2 * (1 - fidelity) / 3, compared)


@pytest.mark.parametrize("fidelity,runs", [(1.0, 30), (0.9, 200)])
def test_chsh(fidelity: float, runs: int, tmp_path: Path) -> None:
    w = (4 * fidelity - 1) / 3
    p_win = (1 + w * w / math.sqrt(2)) / 2  # two links: alice-repeater, repeater-bob
    s = 0.0
    for x in (0, 1):
        for y in (0, 1):
            inputs = ["--input", f"alice.x={x}", "--input", f"bob.y={y}"]
            got = run(
                "chsh", "--num", str(runs), *inputs, *link(fidelity), tmp=tmp_path / f"{x}{y}"
            )
            a = [r["a"] for r in got["alice"]["runs"]]
            b = [r["b"] for r in got["bob"]["runs"]]
            win = sum((ai ^ bi) == (x & y) for ai, bi in zip(a, b, strict=True)) / runs
            assert within(win, p_win, runs), (x, y, win, p_win)
            s += 2 * win - 1  # E_xy = +-(2 win - 1), with the sign S gives it
    sd = 4 * 2 * math.sqrt(p_win * (1 - p_win) / runs)  # 4 settings, E = 2p - 1
    assert abs(s - 2 * math.sqrt(2) * w * w) < 4 * sd


@pytest.mark.parametrize("fidelity", [1.0, 0.9])
def test_dist_cnot_truth_table(fidelity: float, tmp_path: Path) -> None:
    right = (2 * fidelity + 1) / 3
    for c in (0, 1):
        for t in (0, 1):
            got = run("dist_cnot", "--states", "--input", f"controller.theta={math.pi * c}",
                      "--input", f"target.theta={math.pi * t}", *link(fidelity),
                      tmp=tmp_path / f"{c}{t}")  # fmt: skip
            ctrl = got["controller"]
            final = np.array([[complex(*z) for z in row] for row in ctrl["final_state"]])
            (kept_c,) = [dm(v) for v in ctrl["qubit_states"].values()]
            (kept_t,) = [dm(v) for v in got["target"]["qubit_states"].values()]
            want_c, want_t = np.eye(2)[c], np.eye(2)[t ^ c]
            # the app's own get_qubit_state(reduced_dm=False): the joint state of the
            # control and the target (nodes controller, target), unless the target's
            # app ended and freed its qubit first
            if final.shape == (4, 4):
                joint = np.kron(want_c, want_t)
                assert abs((joint @ final @ joint).real - right) < 1e-9, (c, t)
                final = final.reshape(2, 2, 2, 2).trace(axis1=1, axis2=3)
            assert abs(want_c @ final @ want_c - 1) < 1e-9
            assert abs(want_c @ kept_c @ want_c - 1) < 1e-9
            assert abs((want_t @ kept_t @ want_t).real - right) < 1e-9, (c, t)


def test_netqasm_app_beside_native_app(tmp_path: Path) -> None:
    """bb84 (NetQASM SDK, unchanged) and a native app on the same node at once: the
    native app's 300 flips all read 1, bb84's keys agree."""
    from qnodeos import Network
    from qnodeos.netqasm.folder import network_for

    net = network_for(str(APPS / "bb84"))
    net["apps"][0]["args"]["qubits"] = 2  # alice's quota: leave the native app room
    net["apps"].append(
        {"name": "native", "node": "alice", "module": "tests.integration.session_app",
         "args": {"shots": 300, "qubits": 1}}
    )  # fmt: skip
    res = Network.from_dict(net).run(run_dir=tmp_path / "run")
    assert res.ok, res.errors
    assert res["native"]["ones"] == 300
    assert res["alice"]["qber"] == 0 and same_basis_agree(res["alice"], res["bob"])
