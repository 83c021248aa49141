"""App -> node -> device -> app round trip of a one-gate block, next to raw pyzmq.

    python bench/roundtrip.py [--blocks N] [--transport ipc|tcp] [--keys]

Starts a real node (`qnodeos node`: classical + quantum process, generic device at
unlimited clock speed) and times blocks "allocate, X, measure" from an SDK app in this
process: four one-way hops (app->kernel->device->kernel->app). The floor for the same
hops is two raw pyzmq DEALER/ROUTER ping-pongs between two processes (sync pyzmq, no
trio, no codec, no interpreter), measured in the same run. ``--keys`` turns on CURVE
(``qnodeos keys``): the node's device endpoint always, the app endpoint over tcp (apps
on ipc need no key); the floor stays plain pyzmq, so the ratio shows what CURVE costs.
CPU per block is summed over the node's two processes and this one, from /proc, as the
difference between runs of two sizes (bench/cpu.py).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import trio
import zmq

sys.path.insert(0, str(Path(__file__).parent))
from cpu import Meter, per_unit  # noqa: E402

from qnodeos import sdk
from qnodeos.runtime.timeline import ENV

ECHO = """
import sys, zmq
s = zmq.Context().socket(zmq.ROUTER)
s.bind(sys.argv[1])
print("READY", flush=True)
while True:
    s.send_multipart(s.recv_multipart())
"""


def endpoints(kind: str, d: str) -> tuple[str, str, str]:
    if kind == "ipc":
        return f"ipc://{d}/app", f"ipc://{d}/qdev", f"ipc://{d}/echo"
    return "tcp://127.0.0.1:47311", "tcp://127.0.0.1:47312", "tcp://127.0.0.1:47313"


def start(args: list[str]) -> subprocess.Popen[str]:
    p = subprocess.Popen(args, stdout=subprocess.PIPE, text=True)
    assert p.stdout is not None
    while "READY" not in p.stdout.readline():
        if p.poll() is not None:
            raise SystemExit(f"{args} failed to start")
    return p


def raw_floor(ep: str, n: int) -> list[float]:
    s = zmq.Context.instance().socket(zmq.DEALER)
    s.connect(ep)
    msg = b"x" * 100
    out = []
    for i in range(n + 100):
        t = time.perf_counter()
        s.send(msg)
        s.recv()
        if i >= 100:
            out.append(time.perf_counter() - t)
    s.close(linger=0)
    return out


async def blocks(ep: str, n: int, network: str | None = None) -> list[float]:
    out = []
    async with sdk.connect("bench", app="bench", qubits=1, endpoint=ep, network=network) as node:
        for i in range(n + 100):
            t = time.perf_counter()
            async with node.block() as b:
                q = b.qubit()
                q.x()
                q.measure()
            if i >= 100:
                out.append(time.perf_counter() - t)
    return out


def stats(xs: list[float]) -> tuple[float, float]:
    xs = sorted(xs)
    return statistics.median(xs) * 1e6, xs[int(0.99 * len(xs))] * 1e6


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--blocks", type=int, default=3000)
    p.add_argument("--transport", choices=["ipc", "tcp"], default="ipc")
    p.add_argument("--keys", action="store_true", help="CURVE on (see qnodeos keys)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument("--trace", action="store_true", help="nodes record a timeline (its cost)")
    a = p.parse_args()
    with tempfile.TemporaryDirectory(prefix="qnb-") as d:
        if a.trace:
            os.environ[ENV] = d  # the node and its quantum process record a timeline
        app_ep, dev_ep, echo_ep = endpoints(a.transport, d)
        net = Path(d) / "net.toml"
        net.write_text(
            ('keys = "keys"\n' if a.keys else "")
            + f'name = "bench"\n[nodes.bench]\ndevice = "generic"\nqubits = 2\n'
            f'speed = inf\napp_endpoint = "{app_ep}"\nqdevice_endpoint = "{dev_ep}"\n'
        )
        if a.keys:
            keys = [sys.executable, "-m", "qnodeos", "keys", str(net), "--app", "bench"]
            subprocess.run(keys, check=True, capture_output=True)
        node = start([sys.executable, "-m", "qnodeos", "node", "bench", "--network", str(net)])
        echo = start([sys.executable, "-c", ECHO, echo_ep])
        try:
            # Interleave the two in rounds, so the machine's drift hits both alike.
            raw: list[float] = []
            ours: list[float] = []
            rounds = 10
            for _ in range(rounds):
                raw += raw_floor(echo_ep, a.blocks // rounds)
                ours += trio.run(blocks, app_ep, a.blocks // rounds, str(net) if a.keys else None)
            # CPU per block, all processes: runs of a quarter and a half of the blocks.
            cpu = per_unit(
                Meter([node.pid]),
                lambda n: trio.run(blocks, app_ep, n, str(net) if a.keys else None),
                max(a.blocks // 4, 1),
                max(a.blocks // 2, 2),
            )
        finally:
            node.terminate()
            echo.terminate()
            node.wait()
            echo.wait()
    rm, rp = stats(raw)
    om, op = stats(ours)
    if a.json:
        floor = {"floor_median_us": 2 * rm, "floor_p99_us": 2 * rp}
        ratio = {"ratio_median": om / (2 * rm), "ratio_p99": op / (2 * rp)}
        cpu_us = {"block_cpu_us": cpu * 1e6}
        print(json.dumps({"block_median_us": om, "block_p99_us": op, **floor, **ratio, **cpu_us}))
        return
    print(
        f"transport {a.transport}{', CURVE' if a.keys else ''}, {a.blocks} of each, "
        f"in 10 interleaved rounds (100 warm-up each)"
    )
    print(f"{'':38} {'median us':>10} {'p99 us':>8}")
    print(f"{'raw pyzmq ping-pong (1 round trip)':38} {rm:10.0f} {rp:8.0f}")
    print(f"{'floor for 2 round trips (4 hops)':38} {2 * rm:10.0f} {2 * rp:8.0f}")
    print(f"{'qnodeos one-gate block (4 hops)':38} {om:10.0f} {op:8.0f}")
    print(f"ratio to floor: median {om / (2 * rm):.2f}x, p99 {op / (2 * rp):.2f}x (goal <= 3x)")
    print(f"CPU per block, all processes (node, its quantum process, this app): {cpu * 1e6:.0f} us")


if __name__ == "__main__":
    main()
