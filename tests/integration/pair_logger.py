"""An app for fault-injection tests: asks for measured pairs again and again and logs
every pair's entanglement id the moment it has them (JSON lines on stdout), then, after
the others have had time to tell it, which of its pairs turned out void.

    [[apps]]
    module = "tests.integration.pair_logger"
    args = { role = "create", me = "a", peer_node = "bob", peer = "b", duration = 6.0 }

It keeps going after an error (a peer that comes back is used again; it waits 0.2 s
before asking again) until ``duration`` has passed or its requests kept failing for 5 s.

Each app counts ``duration`` from its own connect, so the two ends stop at slightly
different times: the end that asks once more, within ``LAST_S`` of its own end, may find
the other app gone and its request timing out. That is the apps' race, not a fault: it is
logged as ``unanswered`` (with any pairs it had), not as an error.
"""

from __future__ import annotations

import json
import time
from typing import Any

import trio

from qnodeos import sdk

LAST_S = 1.0  # a request asked this close to the app's end may outlive the other app


def say(**kw: Any) -> None:
    print(json.dumps({"t": time.time(), **kw}), flush=True)


async def main(
    node: str,
    *,
    role: str,
    me: str,
    peer_node: str,
    peer: str,
    duration: float = 6.0,
    per_request: int = 5,
    settle: float = 2.5,
    timeout: float = 3.0,
) -> dict[str, Any]:
    got: list[list[Any]] = []
    async with sdk.connect(node, app=me, qubits=1) as conn:
        epr = conn.epr_socket(peer_node, peer)
        ask = epr.create_measure if role == "create" else epr.recv_measure
        end = time.time() + duration
        failing_since: float | None = None
        while time.time() < end and (failing_since is None or time.time() - failing_since < 5):
            asked = time.time()
            try:
                pairs = await ask(per_request, bases="Z", timeout=timeout)
            except sdk.EprError as exc:
                ids = [list(p.ent_id) for p in exc.pairs]
                got += ids
                if exc.code == "TIMEOUT" and asked > end - LAST_S:
                    say(event="unanswered", code=exc.code, message=str(exc), ids=ids)
                    break
                say(event="error", code=exc.code, message=str(exc), ids=ids)
                failing_since = failing_since or time.time()
                await trio.sleep(0.2)
                continue
            except sdk.ConnectionClosed as exc:
                say(event="closed", message=str(exc))
                break
            ids = [list(p.ent_id) for p in pairs]
            got += ids
            say(event="pairs", ids=ids)
            failing_since = None
        await trio.sleep(settle)  # expiries from the other end may still be on their way
        void = [list(e) for e in conn.expired]
        doubt = [list(e) for e, why in conn.expired.items() if why.startswith("in doubt")]
        say(event="expired", ids=void, doubt=doubt, reasons=sorted(set(conn.expired.values())))
    kept = [i for i in got if i not in void]
    return {"role": role, "received": len(got), "expired": len(void), "kept": len(kept)}
