"""Link characterisation: fidelity, success probability and pair rate of a link, from
measure-directly pairs in random X, Y, Z bases at both ends.

For pairs delivered as Phi+ the fidelity is F = (1 + <XX> - <YY> + <ZZ>)/4, each
correlator estimated from the pairs both ends happened to measure in that basis. The
success probability per attempt is estimated as pairs / attempts (attempts until a
herald are geometric), the pair rate from the herald times (device time, so at
speed 1 it is the rate a user sees, OS overheads included), and the wall-clock rate
over the whole run (device rate times the node's ``speed``).

    [[apps]]
    node = "alice"
    module = "qnodeos.apps.linkstats"
    args = { role = "create", me = "ls-a", peer_node = "bob", peer = "ls-b", pairs = 600 }
    [[apps]]
    node = "bob"
    module = "qnodeos.apps.linkstats"
    args = { role = "recv", me = "ls-b", peer_node = "alice", peer = "ls-a", pairs = 600 }
"""

from __future__ import annotations

import math
import statistics
from typing import Any

import trio

from qnodeos import sdk
from qnodeos.apps.common import phi_plus_fidelity


async def main(
    node: str,
    *,
    role: str,
    me: str | None = None,
    peer_node: str | None = None,
    peer: str,
    pairs: int = 600,
    batch: int = 200,
    timeout: float = 60.0,
) -> dict[str, Any]:
    peer_node = peer_node or sdk.peer_node(peer)  # the peer, named once
    async with sdk.connect(node, app=me, qubits=1) as conn:
        epr = conn.epr_socket(peer_node, peer)
        sock = conn.socket(peer_node, peer)
        got: list[sdk.Pair] = []
        start = trio.current_time()
        while len(got) < pairs:
            conn.progress(len(got), pairs, "pairs")
            n = min(batch, pairs - len(got))
            if role == "create":
                got += await epr.create_measure(n, bases="XYZ", timeout=timeout)
            else:
                got += await epr.recv_measure(n, bases="XYZ", timeout=timeout)
        conn.progress(pairs, pairs, "pairs")
        wall = trio.current_time() - start
        if role == "recv":
            await sock.send([[p.basis, p.outcome] for p in got])
            return {"role": role, "pairs": pairs}
        theirs = await sock.recv()
        terms: dict[str, list[int]] = {b: [] for b in "XYZ"}
        for p, (basis, outcome) in zip(got, theirs, strict=True):
            if p.basis == basis:
                terms[basis].append(1 if p.outcome == outcome else -1)
        attempts = sum(p.attempts for p in got)
        p_hat = pairs / attempts
        span_ns = got[-1].at_ns - got[0].at_ns
        rate = (pairs - 1) / (span_ns * 1e-9) if span_ns > 0 else math.inf
        gaps = [b.at_ns - a.at_ns for a, b in zip(got, got[1:], strict=False)]
        # the rate's standard error, from the spread of the times between pairs
        rate_err = 0.0
        if len(gaps) > 1 and span_ns > 0:
            rate_err = rate * statistics.stdev(gaps) / statistics.fmean(gaps) / len(gaps) ** 0.5
        return {
            "role": role,
            "pairs": pairs,
            **phi_plus_fidelity(terms),
            "attempts": attempts,
            "p_success": p_hat,
            "p_stderr": p_hat * math.sqrt((1 - p_hat) / pairs),
            "rate_hz": rate,
            "rate_hz_stderr": rate_err,
            "wall_rate_hz": pairs / wall if wall > 0 else math.inf,
            "goodness": got[0].goodness,
        }


def format_result(r: dict[str, Any]) -> str:
    if r["role"] == "recv":
        return f"linkstats: received {r['pairs']} pairs"
    return (
        f"linkstats: F = {r['fidelity']:.3f} ± {r['fidelity_stderr']:.3f} "
        f"(link estimate {r['goodness']:.3f}), p = {r['p_success']:.2e} ± "
        f"{r['p_stderr']:.1e} per attempt, {r['rate_hz']:.1f} pairs/s (device time)"
    )
