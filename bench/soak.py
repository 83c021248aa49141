"""Soak: do long runs leak memory, file descriptors or runtime files?

    python bench/soak.py sessions [--minutes M] [--apps 8]
    python bench/soak.py runs [--minutes M]

``sessions``: two nodes (alice, bob; generic devices at unlimited speed, a perfect link)
stay up while 8 app pairs per node loop: connect, run a block, take 4 measured pairs,
exchange a classical message, disconnect. Every 30 s it prints the sessions done and
each process's resident memory and open file descriptors; a leak shows as a column
that keeps growing once the first minutes have warmed the caches.

``runs``: ``qnodeos run`` of the embedded default network (the README's first command)
again and again; prints, per run, its exit code and what it left behind: runtime
directories (``qn-*`` in the temp dir) and socket or lock files, and processes.

Not a test (it takes as long as you let it); the numbers it prints are the result.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import trio

from qnodeos import sdk

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tests.integration.helpers import start_node  # noqa: E402

NET = """
name = "soak"
[nodes.alice]
device = "generic"
qubits = 16
speed = inf
app_endpoint = "ipc://{d}/a-app"
qdevice_endpoint = "ipc://{d}/a-qdev"
peer_endpoint = "ipc://{d}/a-peer"
qpeer_endpoint = "ipc://{d}/a-qpeer"
[nodes.bob]
device = "generic"
qubits = 16
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


def usage(pid: int) -> tuple[float, int]:
    """(resident MiB, open file descriptors) of process ``pid``."""
    rss = 0
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            rss = int(line.split()[1])
    return rss / 1024, len(os.listdir(f"/proc/{pid}/fd"))


def children(pid: int) -> list[int]:
    out = []
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                if int((d / "stat").read_text().rsplit(")", 1)[1].split()[1]) == pid:
                    out.append(int(d.name))
            except (OSError, ValueError, IndexError):
                continue
    return out


async def pair_loop(net: str, i: int, done: list[int], until: float) -> None:
    a, b = f"soak-a{i}", f"soak-b{i}"
    while time.time() < until:
        async with (
            sdk.connect("alice", app=a, qubits=1, network=net) as na,
            sdk.connect("bob", app=b, qubits=1, network=net) as nb,
        ):
            async with na.block() as blk:
                q = blk.qubit()
                q.h()
                q.measure()

            async def create() -> None:
                await na.epr_socket("bob", b).create_measure(4, bases="XZ")
                await na.socket("bob", b).send(i)

            async def recv() -> None:
                await nb.epr_socket("alice", a).recv_measure(4, bases="XZ")
                assert await nb.socket("alice", a).recv() == i

            async with trio.open_nursery() as n:
                n.start_soon(create)
                n.start_soon(recv)
        done[0] += 1


async def sessions(net: str, apps: int, minutes: float, pids: dict[str, int]) -> None:
    done = [0]
    end = time.time() + minutes * 60
    start = time.time()

    async def report() -> None:
        while True:
            cols = "  ".join(
                f"{name} {rss:6.1f} MiB {fds:3d} fd" for name, (rss, fds) in
                ((n, usage(p)) for n, p in pids.items())
            )
            print(f"{time.time() - start:6.0f} s {done[0]:7d} sessions  {cols}", flush=True)
            await trio.sleep(30)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(report)
        async with trio.open_nursery() as loops:
            for i in range(apps):
                loops.start_soon(pair_loop, net, i, done, end)
        nursery.cancel_scope.cancel()
    print(f"{done[0]} sessions in {minutes:g} min")


def soak_sessions(minutes: float, apps: int) -> None:
    d = Path(tempfile.mkdtemp(prefix="qs-"))
    net = d / "net.toml"
    net.write_text(NET.format(d=d))
    nodes = [start_node(n, net, d / f"{n}.log") for n in ("alice", "bob")]
    pids = {}
    for name, proc in zip(("alice", "bob"), nodes, strict=True):
        pids[f"{name}/classical"] = proc.p.pid
        pids[f"{name}/quantum"] = children(proc.p.pid)[0]
    try:
        trio.run(sessions, str(net), apps, minutes, pids)
    finally:
        for n in nodes:
            n.stop()


def soak_runs(minutes: float) -> None:
    tmp = Path(tempfile.gettempdir())
    end = time.time() + minutes * 60
    i = 0
    while time.time() < end:
        before = set(tmp.glob("qn-*"))
        with tempfile.TemporaryDirectory(prefix="qsr-") as rd:
            t0 = time.time()
            r = subprocess.run(
                [sys.executable, "-m", "qnodeos", "run", "--run-dir", rd],
                capture_output=True,
                text=True,
            )
        dirs = set(tmp.glob("qn-*")) - before
        files = [f for d in dirs for f in d.iterdir()]
        left = [p for p in children(os.getpid())]
        i += 1
        print(
            f"run {i}: exit {r.returncode} in {time.time() - t0:.1f} s; left: "
            f"{len(dirs)} runtime dir(s), {len(files)} file(s), {len(left)} process(es)",
            flush=True,
        )


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("mode", choices=["sessions", "runs"])
    p.add_argument("--minutes", type=float, default=60.0)
    p.add_argument("--apps", type=int, default=8, help="app pairs looping at once")
    a = p.parse_args()
    if a.mode == "sessions":
        soak_sessions(a.minutes, a.apps)
    else:
        soak_runs(a.minutes)


if __name__ == "__main__":
    main()
