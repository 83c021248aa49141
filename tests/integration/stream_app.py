"""An app for the streaming test: one request for ``pairs`` measured pairs, read in
chunks as they come; returns what both ends must agree on.

    args = { role = "create", me = "s-a", peer_node = "bob", peer = "s-b", pairs = 10000 }
"""

from __future__ import annotations

import hashlib
import time
from contextlib import aclosing
from typing import Any

from qnodeos import sdk


async def main(
    node: str, *, role: str, me: str, peer_node: str, peer: str, pairs: int, bases: str = "XYZ"
) -> dict[str, Any]:
    async with sdk.connect(node, app=me, qubits=1) as conn:
        epr = conn.epr_socket(peer_node, peer)
        got: list[sdk.Pair] = []
        chunks = 0
        start = time.perf_counter()
        async with aclosing(epr.stream_measure(role, pairs, bases=bases, timeout=120)) as s:
            async for chunk in s:
                got += chunk
                chunks += 1
        seconds = time.perf_counter() - start
    ids = ",".join(f"{a}:{b}:{n}" for a, b, n in (p.ent_id for p in got))
    return {
        "pairs": len(got),
        "chunks": chunks,
        "ids_sha256": hashlib.sha256(ids.encode()).hexdigest(),
        "unique": len({p.ent_id for p in got}),
        "bases": "".join(p.basis for p in got),
        "outcomes": "".join(str(p.outcome) for p in got),
        "pairs_per_s": len(got) / seconds,
    }
