"""Apps the integration tests start as separate OS processes.

    python -m tests.integration.proc_apps ROLE ENDPOINT

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


async def holder(ep: str) -> None:
    """Allocates two qubits in |1> and holds them; checks them now and then."""
    async with sdk.connect("n", app="holder", qubits=2, endpoint=ep) as node:
        async with node.block() as b:
            qs = [b.qubit(), b.qubit()]
            for q in qs:
                q.x()
        say(event="holding", ids=[q.id for q in qs])
        for i in range(40):
            async with node.block() as b:
                ms = [q.measure(inplace=True) for q in qs]
            say(event="check", i=i, values=[m.value for m in ms])
            await trio.sleep(0.02)
        say(event="done")
        await trio.sleep_forever()


async def prober(ep: str) -> None:
    """Tries to read and act on qubits it never allocated, then works on its own."""
    async with sdk.connect("n", app="prober", qubits=2, endpoint=ep) as node:
        errors = []
        for text in ["meas Q0 R0\nret R0", "x Q1", "qfree Q0", "init Q0"]:
            try:
                await node.run(text)
                errors.append("accepted")
            except sdk.BlockError as exc:
                errors.append(str(exc))
        say(event="probed", errors=errors)
        for i in range(40):
            async with node.block() as b:
                q = b.qubit()
                m = q.measure()
            say(event="work", i=i, value=m.value)
            await trio.sleep(0.02)
        say(event="done")


async def worker(ep: str) -> None:
    """Runs blocks forever, reporting each."""
    async with sdk.connect("n", app="worker", qubits=1, endpoint=ep) as node:
        i = 0
        while True:
            async with node.block() as b:
                q = b.qubit()
                q.x()
                m = q.measure()
            say(event="work", i=i, value=m.value)
            i += 1
            await trio.sleep(0.01)


ROLES = {"holder": holder, "prober": prober, "worker": worker}

if __name__ == "__main__":
    trio.run(ROLES[sys.argv[1]], sys.argv[2])
