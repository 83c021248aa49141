"""A test app: end-to-end pairs *kept* by the app, then measured by it in X, Y or Z,
``batch`` pairs at a time. Both ends take a pair's basis from its entanglement id
("XYZ"[n % 3]) and match outcomes by that id, not by position (the two ends of a batch
may list its pairs in different orders: ``reordered`` counts the positions that
differ). The creating end returns the fidelity to Phi+, F = (1 + <XX> - <YY> + <ZZ>)/4,
and its standard error from the three correlators."""

from __future__ import annotations

from typing import Any

from qnodeos import sdk
from qnodeos.apps.common import phi_plus_fidelity, to_z


async def main(
    node: str, *, role: str, me: str, peer_node: str, peer: str, pairs: int, batch: int = 8
) -> dict[str, Any]:
    outcomes: dict[int, int] = {}  # entanglement id's number -> outcome
    async with sdk.connect(node, app=me, qubits=batch) as conn:
        epr = conn.epr_socket(peer_node, peer)
        sock = conn.socket(peer_node, peer)
        while len(outcomes) < pairs:
            n = min(batch, pairs - len(outcomes))
            if role == "create":
                got = await epr.create_keep(n, timeout=120)
            else:
                got = await epr.recv_keep(n, timeout=120)
            async with conn.block():
                futures = {}
                for pair in got:
                    q = pair.qubit
                    assert q is not None
                    to_z(q, "XYZ"[pair.ent_id[2] % 3])
                    futures[pair.ent_id[2]] = q.measure()
            outcomes.update({k: f.value for k, f in futures.items()})
        if role == "recv":
            await sock.send(list(outcomes.items()))
            return {"role": role, "pairs": pairs}
        theirs = dict(await sock.recv())
    order = list(outcomes)
    assert set(theirs) == set(order), "the two ends hold different pairs"
    terms = {b: [1 - 2 * (outcomes[i] ^ theirs[i]) for i in order if i % 3 == k]
             for k, b in enumerate("XYZ")}  # fmt: skip
    return {
        "role": role,
        "pairs": pairs,
        **phi_plus_fidelity(terms),
        "reordered": sum(a != b for a, b in zip(order, theirs, strict=True)),
    }
