"""Test app: keep pairs, hold each for a given time, measure in X or Z (both ends agree
on the basis from the round number) and report outcomes with the time actually held
(wall clock from receiving the pair to the end of the measuring block)."""

from __future__ import annotations

import time
from typing import Any

import trio

from qnodeos import sdk


async def main(
    node: str, *, role: str, me: str, peer_node: str, peer: str, waits: list[float], shots: int
) -> dict[str, Any]:
    rows = []
    async with sdk.connect(node, app=me, qubits=1) as conn:
        epr = conn.epr_socket(peer_node, peer)
        for i in range(shots * len(waits) * 2):
            wait = waits[i % len(waits)]
            basis = "X" if (i // len(waits)) % 2 == 0 else "Z"
            (pair,) = await (epr.create_keep() if role == "create" else epr.recv_keep())
            start = time.time()
            q = pair.qubit
            assert q is not None
            await trio.sleep(wait)
            async with conn.block():
                if basis == "X":
                    q.h()
                m = q.measure()
            rows.append([wait, basis, m.value, time.time() - start])
    return {"rows": rows}
