"""Test app: ask for one kept pair and report what happened (used to check errors)."""

from __future__ import annotations

from typing import Any

import trio

from qnodeos import sdk


async def main(
    node: str,
    *,
    me: str,
    remote_node: str,
    remote_app: str,
    min_fidelity: float = 0.0,
    timeout: float = 5.0,
    delay: float = 0.0,
) -> dict[str, Any]:
    await trio.sleep(delay)
    async with sdk.connect(node, app=me, qubits=1) as conn:
        (pair,) = await conn.epr_socket(remote_node, remote_app).create_keep(
            min_fidelity=min_fidelity, timeout=timeout
        )
        return {"ent_id": list(pair.ent_id)}
