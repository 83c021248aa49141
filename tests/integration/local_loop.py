"""An app that runs small local blocks (prepare, rotate, measure) for ``seconds`` and
returns when each finished (wall time)."""

from __future__ import annotations

import time
from typing import Any

from qnodeos import sdk


async def main(node: str, *, me: str, seconds: float = 1.5) -> dict[str, Any]:
    done: list[float] = []
    async with sdk.connect(node, app=me, qubits=1) as conn:
        end = time.time() + seconds
        while time.time() < end:
            async with conn.block() as b:
                q = b.qubit()
                q.rx(0.3)
                q.measure()
            done.append(time.time())
    return {"done": done}
