"""The app `bench/scale.py` runs: with ``role`` "create" or "recv", ``pairs``
measure-directly pairs with the app ``peer`` on ``peer_node``; with ``role`` "blocks",
``blocks`` one-gate blocks (allocate, X, measure). It returns the wall-clock times
(``time.time``) it connected, got its first result and its last. Network-file entries
(``bench/`` on ``PYTHONPATH``):

    [[apps]]
    node = "n0"
    module = "scale_app"
    args = { role = "create", me = "n0-n1", peer_node = "n1", peer = "n1-n0", pairs = 1 }
"""

from __future__ import annotations

import time
from typing import Any

from qnodeos import sdk


async def main(
    node: str,
    *,
    role: str,
    me: str,
    peer_node: str = "",
    peer: str = "",
    pairs: int = 1,
    blocks: int = 0,
    batch: int = 10,
) -> dict[str, Any]:
    async with sdk.connect(node, app=me, qubits=1) as conn:
        connected = time.time()
        first = 0.0
        done = 0
        if role == "blocks":
            while done < blocks:
                async with conn.block() as b:
                    q = b.qubit()
                    q.x()
                    q.measure()
                done += 1
                first = first or time.time()
        else:
            epr = conn.epr_socket(peer_node, peer)
            ask = epr.create_measure if role == "create" else epr.recv_measure
            while done < pairs:
                done += len(await ask(min(batch, pairs - done), bases="XZ", timeout=120))
                first = first or time.time()
        return {"connected": connected, "first": first, "last": time.time(), "done": done}
