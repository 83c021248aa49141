"""Quantum teleportation between two nodes, repeated over the six cardinal states; the
receiver measures each teleported state in its eigenbasis and reports the fidelity.

With a Werner pair of fidelity F and ideal gates the fidelity is (2F + 1) / 3. Run by
``qnodeos run`` with two entries::

    [[apps]]
    node = "alice"
    module = "qnodeos.apps.teleport"
    args = { role = "sender", me = "tele-s", peer_node = "bob", peer = "tele-r", rounds = 60 }
    [[apps]]
    node = "bob"
    module = "qnodeos.apps.teleport"
    args = { role = "receiver", me = "tele-r", peer_node = "alice", peer = "tele-s" }

The sender's EPR half is on the communication qubit (NV: the electron); the state to
send is prepared on a second qubit (NV: a carbon, which the node reads out through the
electron once that is free).
"""

from __future__ import annotations

from typing import Any

import trio

from qnodeos import sdk

from .common import STATES, prepare, rate, to_z


async def main(
    node: str,
    *,
    role: str,
    me: str | None = None,
    peer_node: str | None = None,
    peer: str,
    rounds: int = 60,
    min_fidelity: float = 0.0,
    timeout: float = 30.0,
) -> dict[str, Any]:
    peer_node = peer_node or sdk.peer_node(peer)  # the peer, named once
    async with sdk.connect(node, app=me, qubits=2) as conn:
        epr = conn.epr_socket(peer_node, peer)
        sock = conn.socket(peer_node, peer)
        if role == "sender":
            return await _send(conn, epr, sock, rounds, min_fidelity, timeout)
        return await _receive(conn, epr, sock, timeout)


async def _send(
    conn: sdk.Node,
    epr: sdk.EprSocket,
    sock: sdk.ClassicalSocket,
    rounds: int,
    min_fidelity: float,
    timeout: float,
) -> dict[str, Any]:
    start = trio.current_time()
    await sock.send(rounds)
    for i in range(rounds):
        conn.progress(i, rounds, "teleports")
        k = i % len(STATES)
        (pair,) = await epr.create_keep(min_fidelity=min_fidelity, timeout=timeout)
        e = pair.qubit
        assert e is not None
        async with conn.block() as b:
            d = b.qubit()
            prepare(d, k)
            d.cnot(e)
            d.h()
            m_e = e.measure()
            m_d = d.measure()  # NV: d is a carbon, read out through the electron
        await sock.send([k, m_d.value, m_e.value])
    conn.progress(rounds, rounds, "teleports")
    return {"role": "sender", "rounds": rounds, "seconds": trio.current_time() - start}


async def _receive(
    conn: sdk.Node, epr: sdk.EprSocket, sock: sdk.ClassicalSocket, timeout: float
) -> dict[str, Any]:
    rounds = await sock.recv()
    good = 0
    for r in range(rounds):
        conn.progress(r, rounds, "teleports")
        (pair,) = await epr.recv_keep(timeout=timeout)
        q = pair.qubit
        assert q is not None
        k, m_d, m_e = await sock.recv()
        _, basis, expected = STATES[k]
        async with conn.block():
            if m_e:
                q.x()
            if m_d:
                q.z()
            to_z(q, basis)
            out = q.measure()
        good += out.value == expected
    conn.progress(rounds, rounds, "teleports")
    f, err = rate(good, rounds)
    return {"role": "receiver", "rounds": rounds, "fidelity": f, "stderr": err}


def format_result(r: dict[str, Any]) -> str:
    if r["role"] == "sender":
        return f"teleport sender: {r['rounds']} states sent in {r['seconds']:.2f} s"
    return (
        f"teleport receiver: fidelity {r['fidelity']:.3f} ± {r['stderr']:.3f} "
        f"over {r['rounds']} teleported states"
    )
