"""Apps written for QuTech's stack in the styles of its courses and QNE templates run
unchanged on qnodeos (``qnodeos netqasm``, real processes), and their numbers match
closed forms:

- BBPSSW distillation (course style: ``get_qubit_state(q, reduced_dm=False)`` on the
  pairs, fidelity as phi00^T rho phi00) on a Werner link of fidelity F: the input state
  is the 4x4 Werner state (F exactly), success has probability
  p = F^2 + 2F(1-F)/3 + 5((1-F)/3)^2 (4 sigma, binomial), and a kept pair has fidelity
  (F^2 + ((1-F)/3)^2) / p exactly (the state is read, not sampled: 1e-9).
- A QNE-template teleport app (``netqasm.sdk.toolbox.sim_states``: ``qubit_from``,
  ``to_dm``, ``get_fidelity``): NetSquid's root fidelity, 1 on a perfect link and
  sqrt((2F+1)/3) on a Werner link (1e-9), in folders whose names are no valid network
  names (dots, spaces, longer than 24 characters).
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
pytest.importorskip("netqasm")
ROOT = Path(__file__).resolve().parents[2]

BBPSSW_ALICE = '''
import numpy as np
from netqasm.sdk import EPRSocket
from netqasm.sdk.external import NetQASMConnection, Socket, get_qubit_state

PHI00 = np.array([1, 0, 0, 1]) / np.sqrt(2)


def bbpssw_alice(q1, q2, conn, socket):
    """Bilateral CNOT, measure the second pair, keep the first if both saw the same."""
    q1.cnot(q2)
    m = q2.measure()
    conn.flush()
    socket.send(str(int(m)))
    return int(m) == int(socket.recv())


def main(app_config=None):
    socket = Socket("alice", "bob")
    epr_socket = EPRSocket("bob")
    alice = NetQASMConnection(app_name=app_config.app_name, epr_sockets=[epr_socket])
    with alice:
        q1, q2 = epr_socket.create_keep(number=2)
        alice.flush()
        dm_in = get_qubit_state(q1, reduced_dm=False)
        dm_in2 = get_qubit_state(q2, reduced_dm=False)
        socket.send("go")  # bob starts once the input states are read
        success = bbpssw_alice(q1, q2, alice, socket)
        dm_out = get_qubit_state(q1, reduced_dm=False)
        socket.send("read")
        q1.measure()
    return {
        "success": success,
        "shapes": [list(dm_in.shape), list(dm_in2.shape), list(dm_out.shape)],
        "f_in": [float((PHI00 @ d @ PHI00).real) for d in (dm_in, dm_in2)],
        "f_out": float((PHI00 @ dm_out @ PHI00).real),
    }
'''

BBPSSW_BOB = '''
from netqasm.sdk import EPRSocket
from netqasm.sdk.external import NetQASMConnection, Socket


def main(app_config=None):
    socket = Socket("bob", "alice")
    epr_socket = EPRSocket("alice")
    bob = NetQASMConnection(app_name=app_config.app_name, epr_sockets=[epr_socket])
    with bob:
        q1, q2 = epr_socket.recv_keep(number=2)
        bob.flush()
        socket.recv()
        q1.cnot(q2)
        m = q2.measure()
        bob.flush()
        other = socket.recv()
        socket.send(str(int(m)))
        socket.recv()
        q1.measure()
    return {"success": int(m) == int(other)}
'''


QNE_SENDER = '''
from netqasm.sdk import EPRSocket, Qubit
from netqasm.sdk.classical_communication.message import StructuredMessage
from netqasm.sdk.external import NetQASMConnection, Socket
from netqasm.sdk.toolbox.state_prep import set_qubit_state


def main(app_config=None, phi=0.0, theta=0.0):
    socket = Socket("sender", "receiver", log_config=app_config.log_config)
    epr_socket = EPRSocket("receiver")
    sender = NetQASMConnection(
        app_name=app_config.app_name, log_config=app_config.log_config,
        epr_sockets=[epr_socket],
    )
    with sender:
        q = Qubit(sender)
        set_qubit_state(q, phi, theta)
        epr = epr_socket.create_keep()[0]
        q.cnot(epr)
        q.H()
        m1 = q.measure()
        m2 = epr.measure()
    m1, m2 = int(m1), int(m2)
    socket.send_structured(StructuredMessage("Corrections", (m1, m2)))
    socket.send_silent(str((phi, theta)))
    return {"m1": m1, "m2": m2}
'''

QNE_RECEIVER = '''
from netqasm.sdk import EPRSocket
from netqasm.sdk.external import NetQASMConnection, Socket, get_qubit_state
from netqasm.sdk.toolbox.sim_states import get_fidelity, qubit_from, to_dm


def main(app_config=None):
    socket = Socket("receiver", "sender", log_config=app_config.log_config)
    epr_socket = EPRSocket("sender")
    receiver = NetQASMConnection(
        app_name=app_config.app_name, log_config=app_config.log_config,
        epr_sockets=[epr_socket],
    )
    with receiver:
        epr = epr_socket.recv_keep()[0]
        receiver.flush()
        m1, m2 = socket.recv_structured().payload
        if m2 == 1:
            epr.X()
        if m1 == 1:
            epr.Z()
        receiver.flush()
        dm = get_qubit_state(epr)
        phi, theta = eval(socket.recv_silent())
        original = qubit_from(phi, theta)
        original_dm = to_dm(original)
        fidelity = get_fidelity(original, dm)
    return {
        "original_state": original_dm.tolist(),
        "received_state": dm.tolist(),
        "fidelity": fidelity,
    }
'''


def write_app(folder: Path, parties: dict[str, str]) -> Path:
    folder.mkdir(parents=True)
    for party, text in parties.items():
        (folder / f"app_{party}.py").write_text(text)
    return folder


def run(folder: Path, *args: str, tmp: Path) -> dict[str, Any]:
    """``qnodeos netqasm FOLDER``: each party's result."""
    out = subprocess.run(
        [sys.executable, "-m", "qnodeos", "netqasm", str(folder), "--json", "--quiet",
         "--run-dir", str(tmp / "run"), *args],
        cwd=ROOT, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    data = json.loads(out.stdout)
    return {k: v["result"] for k, v in data.items() if not k.startswith("_")}


def test_bbpssw_course_app_matches_closed_forms(tmp_path: Path) -> None:
    f, runs = 0.9, 200
    app = write_app(tmp_path / "bbpssw", {"alice": BBPSSW_ALICE, "bob": BBPSSW_BOB})
    got = run(app, "--fidelity", str(f), "--num", str(runs), tmp=tmp_path)
    alice, bob = got["alice"]["runs"], got["bob"]["runs"]
    assert len(alice) == len(bob) == runs
    q = (1 - f) / 3
    p = f * f + 2 * f * q + 5 * q * q
    f_out = (f * f + q * q) / p
    assert all(a["success"] == b["success"] for a, b in zip(alice, bob, strict=True))
    assert all(r["shapes"] == [[4, 4]] * 3 for r in alice)
    assert all(abs(x - f) < 1e-9 for r in alice for x in r["f_in"])
    kept = [r["f_out"] for r in alice if r["success"]]
    assert within(len(kept) / runs, p, runs), (len(kept) / runs, p)
    assert all(abs(x - f_out) < 1e-9 for x in kept), (kept[:5], f_out)


@pytest.mark.parametrize(
    "name,fidelity",
    [("qne_teleport", 1.0), ("netqasm-teleport.v2 from QNE (the template)", 0.8)],
)
def test_qne_template_sim_states(name: str, fidelity: float, tmp_path: Path) -> None:
    phi, theta = 0.7, 1.1
    app = write_app(tmp_path / name, {"sender": QNE_SENDER, "receiver": QNE_RECEIVER})
    link = [] if fidelity == 1.0 else ["--fidelity", str(fidelity)]
    got = run(app, "--input", f"sender.phi={phi}", "--input", f"sender.theta={theta}",
              *link, tmp=tmp_path)  # fmt: skip
    rec = got["receiver"]
    assert abs(rec["fidelity"] - math.sqrt((2 * fidelity + 1) / 3)) < 1e-9, rec["fidelity"]
    psi = np.array([math.cos(theta / 2), np.exp(1j * phi) * math.sin(theta / 2)])
    original = np.array([[complex(*z) if isinstance(z, list) else z for z in row]
                         for row in rec["original_state"]])  # fmt: skip
    assert np.allclose(original, np.outer(psi, psi.conj()), atol=1e-12)
