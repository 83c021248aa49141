"""Teleportations per second between two apps on two real nodes, next to raw pyzmq.

    python bench/teleport.py [--states N] [--batch B] [--json]

Starts two real nodes (`qnodeos node`: classical + quantum process each, generic
devices at unlimited clock speed, a perfect link) and two SDK apps in this process.
Per batch of B states the sender runs one block (B pairs kept inside it, each state
prepared on a fresh qubit and Bell-measured with its pair's half) and sends the 2B
outcomes in one classical message; the receiver runs one block keeping its B halves,
then, with the message, one block applying each correction and measuring each state in
its eigenbasis. Every teleported state is checked (fidelity 1 on a perfect link), so
the count is of correct teleportations. ``--batch 1`` is the one-at-a-time protocol.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import trio

from qnodeos import sdk

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).parent))
from cpu import Meter, per_unit  # noqa: E402
from pairs import NET  # noqa: E402
from roundtrip import ECHO, raw_floor, start  # noqa: E402

from qnodeos.apps.common import STATES, prepare, to_z  # noqa: E402


async def sender(d: str, n: int, batch: int) -> None:
    ep = f"ipc://{d}/a-app"
    async with sdk.connect("alice", app="alice", qubits=batch + 1, endpoint=ep) as node:
        epr, sock = node.epr_socket("bob", "bob"), node.socket("bob", "bob")
        for first in range(0, n, batch):
            ks = [(first + j) % len(STATES) for j in range(min(batch, n - first))]
            async with node.block() as b:
                pairs = b.create_keep(epr, len(ks))
                outs = []
                for k, e in zip(ks, pairs.qubits, strict=True):
                    q = b.qubit()
                    prepare(q, k)
                    q.cnot(e)
                    q.h()
                    outs.append((e.measure(), q.measure()))
            await sock.send([ks, [[me.value, md.value] for me, md in outs]])


async def receiver(d: str, n: int, batch: int) -> int:
    good = 0
    async with sdk.connect("bob", app="bob", qubits=batch, endpoint=f"ipc://{d}/b-app") as node:
        epr, sock = node.epr_socket("alice", "alice"), node.socket("alice", "alice")
        done = 0
        while done < n:
            size = min(batch, n - done)
            async with node.block() as b:
                pairs = b.recv_keep(epr, size)
            ks, bits = await sock.recv()
            async with node.block() as b:
                futs = []
                for k, (m_e, m_d), q in zip(ks, bits, pairs.qubits, strict=True):
                    if m_e:
                        q.x()
                    if m_d:
                        q.z()
                    to_z(q, STATES[k][1])
                    futs.append((q.measure(), STATES[k][2]))
            good += sum(f.value == want for f, want in futs)
            done += size
    return good


async def run(d: str, n: int, batch: int) -> tuple[float, int]:
    good = 0

    async def recv() -> None:
        nonlocal good
        good = await receiver(d, n, batch)

    t = time.perf_counter()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(sender, d, n, batch)
        nursery.start_soon(recv)
    return time.perf_counter() - t, good


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--states", type=int, default=3000)
    p.add_argument("--batch", type=int, default=15, help="states per block (1..15)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    a = p.parse_args()
    with tempfile.TemporaryDirectory(prefix="qnt-") as d:
        net = Path(d) / "net.toml"
        net.write_text(NET.format(d=d, q=a.batch + 1))
        nodes = [
            start([sys.executable, "-m", "qnodeos", "node", n, "--network", str(net)])
            for n in ("alice", "bob")
        ]
        echo = start([sys.executable, "-c", ECHO, f"ipc://{d}/echo"])
        try:
            raw = raw_floor(f"ipc://{d}/echo", 5000)
            got: list[tuple[float, int]] = []
            # CPU per teleport, all processes, from runs of half the states and of all
            # (whose time and count are reported).
            cpu = per_unit(
                Meter(p.pid for p in nodes),
                lambda n: got.append(trio.run(run, d, n, a.batch)),
                max(a.states // 2, 1),
                a.states,
            )
            took, good = got[-1]
        finally:
            for proc in (*nodes, echo):
                proc.terminate()
            for proc in (*nodes, echo):
                proc.wait()
    rt = len(raw) / sum(raw)
    rate = a.states / took
    if good != a.states:
        raise SystemExit(f"only {good} of {a.states} states arrived intact (perfect link)")
    if a.json:
        figures = {"teleports_per_s": rate, "cpu_us_per_teleport": cpu * 1e6}
        print(json.dumps({"raw_round_trips_per_s": rt, **figures}))
        return
    print(f"{a.states} teleportations, {a.batch} per block, perfect link, speed inf")
    print(f"{'raw pyzmq round trips/s (2 processes)':44} {rt:10.0f}")
    print(f"{'teleportations/s (all checked)':44} {rate:10.0f}  (goal >= 1,000)")
    print(f"{'CPU per teleport, all processes (us)':44} {cpu * 1e6:10.0f}")


if __name__ == "__main__":
    main()
