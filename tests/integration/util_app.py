"""An app for the utilization tests: kept pairs measured in blocks at both ends (the
receiver first, while the pair's state is still in the creator's quantum process, so
its block waits for the state to come), then measured pairs in X and Z.

    args = { role = "create", me = "a", peer_node = "bob", peer = "b", kept = 10 }
"""

from __future__ import annotations

from typing import Any

from qnodeos import sdk


async def main(
    node: str,
    *,
    role: str,
    me: str,
    peer_node: str,
    peer: str,
    kept: int = 10,
    measured: int = 200,
) -> dict[str, Any]:
    create = role == "create"
    async with sdk.connect(node, app=me, qubits=2) as conn:
        epr = conn.epr_socket(peer_node, peer)
        sock = conn.socket(peer_node, peer)
        outcomes = []
        for _ in range(kept):
            (pair,) = await (epr.create_keep() if create else epr.recv_keep())
            q = pair.qubit
            assert q is not None
            if create:
                await sock.recv()  # the receiver has measured its half
            async with conn.block() as b:
                extra = b.qubit()  # some local work in the same block
                extra.h()
                q.h()
                m = q.measure()
                extra.measure()
            if not create:
                await sock.send(1)
            outcomes.append(m.value)
        if create:
            got = await epr.create_measure(measured, bases="XZ")
        else:
            got = await epr.recv_measure(measured, bases="XZ")
        return {"role": role, "kept": outcomes, "measured": len(got)}
