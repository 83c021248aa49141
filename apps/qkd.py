"""Entanglement-based QKD (BBM92) between two nodes.

Both ends measure each pair at once, each in X or Z at random (measure-directly pairs
with random bases). They publish their bases over the classical socket and keep the
positions where the bases agree (the sifted key); Bob then reveals a random half of his
sifted bits to estimate the QBER, and the other half is the key. With a Werner pair of
fidelity F and ideal readout the QBER is 2(1 - F)/3. The asymptotic secret fraction is
1 - 2 h(QBER) (h: binary entropy); the key rate counts secret bits per second of the run.

    [[apps]]
    node = "alice"
    module = "qnodeos.apps.qkd"
    args = { role = "alice", me = "qkd-a", peer_node = "bob", peer = "qkd-b", pairs = 400 }
    [[apps]]
    node = "bob"
    module = "qnodeos.apps.qkd"
    args = { role = "bob", me = "qkd-b", peer_node = "alice", peer = "qkd-a" }
"""

from __future__ import annotations

import math
import random
from contextlib import aclosing
from typing import Any

import trio

from qnodeos import sdk

from .common import rate


def binary_entropy(p: float) -> float:
    if p <= 0.0 or p >= 1.0:
        return 0.0
    return -p * math.log2(p) - (1 - p) * math.log2(1 - p)


async def main(
    node: str,
    *,
    role: str,
    me: str | None = None,
    peer_node: str | None = None,
    peer: str,
    pairs: int = 400,
    timeout: float = 60.0,
    seed: int | None = None,
) -> dict[str, Any]:
    peer_node = peer_node or sdk.peer_node(peer)  # the peer, named once
    async with sdk.connect(node, app=me, qubits=1) as conn:
        epr = conn.epr_socket(peer_node, peer)
        sock = conn.socket(peer_node, peer)
        start = trio.current_time()
        if role == "alice":
            await sock.send(pairs)
        else:
            pairs = await sock.recv()
        got: list[sdk.Pair] = []
        # one request for every pair; they stream in as the link makes them
        role_ = "create" if role == "alice" else "recv"
        ask = epr.stream_measure(role_, pairs, bases="XZ", timeout=timeout)
        async with aclosing(ask) as chunks:
            async for chunk in chunks:
                got += chunk
                conn.progress(len(got), pairs, "pairs")
        mine = [(p.basis, p.outcome) for p in got]
        await sock.send([b for b, _ in mine])
        theirs = await sock.recv()
        sifted = [i for i, (b, _) in enumerate(mine) if b == theirs[i]]
        # Bob reveals a random half of the sifted bits; Alice compares.
        if role == "bob":
            rng = random.Random(seed)
            sample = sorted(rng.sample(sifted, len(sifted) // 2))
            await sock.send([[i, mine[i][1]] for i in sample])
            errors_and_n = await sock.recv()
        else:
            revealed = await sock.recv()
            errors = sum(mine[i][1] != bit for i, bit in revealed)
            errors_and_n = [errors, len(revealed)]
            await sock.send(errors_and_n)
        seconds = trio.current_time() - start
        errors, n_est = errors_and_n
        qber, qber_err = rate(errors, n_est)
        key_bits = len(sifted) - n_est
        secret = max(0.0, 1 - 2 * binary_entropy(qber)) if n_est else 0.0
        return {
            "role": role,
            "pairs": pairs,
            "sifted": len(sifted),
            "qber": qber,
            "qber_stderr": qber_err,
            "key_bits": key_bits,
            "secret_fraction": secret,
            "seconds": seconds,
            "key_rate_bps": key_bits * secret / seconds,
            "pair_rate_hz": pairs / seconds,
        }


def format_result(r: dict[str, Any]) -> str:
    return (
        f"QKD {r['role']}: {r['pairs']} pairs, {r['sifted']} sifted, "
        f"QBER {r['qber']:.3f} ± {r['qber_stderr']:.3f}, secret fraction "
        f"{r['secret_fraction']:.2f}, key rate {r['key_rate_bps']:.1f} bit/s "
        f"({r['pair_rate_hz']:.0f} pairs/s over {r['seconds']:.1f} s)"
    )
