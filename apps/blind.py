"""Delegated (blind) single-qubit computation, as demonstrated with QNodeOS: a client
has a server measure the state rz(phi)|+> in the X basis without the server learning
phi.

Each round the two share a kept pair. The client measures its half in the basis
|+_theta>, |-_theta> (theta a random multiple of pi/4), which leaves the server's half
in |+_theta'> with theta' = -theta + c*pi (c: the client's outcome). The client sends
delta = phi + theta' + r*pi (r a random bit); the server applies rz(-delta), then H,
measures and returns s; the client's result is s XOR r. Delta is uniformly random
whatever phi is, so the server learns nothing. Ideally the result is 0 with probability
cos^2(phi/2); with a Werner pair of fidelity F the success rate at phi = 0 is
(2F + 1)/3.

    [[apps]]
    node = "alice"
    module = "qnodeos.apps.blind"
    args = { role = "client", me = "client", peer_node = "bob", peer = "server", rounds = 60 }
    [[apps]]
    node = "bob"
    module = "qnodeos.apps.blind"
    args = { role = "server", me = "server", peer_node = "alice", peer = "client" }
"""

from __future__ import annotations

import math
import random
from typing import Any

from qnodeos import sdk

from .common import rate


async def main(
    node: str,
    *,
    role: str,
    me: str | None = None,
    peer_node: str | None = None,
    peer: str,
    rounds: int = 60,
    phi: float = 0.0,
    seed: int | None = None,
    timeout: float = 30.0,
) -> dict[str, Any]:
    peer_node = peer_node or sdk.peer_node(peer)  # the peer, named once
    rng = random.Random(seed)
    async with sdk.connect(node, app=me, qubits=1) as conn:
        epr = conn.epr_socket(peer_node, peer)
        sock = conn.socket(peer_node, peer)
        if role == "server":
            rounds = await sock.recv()
            for r in range(rounds):
                conn.progress(r, rounds, "rounds")
                (pair,) = await epr.recv_keep(timeout=timeout)
                q = pair.qubit
                assert q is not None
                delta = await sock.recv()
                async with conn.block():
                    q.rz(-delta)
                    q.h()
                    s = q.measure()
                await sock.send(s.value)
            conn.progress(rounds, rounds, "rounds")
            return {"role": "server", "rounds": rounds}
        await sock.send(rounds)
        zeros = 0
        for r in range(rounds):
            conn.progress(r, rounds, "rounds")
            (pair,) = await epr.create_keep(timeout=timeout)
            q = pair.qubit
            assert q is not None
            theta = rng.randrange(8) * math.pi / 4
            r = rng.randrange(2)
            async with conn.block():
                q.rz(-theta)
                q.h()
                c = q.measure()
            theta_server = -theta + c.value * math.pi
            await sock.send(phi + theta_server + r * math.pi)
            s = await sock.recv()
            zeros += (s ^ r) == 0
        conn.progress(rounds, rounds, "rounds")
        p0, err = rate(zeros, rounds)
        return {
            "role": "client",
            "rounds": rounds,
            "phi": phi,
            "p0": p0,
            "stderr": err,
            "expected_ideal": math.cos(phi / 2) ** 2,
        }


def format_result(r: dict[str, Any]) -> str:
    if r["role"] == "server":
        return f"blind server: computed {r['rounds']} rounds without seeing phi"
    return (
        f"blind client: P(0) = {r['p0']:.3f} ± {r['stderr']:.3f} for phi = {r['phi']:.3f} "
        f"(ideal {r['expected_ideal']:.3f}) over {r['rounds']} rounds"
    )
