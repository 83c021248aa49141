"""An app whose main gets its session opened for it (``main(node: sdk.Node, ...)``):
flips a qubit ``shots`` times and reports what it measured and how it was connected."""

from __future__ import annotations

from typing import Any

from qnodeos import sdk


async def main(node: sdk.Node, *, shots: int = 3) -> dict[str, Any]:
    ones = 0
    for _ in range(shots):
        async with node.block() as b:
            q = b.qubit()
            q.x()
            m = q.measure()
        ones += m.value
    return {"ones": ones, "node": node.name, "app_id": node.app_id}
