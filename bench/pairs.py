"""End-to-end entangled pairs per second delivered to apps, next to raw pyzmq.

    python bench/pairs.py [--pairs N] [--batch B] [--keep-batch K] [--keys]

Starts two real nodes (`qnodeos node`: classical + quantum process each, generic
devices at unlimited clock speed, a perfect link: every attempt heralds) and runs two
SDK apps in this process that ask for pairs: measure-directly ("M", bases X/Z, B pairs
per request, streamed to the apps as they come; by default one request for all) and
create-and-keep ("K", K pairs per request into K qubits, then one block measuring them
so the qubits are free again). The floor is the raw pyzmq
DEALER/ROUTER round-trip rate between two processes (sync pyzmq, no trio, no codec)
measured in the same run; each pair needs at least a few such hops (kernel ->
quantum process -> station -> both quantum processes -> kernels). ``--keys`` turns on
CURVE between the nodes' processes (``qnodeos keys``), to see what it costs.

CPU per pair is summed over every process of the run (both nodes' classical and quantum
processes and the apps in this one), from /proc, as the difference between a run of
half the pairs and a run of all of them (bench/cpu.py), so start-up falls out.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from contextlib import aclosing
from pathlib import Path

import trio

from qnodeos import sdk
from qnodeos.runtime.timeline import ENV

sys.path.insert(0, str(Path(__file__).parent))
from cpu import Meter, per_unit  # noqa: E402
from roundtrip import ECHO, raw_floor, start  # noqa: E402

NET = """
name = "pairbench"
[nodes.alice]
device = "generic"
qubits = {q}
speed = inf
app_endpoint = "ipc://{d}/a-app"
qdevice_endpoint = "ipc://{d}/a-qdev"
peer_endpoint = "ipc://{d}/a-peer"
qpeer_endpoint = "ipc://{d}/a-qpeer"
[nodes.bob]
device = "generic"
qubits = {q}
speed = inf
app_endpoint = "ipc://{d}/b-app"
qdevice_endpoint = "ipc://{d}/b-qdev"
peer_endpoint = "ipc://{d}/b-peer"
qpeer_endpoint = "ipc://{d}/b-qpeer"
[[links]]
nodes = ["alice", "bob"]
model = "perfect"
cycle_ns = 1000
"""


async def side(d: str, here: str, there: str, kind: str, n: int, batch: int, create: bool) -> float:
    """One app on node ``here`` (app name = node name) asking for pairs with ``there``."""
    ep = f"ipc://{d}/{here[0]}-app"
    qubits = batch if kind == "K" else 1
    async with sdk.connect(here, app=here, qubits=qubits, endpoint=ep) as node:
        epr = node.epr_socket(there, there)
        start = time.perf_counter()
        done = 0
        while done < n:
            k = min(batch, n - done)
            if kind == "M":
                role = "create" if create else "recv"
                async with aclosing(epr.stream_measure(role, k, bases="XZ")) as chunks:
                    async for _ in chunks:
                        pass
            else:
                ask = epr.create_keep if create else epr.recv_keep
                pairs = await ask(k)
                async with node.block():
                    for p in pairs:
                        assert p.qubit is not None
                        p.qubit.measure()
            done += k
        return time.perf_counter() - start


async def run(d: str, kind: str, n: int, batch: int) -> float:
    took: dict[str, float] = {}

    async def one(here: str, there: str, create: bool) -> None:
        took[here] = await side(d, here, there, kind, n, batch, create)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(one, "alice", "bob", True)
        nursery.start_soon(one, "bob", "alice", False)
    return n / max(took.values())


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--pairs", type=int, default=20000, help="pairs of each kind")
    p.add_argument("--batch", type=int, default=0, help="M pairs per request (0: all in one)")
    p.add_argument("--keep-batch", type=int, default=16, help="K pairs per request (qubits)")
    p.add_argument("--keys", action="store_true", help="CURVE on (see qnodeos keys)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument("--trace", action="store_true", help="nodes record a timeline (its cost)")
    a = p.parse_args()
    with tempfile.TemporaryDirectory(prefix="qnp-") as d:
        if a.trace:
            os.environ[ENV] = d  # the nodes record timelines (their cost)
        net = Path(d) / "net.toml"
        net.write_text(('keys = "keys"\n' if a.keys else "") + NET.format(d=d, q=a.keep_batch))
        if a.keys:
            keys = [sys.executable, "-m", "qnodeos", "keys", str(net)]
            subprocess.run(keys, check=True, capture_output=True)
        nodes = [
            start([sys.executable, "-m", "qnodeos", "node", n, "--network", str(net)])
            for n in ("alice", "bob")
        ]
        echo = start([sys.executable, "-c", ECHO, f"ipc://{d}/echo"])
        try:
            meter = Meter(p.pid for p in nodes)
            raw = raw_floor(f"ipc://{d}/echo", 5000)
            rates: dict[str, float] = {}

            def work(kind: str, batch: int) -> Callable[[int], object]:
                def go(n: int) -> None:
                    rates[kind] = trio.run(run, d, kind, n, batch or n)

                return go

            # CPU per pair from a run of half the pairs and a run of all (the second
            # run's rate is the one reported), so set-up costs fall out.
            half = max(a.pairs // 2, 1)
            m_cpu = per_unit(meter, work("M", a.batch), half, a.pairs)
            k_cpu = per_unit(meter, work("K", a.keep_batch), half, a.pairs)
            m_rate, k_rate = rates["M"], rates["K"]
            raw += raw_floor(f"ipc://{d}/echo", 5000)
        finally:
            for proc in (*nodes, echo):
                proc.terminate()
            for proc in (*nodes, echo):
                proc.wait()
    rt = len(raw) / sum(raw)
    if a.json:
        out = {"m_pairs_per_s": m_rate, "k_pairs_per_s": k_rate}
        cpu = {"m_cpu_us_per_pair": m_cpu * 1e6, "k_cpu_us_per_pair": k_cpu * 1e6}
        print(json.dumps({"raw_round_trips_per_s": rt, **out, **cpu}))
        return
    curve = ", CURVE between the nodes" if a.keys else ""
    per = f"M {a.batch or a.pairs}, K {a.keep_batch} per request"
    print(f"{a.pairs} pairs of each kind ({per}), perfect link, speed inf{curve}")
    print(f"{'raw pyzmq round trips/s (2 processes)':44} {rt:10.0f}")
    for label, rate, cpu in (
        ("measure-directly (M) pairs/s to both apps", m_rate, m_cpu),
        ("create-and-keep (K) pairs/s, then measured", k_rate, k_cpu),
    ):
        print(
            f"{label:44} {rate:10.0f}  ({rt / rate:.1f} raw round trips of time per pair; "
            f"CPU {cpu * 1e6:.0f} us per pair, all processes)"
        )


if __name__ == "__main__":
    main()
