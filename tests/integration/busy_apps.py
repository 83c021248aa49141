"""Apps that keep a node busy, for ``test_busy.py``, each an OS process of its own.

    python -m tests.integration.busy_apps ROLE ENDPOINT [SECONDS]

Each prints one JSON line per event on stdout, flushed, so the test can follow it.
"""

from __future__ import annotations

import json
import sys
import time

import trio

from qnodeos import sdk


def say(**kw: object) -> None:
    print(json.dumps({"t": time.time(), **kw}), flush=True)


async def spinner(ep: str, seconds: float) -> None:
    """Back-to-back blocks that loop forever, each stopped by the node's instruction
    budget (about 0.5-2 s of the classical process's CPU each)."""
    async with sdk.connect("n", app="spinner", qubits=0, endpoint=ep) as node:
        end = time.time() + seconds
        n = 0
        while time.time() < end:
            try:
                await node.run("l:\njmp @l")
            except sdk.BlockError as exc:
                n += 1
                say(event="stopped", n=n, message=str(exc))
        say(event="done", blocks=n)


async def idle(ep: str, seconds: float) -> None:
    """Connects and does nothing for ``seconds`` (its SDK keeps the lease)."""
    async with sdk.connect("n", app="idle", qubits=1, endpoint=ep) as node:
        say(event="connected")
        await trio.sleep(seconds)
        async with node.block() as b:
            m = b.qubit().measure()
        say(event="done", value=m.value)


async def worker(ep: str, seconds: float) -> None:
    """One-gate blocks for ``seconds``; reports each block's latency."""
    async with sdk.connect("n", app="worker", qubits=1, endpoint=ep) as node:
        end = time.time() + seconds
        took = []
        while time.time() < end:
            t0 = time.perf_counter()
            async with node.block() as b:
                q = b.qubit()
                q.x()
                m = q.measure()
            took.append(time.perf_counter() - t0)
            assert m.value == 1
            await trio.sleep(0.01)
        say(event="done", blocks=len(took), max_s=max(took))


async def bigloop(ep: str, seconds: float) -> None:
    """Loops far bigger than one device request: 100,000 gates run; 400,000 iterations
    end with the instruction budget's error, not a lease's."""
    del seconds
    async with sdk.connect("n", app="bigloop", qubits=1, endpoint=ep) as node:
        async with node.block() as b:
            q = b.qubit()
            with b.loop(100_000):
                q.x()
            m = q.measure()
        assert node.last_block is not None
        say(event="ran", value=m.value, instructions=node.last_block.instructions)
        try:
            async with node.block() as b:
                q = b.qubit()
                with b.loop(400_000):
                    q.x()
                q.measure()
        except sdk.BlockError as exc:
            say(event="refused", code=exc.code, message=str(exc))
        say(event="done")


ROLES = {"spinner": spinner, "idle": idle, "worker": worker, "bigloop": bigloop}

if __name__ == "__main__":
    trio.run(ROLES[sys.argv[1]], sys.argv[2], float(sys.argv[3]) if len(sys.argv) > 3 else 0.0)
