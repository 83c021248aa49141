"""End-to-end pairs between two nodes, linked or not: fidelity and rate, next to the
prediction for the path the network layer takes (Werner links, perfect swaps).

It runs qnodeos.apps.linkstats (measure-directly pairs in random X, Y, Z bases at both
ends) and, at the creating end, adds what the network file predicts: the path between
the two nodes (the fewest hops, or the cheapest by ``[network] route_cost``), each
link's Werner parameter w_i = (4 F_i - 1)/3 from its model's fidelity, and
F = (3 w + 1)/4 with w = prod w_i (exact for "depolarise" and "perfect" links and
noiseless devices; gate and readout noise at the repeaters lower it).

    [[apps]]
    node = "n0"
    module = "qnodeos.apps.e2estats"
    args = { role = "create", me = "a", peer_node = "n4", peer = "b", pairs = 600 }
"""

from __future__ import annotations

import math
from typing import Any

from qnodeos import sdk
from qnodeos.apps import linkstats


def prediction(node: str, peer_node: str) -> dict[str, Any] | None:
    """The path and the predicted fidelity, from the network this app runs in."""
    net = sdk.network_config()
    if net is None:
        return None
    path = net.route(node, peer_node)
    if path is None:
        return None
    fid = {frozenset(lk.nodes): lk.model.expected_fidelity() for lk in net.links}
    w = math.prod((4 * fid[frozenset(h)] - 1) / 3 for h in zip(path, path[1:], strict=False))
    return {"path": path, "predicted_fidelity": (3 * w + 1) / 4}


async def main(node: str, *, role: str, peer_node: str, **args: Any) -> dict[str, Any]:
    r = await linkstats.main(node, role=role, peer_node=peer_node, **args)
    if role == "create":
        r.update(prediction(node, peer_node) or {})
    return r


def format_result(r: dict[str, Any]) -> str:
    if r["role"] == "recv":
        return f"e2estats: received {r['pairs']} pairs"
    out = (
        f"e2estats: F = {r['fidelity']:.3f} ± {r['fidelity_stderr']:.3f} over "
        f"{r['pairs']} end-to-end pairs, {r['wall_rate_hz']:.1f} pairs/s (wall clock)"
    )
    if "predicted_fidelity" in r:
        hops = len(r["path"]) - 1
        out += (
            f"\n  path {'-'.join(r['path'])} ({hops} hop{'s' if hops > 1 else ''}): "
            f"predicted F = {r['predicted_fidelity']:.3f} (Werner links, perfect swaps)"
        )
    return out
