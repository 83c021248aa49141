"""A test app that SIGKILLs its own node mid-run (to test `qnodeos run` teardown)."""

from __future__ import annotations

import os

import trio


async def main(node: str) -> dict[str, str]:
    network = os.environ["QNODEOS_NETWORK"]
    await trio.run_process(["pkill", "-9", "-f", f"qnodeos node {node} --network {network}"])
    await trio.sleep(30)  # the launcher must end the run long before this
    return {"survived": "yes"}
