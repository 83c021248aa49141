"""A block on a qubit whose state is in another node's quantum process waits for it to
come (issue 20). That wait is the simulator's, not the device's: on hardware the qubit
is right there. So the block's ops run at the device time they would have run at had
the state been here (no extra idle decay), its span in the timeline is its ops' time,
and the wait is reported apart (``waits.transfer``)."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from qnodeos.config.network import LinkConfig, NodeConfig
from qnodeos.hardware.params import generic
from qnodeos.lang import codec
from qnodeos.lang import messages as m
from qnodeos.netlink.models import Perfect
from qnodeos.qdevice.server import Out, QDeviceServer, ToKernel, ToPeer
from qnodeos.runtime.timeline import ENV

T2_NS = 200_000.0  # 0.2 ms: a wait of 1 ms would all but dephase the pair


def _node(name: str, seed: int) -> NodeConfig:
    spec = generic(2)
    kinds = {k: dataclasses.replace(v, t2_ns=T2_NS) for k, v in spec.kinds.items()}
    return NodeConfig(
        name=name,
        device=dataclasses.replace(spec, kinds=kinds),
        speed=1.0,
        seed=seed,
        app_endpoint="",
        qdevice_endpoint="",
        peer_endpoint="",
    )


def _bobs_block(wait_ns: float, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    """alice (the station's node) and bob share a Phi+ pair heralded at 100 ns; at
    10 us bob's block prepares a local qubit (init, X: 120 ns), then applies H to his
    half, whose state is in alice's process and reaches bob ``wait_ns`` later. (bob's
    reply, the pair's state at the block's end, bob's timeline row of the block)."""
    monkeypatch.setenv(ENV, str(tmp_path))
    link = LinkConfig(nodes=("alice", "bob"), model=Perfect(cycle_ns=100), seed=1)
    q = {n: QDeviceServer(_node(n, i), [link]) for i, n in enumerate(("alice", "bob"))}
    enc, dec = codec.to_device(), codec.from_device()
    replies: dict[str, list[m.FromDevice]] = {"alice": [], "bob": []}
    held: list[ToPeer] = []

    def run(at: str, outs: list[Out], now_ns: float, hold: bool = False) -> None:
        queue = [(at, o) for o in outs]
        while queue:
            here, o = queue.pop(0)
            if isinstance(o, ToKernel):
                replies[here].append(dec.decode(o.frames[1]))
            elif isinstance(o, ToPeer):
                if hold:
                    held.append(o)
                else:
                    queue += [(o.node, x) for x in q[o.node].peer_message(o.data, now_ns, 0.0)]

    def send(at: str, msg: m.ToDevice, now_ns: float, hold: bool = False) -> None:
        run(at, q[at].handle([b"k", enc.encode(msg)], now_ns, 0.0), now_ns, hold)

    for n in q:
        send(n, m.Ping(seq=0), 0.0)
    for seq, n in enumerate(("bob", "alice"), start=1):
        peer = "alice" if n == "bob" else "bob"
        ent = m.Entangle(
            seq=seq, peer=peer, key="r", qubits=[0], max_attempts=10, expires_s=60.0, pairs=1
        )
        send(n, ent, 0.0)
    assert q["bob"].away == {0: "alice"}
    ops = [m.PhysOp("init", (1,)), m.PhysOp("x", (1,)), m.PhysOp("h", (0,))]
    send("bob", m.DeviceRequest(seq=5, ops=ops), 10_000.0, hold=True)
    (pull,) = held
    held.clear()
    run("bob", [pull], 10_000.0, hold=True)  # alice gives the group: it travels
    (group,) = held
    run("alice", [group], 10_000.0 + wait_ns)  # it reaches bob
    reply = replies["bob"][-1]
    assert isinstance(reply, m.DeviceReply) and reply.error is None, reply
    bob = q["bob"]
    assert bob.timeline is not None
    row = next(r for r in bob.timeline.rows if r["kind"] == "batch" and r["seq"] == 5)
    pair = [0, bob.groups.ghosts[("alice", 0)]]  # both halves, here now
    bob.device.decohere([0], reply.now_ns)  # bob's half up to the block's end
    return reply, bob.device.reg.density_matrix(pair), row


def test_waiting_for_a_state_from_another_process_is_not_device_time(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    now, state_now, now_row = _bobs_block(0.0, tmp_path / "now", monkeypatch)
    reply, state, row = _bobs_block(1_000_000.0, tmp_path / "late", monkeypatch)
    assert reply.start_ns == now.start_ns == 10_000 and reply.now_ns == now.now_ns == 10_140
    assert (row["start"], row["end"]) == (now_row["start"], now_row["end"]) == (10_000, 10_140)
    assert row["waits"]["transfer"] == 1_000_000.0 and now_row["waits"]["transfer"] == 0.0
    # no idle decay for the simulator's wait: bob's half dephased from the herald to his
    # H (at 10,120 ns), e^(-10 us / T2) = 0.95 of its coherence, not for 1 ms more (0.007)
    assert np.allclose(state, state_now)
    phi = np.zeros((4, 4))
    phi[0, 0] = phi[0, 3] = phi[3, 0] = phi[3, 3] = 0.5
    keep = np.exp(-(10_120 - 100) / T2_NS)
    phi[0, 3] *= keep
    phi[3, 0] *= keep
    h = np.kron(np.array([[1, 1], [1, -1]]) / np.sqrt(2), np.eye(2))
    assert np.allclose(state, h @ phi @ h.T)
