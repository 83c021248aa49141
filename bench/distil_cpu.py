"""CPU per distilled pair (issue #19): two apps ask for ``--pairs`` distilled pairs,
measured in Z, in deterministic mode (every node and both apps in this process, a
mock clock), and the process's CPU time (``time.process_time``) is read around it.

    python bench/distil_cpu.py [--case e2e-bbpssw ...] [--pairs 300] [--runs 3] [--json]

Cases: ``e2e-bbpssw``, ``e2e-dejmps`` and ``e2e-dejmps2`` (n0 - n1 - n2, links of F 0.9
and 0.85, one BBPSSW round, one or two DEJMPS rounds end to end), ``link-dejmps`` and
``link-kept`` (one link of F 0.8, one DEJMPS round, pairs measured or kept). Prints,
per case and run, ms of CPU per delivered pair and the rounds the creating end ran;
``--json``: one JSON object instead, for bench/run.py: per case, the median run's
``CASE_cpu_us_per_pair`` (the case's name with ``_`` for ``-``).
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from typing import Any

import trio
import trio.testing

from qnodeos import sdk
from qnodeos.config.network import parse_network
from qnodeos.sdk.client import IN_PROCESS
from qnodeos.testbed.local import local_network, service

CASES: dict[str, tuple[list[float], str, int, str]] = {  # links, scheme, rounds, kind
    "e2e-bbpssw": ([0.9, 0.85], "bbpssw", 1, "M"),
    "e2e-dejmps": ([0.9, 0.85], "dejmps", 1, "M"),
    "e2e-dejmps2": ([0.9, 0.85], "dejmps", 2, "M"),
    "link-dejmps": ([0.8], "dejmps", 1, "M"),
    "link-kept": ([0.8], "dejmps", 1, "K"),
}
PER = 4  # kept pairs per request


def network_text(fids: list[float]) -> str:
    body = 'name = "distil-bench"\n'
    for i in range(len(fids) + 1):
        body += f'[nodes.n{i}]\ndevice = "generic"\nqubits = 8\nseed = {i + 1}\n'
    for i, f in enumerate(fids):
        body += (
            f'[[links]]\nnodes = ["n{i}", "n{i + 1}"]\nmodel = "depolarise"\nfidelity = {f}\n'
            f"p_success = 0.5\ncycle_ns = 1000\nseed = {100 + i}\n"
        )
    return body


async def app(me: str, other: str, create: bool, case: str, pairs: int) -> None:
    _, scheme, rounds, kind = CASES[case]
    opts: dict[str, Any] = {"distill": scheme, "rounds": rounds} if create else {}
    async with sdk.connect(me, app="app", qubits=PER) as conn:
        epr = conn.epr_socket(other, "app")
        if kind == "M":
            call = epr.create_measure if create else epr.recv_measure
            await call(pairs, timeout=600.0, **opts)
            return
        for _ in range(pairs // PER):
            got = await (epr.create_keep(PER, timeout=600.0, **opts) if create else
                         epr.recv_keep(PER, timeout=600.0))  # fmt: skip
            async with conn.block():
                for p in got:
                    assert p.qubit is not None
                    p.qubit.measure()


def one(case: str, pairs: int) -> tuple[float, int]:
    """(CPU seconds, rounds the creating end ran) for ``pairs`` distilled pairs."""
    fids = CASES[case][0]
    cfg = parse_network(network_text(fids))
    last = f"n{len(fids)}"
    rounds = 0

    async def main() -> None:
        nonlocal rounds
        async with local_network(cfg) as endpoints:
            token = IN_PROCESS.set((cfg, endpoints))
            try:
                async with trio.open_nursery() as nursery:
                    nursery.start_soon(app, "n0", last, True, case, pairs)
                    nursery.start_soon(app, last, "n0", False, case, pairs)
            finally:
                IN_PROCESS.reset(token)
            net = service(endpoints["n0"]).kernel.net
            rounds = net.distill_ok + net.distill_failed

    start = time.process_time()
    trio.run(main, clock=trio.testing.MockClock(autojump_threshold=0))
    return time.process_time() - start, rounds


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--case", choices=sorted(CASES), nargs="+", default=["e2e-bbpssw"])
    ap.add_argument("--pairs", type=int, default=300)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--json", action="store_true", help="one JSON object (for bench/run.py)")
    a = ap.parse_args()
    figures: dict[str, float] = {}
    for case in a.case:
        cpus = []
        for i in range(a.runs):
            cpu, rounds = one(case, a.pairs)
            cpus.append(cpu)
            if not a.json:
                print(
                    f"run {i + 1}: {case}, {a.pairs} pairs: {cpu * 1e3 / a.pairs:.2f} ms CPU "
                    f"per pair ({cpu:.2f} s; {rounds} rounds at the creating end)",
                    flush=True,
                )
        figures[f"{case.replace('-', '_')}_cpu_us_per_pair"] = (
            1e6 * statistics.median(cpus) / a.pairs
        )
    if a.json:
        print(json.dumps(figures))


if __name__ == "__main__":
    main()
