"""Classical ping-pong between apps on two nodes: the round trip of a classical message
app -> node -> node -> app and back, as apps see it.

Run by ``qnodeos run`` with two entries, e.g.::

    [[apps]]
    node = "alice"
    module = "qnodeos.apps.pingpong"
    args = { role = "ping", me = "ping", peer_node = "bob", peer = "pong", rounds = 200 }
    [[apps]]
    node = "bob"
    module = "qnodeos.apps.pingpong"
    args = { role = "pong", me = "pong", peer_node = "alice", peer = "ping" }
"""

from __future__ import annotations

import statistics
from typing import Any

import trio

from qnodeos import sdk


async def main(
    node: str,
    *,
    role: str,
    me: str | None = None,
    peer_node: str | None = None,
    peer: str,
    rounds: int = 200,
) -> dict[str, Any]:
    peer_node = peer_node or sdk.peer_node(peer)  # the peer, named once
    async with sdk.connect(node, app=me, qubits=0) as conn:
        sock = conn.socket(peer_node, peer)
        if role == "pong":
            served = 0
            while (msg := await sock.recv()) != "stop":
                await sock.send(msg)
                served += 1
            return {"role": "pong", "served": served}
        times = []
        for i in range(rounds):
            conn.progress(i, rounds, "round trips")
            start = trio.current_time()
            await sock.send(i)
            if await sock.recv() != i:
                raise RuntimeError(f"round {i}: reply out of order")
            times.append(trio.current_time() - start)
        conn.progress(rounds, rounds, "round trips")
        await sock.send("stop")
        times.sort()
        return {
            "role": "ping",
            "rounds": rounds,
            "median_us": statistics.median(times) * 1e6,
            "p99_us": times[int(0.99 * len(times))] * 1e6,
        }


def format_result(r: dict[str, Any]) -> str:
    if r["role"] == "pong":
        return f"pong: echoed {r['served']} messages"
    return (
        f"ping: {r['rounds']} classical round trips app->node->node->app and back: "
        f"median {r['median_us']:.0f} us, p99 {r['p99_us']:.0f} us"
    )
