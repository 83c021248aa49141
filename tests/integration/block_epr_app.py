"""An app for the in-block entanglement tests: one block per test that asks for pairs
inside it, and returns what both ends must agree on.

    args = { mode = "keep", role = "create", me = "a", peer_node = "bob", peer = "b" }
"""

from __future__ import annotations

import random
import time
from typing import Any

import trio

from qnodeos import sdk
from qnodeos.sdk.builder import Block, LoopVar, Qubit


def measure_x(b: Block, q: Qubit, i: int | LoopVar) -> None:
    q.h()
    q.measure()


def measure_z(b: Block, q: Qubit, i: int | LoopVar) -> None:
    q.measure()


async def main(
    node: str,
    *,
    mode: str,
    role: str,
    me: str,
    peer_node: str,
    peer: str,
    pairs: int = 4,
    seed: int = 1,
    delay: float = 0.0,
) -> dict[str, Any]:
    rng = random.Random(seed)
    create = role == "create"
    qubits = pairs if mode == "keep" else 2
    async with sdk.connect(node, app=me, qubits=qubits) as conn:
        epr = conn.epr_socket(peer_node, peer)
        await trio.sleep(delay)  # the other end's block waits for us meanwhile
        start = time.time()
        async with conn.block() as b:
            if mode == "keep":  # all pairs kept at once, then measured in Z
                ask = b.create_keep if create else b.recv_keep
                got = ask(epr, pairs)
                futs = [q.measure() for q in got.qubits]
            elif mode == "sequential":  # one qubit, a post routine measures each pair
                ask = b.create_keep if create else b.recv_keep
                got = ask(epr, pairs, sequential=True, post=measure_z)
                futs = []
            elif mode == "chosen":
                bases = "".join(rng.choice("XYZ") for _ in range(pairs))
                ask_m = b.create_measure if create else b.recv_measure
                got = ask_m(epr, pairs, chosen=bases)
                futs = []
            elif mode == "rsp":  # the creator measures in X; the receiver keeps, then X
                if create:
                    got = b.create_rsp(epr, pairs, chosen="X" * pairs)
                else:
                    got = b.recv_rsp(epr, pairs, sequential=True, post=measure_x)
                futs = []
            else:
                raise ValueError(f"mode {mode!r}")
    outcomes: list[int]
    if futs:
        outcomes = [f.value for f in futs]
    elif got.outcomes is not None:
        outcomes = list(got.outcomes.value)
    else:
        outcomes = list(b.futures[-1].value)  # the post routine's measurements
    return {
        "start": start,
        "end": time.time(),
        "ids": list(got.ids.value),
        "outcomes": outcomes,
        "bases": bases if mode == "chosen" else "",
    }
