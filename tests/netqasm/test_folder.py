"""NetQASM app folders as qnodeos networks: roles.yaml, <party>.yaml inputs,
network.yaml mapped onto qnodeos nodes and links, --network and --input, and errors
that name the file and what is wrong; one folder of our own run end to end."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from qnodeos.errors import ConfigError

pytest.importorskip("netqasm")
from qnodeos.netqasm.folder import network_for  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]

SENDER = """
from netqasm.sdk import EPRSocket, Qubit
from netqasm.sdk.external import NetQASMConnection, Socket


def main(app_config=None, flip=0):
    socket = Socket("sender", "receiver")
    epr = EPRSocket("receiver")
    with NetQASMConnection(app_config.app_name, epr_sockets=[epr]) as conn:
        q = epr.create_keep()[0]
        if flip:
            q.X()
        m = q.measure()
    socket.send(str(int(m)))
    return {"m": int(m), "node": app_config.node_name}
"""
RECEIVER = """
from netqasm.sdk import EPRSocket
from netqasm.sdk.external import NetQASMConnection, Socket


def main(app_config=None):
    socket = Socket("receiver", "sender")
    epr = EPRSocket("sender")
    with NetQASMConnection(app_config.app_name, epr_sockets=[epr]) as conn:
        m = epr.recv_keep()[0].measure()
    theirs = int(socket.recv())
    return {"m": int(m), "theirs": theirs, "node": app_config.node_name}
"""
NETWORK_YAML = """
nodes:
  - name: delft
    hardware: Generic
    gate_fidelity: 0.99
    qubits:
      - id: 0
        t1: 1000000
        t2: 500000
      - id: 1
        t1: 1000000
        t2: 500000
  - name: hague
    hardware: NV
    qubits:
      - id: 0
        t1: 0
        t2: 0
      - id: 1
        t1: 0
        t2: 0
links:
  - name: ch
    node_name1: delft
    node_name2: hague
    noise_type: Depolarise
    fidelity: 0.9
"""


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    d = tmp_path / "flipper"
    d.mkdir()
    (d / "app_sender.py").write_text(SENDER)
    (d / "app_receiver.py").write_text(RECEIVER)
    (d / "roles.yaml").write_text("sender: delft\nreceiver: hague\n")
    (d / "sender.yaml").write_text("flip: 1\n")
    return d


def test_network_yaml_roles_and_inputs(folder: Path) -> None:
    (folder / "network.yaml").write_text(NETWORK_YAML)
    net = network_for(str(folder))
    nodes = net["nodes"]
    assert nodes["delft"]["device"] == "generic" and nodes["delft"]["qubits"] == 2
    assert nodes["delft"]["params"]["kinds"]["qubit"]["t2_ns"] == 500000
    assert nodes["delft"]["params"]["kinds"]["qubit"]["gates"]["h"]["error"] == pytest.approx(0.01)
    assert nodes["hague"] == {"device": "nv", "qubits": 2, "speed": float("inf"), "seed": 2}
    (link,) = net["links"]
    assert link["model"] == "depolarise" and link["fidelity"] == 0.9
    apps = {a["name"]: a for a in net["apps"]}
    assert apps["sender"]["node"] == "delft" and apps["receiver"]["node"] == "hague"
    assert apps["sender"]["args"]["inputs"] == {"flip": 1}
    assert apps["sender"]["args"]["roles"] == {"sender": "delft", "receiver": "hague"}
    from qnodeos import Network

    Network.from_dict(net)  # the loader takes it (devices, overrides, links)


def test_default_network_and_given_inputs(folder: Path) -> None:
    net = network_for(str(folder), fidelity=0.8, given=["sender.flip=0", "receiver.x=[1, 2]"])
    assert sorted(net["nodes"]) == ["delft", "hague"]
    assert net["links"][0]["fidelity"] == 0.8
    apps = {a["name"]: a for a in net["apps"]}
    assert apps["sender"]["args"]["inputs"] == {"flip": 0}
    assert apps["receiver"]["args"]["inputs"] == {"x": [1, 2]}


@pytest.mark.parametrize(
    "change,error",
    [
        (lambda d: (d / "roles.yaml").write_text("sender: delft\n"), "no node for part"),
        (lambda d: (d / "roles.yaml").write_text("[1, 2"), "cannot read"),
        (lambda d: (d / "sender.yaml").write_text("- 1\n"), "expected name: value"),
        (
            lambda d: (d / "network.yaml").write_text(
                NETWORK_YAML.replace("Depolarise", "Bitflip")
            ),
            "noise_type 'Bitflip' is not supported",
        ),
        (
            lambda d: (d / "network.yaml").write_text(NETWORK_YAML.replace("hague", "leiden")),
            "does not have",
        ),
        (lambda d: [p.unlink() for p in d.glob("app_*.py")], "not a NetQASM app folder"),
    ],
)
def test_folder_errors_name_the_problem(folder: Path, change: object, error: str) -> None:
    change(folder)  # type: ignore[operator]
    with pytest.raises(ConfigError, match=error):
        network_for(str(folder))


def test_bad_input_settings(folder: Path) -> None:
    for bad, error in (("flip=1", "PARTY.NAME=VALUE"), ("nobody.flip=1", "no party 'nobody'")):
        with pytest.raises(ConfigError, match=error):
            network_for(str(folder), given=[bad])


def run_folder(folder: Path, tmp_path: Path) -> dict[str, Any]:
    """``qnodeos netqasm FOLDER --json``, which must succeed: its results."""
    out = subprocess.run(
        [sys.executable, "-m", "qnodeos", "netqasm", str(folder), "--json", "--quiet",
         "--run-dir", str(tmp_path / "run")],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-2000:]
    results: dict[str, Any] = json.loads(out.stdout)
    return results


@pytest.mark.slow
def test_folder_runs_on_its_network_yaml(folder: Path, tmp_path: Path) -> None:
    (folder / "network.yaml").write_text(NETWORK_YAML.replace("fidelity: 0.9", "fidelity: 1.0"))
    got = run_folder(folder, tmp_path)
    sender, receiver = got["sender"]["result"], got["receiver"]["result"]
    assert sender["node"] == "delft" and receiver["node"] == "hague"
    assert receiver["theirs"] == sender["m"] == 1 - receiver["m"]  # flipped on a Phi+ pair


def test_network_file_gives_nodes_and_links(folder: Path, tmp_path: Path) -> None:
    toml = tmp_path / "lab.toml"
    toml.write_text(
        'name = "lab"\n[nodes.delft]\ndevice = "nv"\nqubits = 3\n'
        '[nodes.hague]\ndevice = "nv"\nqubits = 2\n'
        '[[links]]\nnodes = ["delft", "hague"]\nmodel = "perfect"\n'
        '[[apps]]\nnode = "delft"\nmodule = "qnodeos.apps.ramsey"\n'
    )
    net = network_for(str(folder), str(toml))
    assert net["name"] == "lab" and net["nodes"]["delft"]["qubits"] == 3
    assert [a["name"] for a in net["apps"]] == ["receiver", "sender"]  # its own apps not run
    assert {a["name"]: a["args"]["qubits"] for a in net["apps"]} == {"receiver": 2, "sender": 3}
    with pytest.raises(ConfigError, match="cannot read network file"):
        network_for(str(folder), str(tmp_path / "missing.toml"))


def test_deterministic_mode_is_refused_by_name(folder: Path) -> None:
    from qnodeos import Network

    res = Network.from_dict(network_for(str(folder))).run(deterministic=True)
    assert set(res.errors) == {"sender", "receiver"}
    assert all("without --deterministic" in e for e in res.errors.values())


def test_roles_given_on_the_command_line(folder: Path) -> None:
    net = network_for(str(folder), placed=["sender=alice", "receiver=alice"])
    assert sorted(net["nodes"]) == ["alice"]
    assert {a["node"] for a in net["apps"]} == {"alice"}
    assert {a["args"]["qubits"] for a in net["apps"]} == {2}  # 5 qubits, 2 parties
    for bad, error in (("sender", "PARTY=NODE"), ("nobody=alice", "no party 'nobody'")):
        with pytest.raises(ConfigError, match=error):
            network_for(str(folder), placed=[bad])


NV_COMPILED = """
from netqasm.sdk import Qubit
from netqasm.sdk.external import NetQASMConnection
from netqasm.sdk.transpile import NVSubroutineTranspiler


def main(app_config=None):
    with NetQASMConnection("solo", compiler=NVSubroutineTranspiler) as conn:
        q, r = Qubit(conn), Qubit(conn)
        q.X()
        q.cnot(r)
        m, m2 = q.measure(), r.measure()
    return {"m": int(m), "m2": int(m2)}
"""


@pytest.mark.slow
def test_nv_transpiled_subroutines_go_as_nv(tmp_path: Path) -> None:
    """netqasm's NV transpiler turns cnot into crot_x and rotations; ids 30/31 mean
    cnot/cphase in the vanilla flavour, so the connection must send them as NV."""
    d = tmp_path / "solo"
    d.mkdir()
    (d / "app_solo.py").write_text(NV_COMPILED)
    assert run_folder(d, tmp_path)["solo"]["result"] == {"m": 1, "m2": 1}


@pytest.mark.parametrize(
    "got",
    [None, [], [0], [0, "s"], [0, "s", "a", "b"], [0, "m", "h"], [300, "s", "x"],
     [-1, "s", "x"], ["0", "s", "x"], [0, ["s"], "x"], [0, "q", "x"], [True, 1, 2], "s"],
)  # fmt: skip
def test_peer_socket_messages_are_checked(got: object) -> None:
    """What a peer party sends on NetQASM sockets is checked before it is used."""
    from qnodeos.netqasm.backend import socket_message

    with pytest.raises(ValueError, match="not a NetQASM socket message"):
        socket_message(got)
    assert socket_message([3, "s", "hi"]) == (3, ["s", "hi"])
    assert socket_message([0, "m", "H", [1, 2]]) == (0, ["m", "H", [1, 2]])


@pytest.mark.parametrize(
    "name", ["netqasm-teleport.v2", "my app", "x" * 40, "...", "übung 1", "2nd-try"]
)
def test_any_folder_name_makes_a_valid_network(name: str, tmp_path: Path) -> None:
    from qnodeos import Network
    from qnodeos.netqasm.folder import VALID_NAME, network_name

    d = tmp_path / name
    d.mkdir()
    (d / "app_sender.py").write_text(SENDER)
    (d / "app_receiver.py").write_text(RECEIVER)
    net = network_for(str(d))
    assert VALID_NAME.match(net["name"]) and net["name"] == network_name(name)
    Network.from_dict(net)  # the loader takes the name
    # names that differ only in what is cut away stay different
    assert network_name(name) != network_name(name + "!")


def test_valid_folder_names_are_kept() -> None:
    from qnodeos.netqasm.folder import network_name

    assert network_name("teleport") == "netqasm-teleport"
    assert network_name("x" * 24) == "netqasm-" + "x" * 24
