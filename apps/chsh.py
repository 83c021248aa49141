"""The CHSH game between two nodes on kept pairs.

Each round Alice measures her half along angle 0 or pi/2 (in the X-Z plane), Bob along
pi/4 or -pi/4, each choice at random; from the outcomes Alice estimates the four
correlators E(x, y) and S = E00 + E01 + E10 - E11. A Werner pair of fidelity F gives
S = 2*sqrt(2)*(4F - 1)/3 (2.83 for F = 1; above 2 means no local hidden-variable
model explains it).

    [[apps]]
    node = "alice"
    name = "chsh-a"
    module = "qnodeos.apps.chsh"
    args = { role = "alice", peer = "chsh-b", rounds = 400 }
    [[apps]]
    node = "bob"
    name = "chsh-b"
    module = "qnodeos.apps.chsh"
    args = { role = "bob", peer = "chsh-a" }

Each app is named once, by its ``name`` (its name on its node); ``peer`` is the other
app's name, and its node is found in the network file (``sdk.peer_node``).

``batch`` pairs are kept at once (needs that many qubits; 1 on NV); give both ends the
same ``batch``.
"""

from __future__ import annotations

import math
import random
from typing import Any

import numpy as np

from qnodeos import sdk

ANGLES = {"alice": (0.0, math.pi / 2), "bob": (math.pi / 4, -math.pi / 4)}


async def main(
    node: str,
    *,
    role: str,
    me: str | None = None,
    peer_node: str | None = None,
    peer: str,
    rounds: int = 400,
    batch: int = 1,
    seed: int | None = None,
    timeout: float = 30.0,
) -> dict[str, Any]:
    peer_node = peer_node or sdk.peer_node(peer)  # the peer, named once
    rng = random.Random(seed)
    async with sdk.connect(node, app=me, qubits=batch) as conn:
        epr = conn.epr_socket(peer_node, peer)
        sock = conn.socket(peer_node, peer)
        if role == "alice":
            await sock.send(rounds)
        else:
            rounds = await sock.recv()
        results: list[tuple[int, int]] = []  # (choice, outcome)
        while len(results) < rounds:
            conn.progress(len(results), rounds, "rounds")
            n = min(batch, rounds - len(results))
            if role == "alice":
                pairs = await epr.create_keep(n, timeout=timeout)
            else:
                pairs = await epr.recv_keep(n, timeout=timeout)
            choices = [rng.randrange(2) for _ in pairs]
            async with conn.block():
                futures = []
                for p, c in zip(pairs, choices, strict=True):
                    assert p.qubit is not None
                    p.qubit.ry(-ANGLES[role][c])
                    futures.append(p.qubit.measure())
            results += [(c, f.value) for c, f in zip(choices, futures, strict=True)]
        conn.progress(rounds, rounds, "rounds")
        if role == "bob":
            await sock.send(results)
            return {"role": "bob", "rounds": rounds}
        theirs = await sock.recv()
        sums = [[0, 0], [0, 0]]
        counts = [[0, 0], [0, 0]]
        for (x, a), (y, b) in zip(results, theirs, strict=True):
            sums[x][y] += 1 if a == b else -1
            counts[x][y] += 1
        e = [[sums[x][y] / max(counts[x][y], 1) for y in (0, 1)] for x in (0, 1)]
        s = e[0][0] + e[0][1] + e[1][0] - e[1][1]
        var = sum((1 - e[x][y] ** 2) / max(counts[x][y], 1) for x in (0, 1) for y in (0, 1))
        out = {"role": "alice", "rounds": rounds, "S": s, "stderr": math.sqrt(var), "E": e}
        theory = link_prediction(node, peer_node)
        if theory is not None:
            out["S_theory"] = theory  # qnodeos plot draws FIELD_theory as a line
        return out


def link_prediction(node: str, peer_node: str) -> float | None:
    """S that the link's delivered state alone gives (no device noise): sum of the four
    correlators Tr(rho A(a) (x) B(b)), A(t) = cos t Z + sin t X (a measurement in Z
    after Ry(-t)). 2*sqrt(2)*(4F - 1)/3 for a Werner link of fidelity F. None without
    a network file or a link between the two nodes."""
    cfg = sdk.network_config()
    link = (
        None
        if cfg is None
        else next((lk for lk in cfg.links if set(lk.nodes) == {node, peer_node}), None)
    )
    if link is None:
        return None
    rho = link.model.delivered()
    z, x = np.diag([1.0, -1.0]), np.array([[0.0, 1.0], [1.0, 0.0]])

    def corr(a: float, b: float) -> float:
        op = np.kron(math.cos(a) * z + math.sin(a) * x, math.cos(b) * z + math.sin(b) * x)
        return float(np.real(np.trace(rho @ op)))

    (a0, a1), (b0, b1) = ANGLES["alice"], ANGLES["bob"]
    return corr(a0, b0) + corr(a0, b1) + corr(a1, b0) - corr(a1, b1)


def format_result(r: dict[str, Any]) -> str:
    if r["role"] == "bob":
        return f"CHSH bob: {r['rounds']} rounds"
    return f"CHSH alice: S = {r['S']:.3f} ± {r['stderr']:.3f} over {r['rounds']} rounds"
