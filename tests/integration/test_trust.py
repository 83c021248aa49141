"""Nobody can pose as someone else, and nothing is left behind (real processes).

With keys (``qnodeos keys``), every tcp endpoint speaks CURVE and identities come from
keys: strangers cannot connect, an app cannot register under another app's name, a node
cannot speak for another node. Without keys: a stranger cannot use a node's quantum
process, a second node with the same name or a port in use is refused naming the key,
and a runtime directory someone else could reach is refused.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import msgspec
import pytest
import trio
import zmq

from qnodeos import sdk
from qnodeos.lang import codec
from qnodeos.lang import messages as m
from qnodeos.runtime.security import KeyStore

from .helpers import ROOT, free_port, start_node

pytestmark = pytest.mark.slow


def keyed_network(tmp_path: Path) -> tuple[Path, dict[str, dict[str, str]]]:
    eps = {
        n: {k: f"tcp://127.0.0.1:{free_port()}" for k in ("app", "qdevice", "peer", "qpeer")}
        for n in ("alice", "bob", "mallory")
    }
    nodes = "".join(
        f"""
[nodes.{n}]
device = "generic"
qubits = 2
speed = inf
app_endpoint = "{e["app"]}"
qdevice_endpoint = "{e["qdevice"]}"
peer_endpoint = "{e["peer"]}"
qpeer_endpoint = "{e["qpeer"]}"
"""
        for n, e in eps.items()
    )
    net = tmp_path / "net.toml"
    net.write_text(
        f'name = "keyed"\nkeys = "keys"\n{nodes}\n'
        '[[links]]\nnodes = ["alice", "bob"]\nmodel = "perfect"\ncycle_ns = 1000\n'
    )
    return net, eps


@pytest.fixture
def keyed(tmp_path: Path) -> Iterator[tuple[Path, dict[str, dict[str, str]]]]:
    net, eps = keyed_network(tmp_path)
    made = subprocess.run(
        [sys.executable, "-m", "qnodeos", "keys", str(net), "--app", "a1", "--app", "b1"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    assert "5 new key pair(s)" in made.stdout
    secret = tmp_path / "keys" / "nodes" / "alice.key_secret"
    assert (secret.stat().st_mode & 0o077) == 0
    procs = [start_node(n, net, tmp_path / f"{n}.log") for n in ("alice", "bob")]
    yield net, eps
    for p in procs:
        p.stop()


def raw(url: str, curve: tuple[bytes, bytes, bytes] | None = None) -> zmq.Socket[bytes]:
    sock = zmq.Context.instance().socket(zmq.DEALER)
    sock.setsockopt(zmq.LINGER, 0)
    sock.setsockopt(zmq.RCVTIMEO, 700)
    if curve is not None:
        public, secret, server = curve
        sock.curve_publickey, sock.curve_secretkey, sock.curve_serverkey = public, secret, server
    sock.connect(url)
    return sock


def answer(sock: zmq.Socket[bytes]) -> m.NodeToApp | None:
    try:
        return codec.node_to_app().decode(sock.recv())
    except zmq.Again:
        return None


async def apps_work(net: Path) -> tuple[int, list[sdk.Pair], list[sdk.Pair]]:
    async with (
        sdk.connect("alice", app="a1", qubits=1, network=str(net)) as a,
        sdk.connect("bob", app="b1", qubits=1, network=str(net)) as b,
    ):
        async with a.block() as blk:
            q = blk.qubit()
            q.x()
            out = q.measure()
        got: dict[str, list[sdk.Pair]] = {}

        async def side(name: str, node: sdk.Node, peer: str, app: str, create: bool) -> None:
            epr = node.epr_socket(peer, app)
            ask = epr.create_measure if create else epr.recv_measure
            got[name] = await ask(20, bases="Z")

        async with trio.open_nursery() as nursery:
            nursery.start_soon(side, "a", a, "bob", "b1", True)
            nursery.start_soon(side, "b", b, "alice", "a1", False)
        # a message that claims to come from bob but was sent with mallory's key
        return out.value, got["a"], got["b"]


def test_with_keys_identities_come_from_keys(
    keyed: tuple[Path, dict[str, dict[str, str]]], tmp_path: Path
) -> None:
    net, eps = keyed
    keys = KeyStore(tmp_path / "keys")
    # Apps with their keys work end to end: a block, and pairs between the nodes.
    value, pa, pb = trio.run(apps_work, net)
    assert value == 1
    assert [p.ent_id for p in pa] == [p.ent_id for p in pb]
    assert all(x.outcome == y.outcome for x, y in zip(pa, pb, strict=True))
    enc = codec.app_to_node()
    alice = keys.node("alice")
    register = enc.encode(m.Register(app="a1", qubits=0))
    # No key, or a key nobody listed: no connection at all.
    for curve in (None, (*zmq.curve_keypair(), alice.public)):
        sock = raw(eps["alice"]["app"], curve)
        sock.send(register)
        assert answer(sock) is None
        sock.close()
    # b1's key cannot register as a1.
    b1 = keys.app("b1", secret=True)
    assert b1.secret is not None
    sock = raw(eps["alice"]["app"], (b1.public, b1.secret, alice.public))
    sock.send(register)
    refused = answer(sock)
    assert isinstance(refused, m.ErrorReply) and refused.code == "not_authorized"
    sock.close()
    # The quantum process takes only its own node's key.
    mallory = keys.node("mallory", secret=True)
    assert mallory.secret is not None
    for curve in (None, (mallory.public, mallory.secret, alice.public)):
        sock = raw(eps["alice"]["qdevice"], curve)
        sock.send(codec.to_device().encode(m.DeviceRequest(seq=1, ops=[m.PhysOp("x", (0,))])))
        assert answer(sock) is None
        sock.close()
    # mallory (a node of the network) cannot speak for bob on alice's peer endpoint.
    trio.run(forged_message_is_dropped, net, eps, mallory, alice)


async def forged_message_is_dropped(
    net: Path, eps: dict[str, dict[str, str]], mallory: object, alice: object
) -> None:
    from qnodeos.runtime.security import KeyPair

    assert isinstance(mallory, KeyPair) and isinstance(alice, KeyPair)
    assert mallory.secret is not None
    sock = raw(eps["alice"]["peer"], (mallory.public, mallory.secret, alice.public))
    async with (
        sdk.connect("alice", app="a1", qubits=0, network=str(net)) as a,
        sdk.connect("bob", app="b1", qubits=0, network=str(net)) as b,
    ):
        forged = m.Carry(from_node="bob", id=1, from_app="b1", to_app="a1", data=b"forged")
        sock.send(codec.node_to_node().encode(forged))
        await b.socket("alice", "a1").send("genuine")
        assert await a.socket("bob", "b1").recv() == "genuine"
        with trio.move_on_after(0.5):
            extra = await a.socket("bob", "b1").recv()
            raise AssertionError(f"forged message delivered: {extra!r}")
    sock.close()


def plain_network(tmp_path: Path, app_endpoint: str | None = None) -> Path:
    net = tmp_path / "plain.toml"
    app = f'app_endpoint = "{app_endpoint}"\n' if app_endpoint else ""
    net.write_text(f'name = "plain"\n[nodes.bob]\ndevice = "generic"\nqubits = 1\n{app}')
    return net


def test_a_second_node_with_the_same_name_refuses_to_start(tmp_path: Path) -> None:
    env = {**os.environ, "QNODEOS_RUNTIME_DIR": str(tmp_path / "rt")}
    os.environ["QNODEOS_RUNTIME_DIR"] = env["QNODEOS_RUNTIME_DIR"]
    try:
        net = plain_network(tmp_path)
        first = start_node("bob", net, tmp_path / "first.log")
        second = subprocess.run(
            [sys.executable, "-m", "qnodeos", "node", "bob", "--network", str(net)],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=30,
            env=env,
        )
        assert second.returncode != 0 and "READY" not in second.stdout
        assert "in use by another running process" in second.stderr
        assert "nodes.bob." in second.stderr

        async def still_serves() -> int:
            async with sdk.connect("bob", app="x", qubits=1, network=str(net)) as node:
                async with node.block() as b:
                    q = b.qubit()
                    q.x()
                    out = q.measure()
                return int(out.value)

        assert trio.run(still_serves) == 1  # the first one kept its sockets
        first.stop()
        assert sorted(p.name for p in (tmp_path / "rt").iterdir()) == []  # nothing left
    finally:
        del os.environ["QNODEOS_RUNTIME_DIR"]


def test_a_port_in_use_names_the_network_file_key(tmp_path: Path) -> None:
    port = free_port()
    taken = zmq.Context.instance().socket(zmq.ROUTER)
    taken.bind(f"tcp://127.0.0.1:{port}")
    try:
        net = plain_network(tmp_path, f"tcp://127.0.0.1:{port}")
        proc = subprocess.run(
            [sys.executable, "-m", "qnodeos", "node", "bob", "--network", str(net)],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=30,
            env={**os.environ, "QNODEOS_RUNTIME_DIR": str(tmp_path / "rt")},
        )
    finally:
        taken.close(linger=0)
    assert proc.returncode == 2, proc.stderr
    assert f"nodes.bob.app_endpoint: tcp://127.0.0.1:{port} is already in use" in proc.stderr


@pytest.mark.parametrize("mode", [0o755, 0o733])
def test_a_runtime_dir_others_can_enter_is_refused(tmp_path: Path, mode: int) -> None:
    rt = tmp_path / "shared"
    rt.mkdir()
    rt.chmod(mode)
    proc = subprocess.run(
        [sys.executable, "-m", "qnodeos", "node", "bob", "--network", str(plain_network(tmp_path))],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=30,
        env={**os.environ, "QNODEOS_RUNTIME_DIR": str(rt)},
    )
    assert proc.returncode == 2
    assert f"runtime directory {rt} is open to other users (mode {mode:o})" in proc.stderr


@pytest.mark.skipif(os.getuid() != 0, reason="needs root to make a directory of another user")
def test_a_runtime_dir_of_another_user_is_refused(tmp_path: Path) -> None:
    rt = tmp_path / "squatted"
    rt.mkdir(mode=0o700)
    os.chown(rt, 12345, 12345)
    proc = subprocess.run(
        [sys.executable, "-m", "qnodeos", "node", "bob", "--network", str(plain_network(tmp_path))],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=30,
        env={**os.environ, "QNODEOS_RUNTIME_DIR": str(rt)},
    )
    assert proc.returncode == 2
    assert "not a directory owned by you" in proc.stderr and "uid 12345" in proc.stderr


def test_a_stranger_cannot_use_the_quantum_process(tmp_path: Path) -> None:
    rt = tmp_path / "rt"
    os.environ["QNODEOS_RUNTIME_DIR"] = str(rt)
    try:
        net = plain_network(tmp_path)
        node = start_node("bob", net, tmp_path / "bob.log")
        sock = raw(f"ipc://{rt}/plain-bob-qdevice.sock")
        sock.send(codec.to_device().encode(m.Ping(seq=1)))
        reply = codec.from_device().decode(sock.recv())
        assert isinstance(reply, m.ErrorReply) and reply.code == "not_authorized"
        sock.send(msgspec.msgpack.encode([2, {"type": "dreq", "seq": 1, "ops": [["x", [0]]]}]))
        reply = codec.from_device().decode(sock.recv())
        assert isinstance(reply, m.ErrorReply) and reply.code == "not_authorized"
        sock.close()
        node.stop()
    finally:
        del os.environ["QNODEOS_RUNTIME_DIR"]


