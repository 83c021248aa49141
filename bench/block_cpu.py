"""CPU per one-gate block (issue #25): ``bench/roundtrip.py``'s blocks (allocate, X,
measure; one app, one node, generic device at speed inf), with the CPU time (utime +
stime from /proc) of the classical process, the quantum process and this process (the
app) read before and after.

    python bench/block_cpu.py [--blocks 3000] [--runs 3]

Prints, per run, µs of CPU per block in each process and in all three, then how much of
each process's share its zmq I/O thread took (libzmq's background thread, "ZMQbg/IO/0":
the socket reads and writes themselves, outside Python).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import trio

sys.path.insert(0, str(Path(__file__).parent))
from cpu import TICK_S, below, cpu_s, own_cpu  # noqa: E402
from roundtrip import blocks, start  # noqa: E402


def zmq_io_s(pid: int) -> float:
    """CPU seconds so far of ``pid``'s zmq I/O threads (0 if it is gone)."""
    total = 0.0
    try:
        tids = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return 0.0
    for tid in tids:
        try:
            raw = Path(f"/proc/{pid}/task/{tid}/stat").read_text()
        except OSError:
            continue
        if raw[raw.index("(") + 1 : raw.rindex(")")].startswith("ZMQbg"):
            fields = raw[raw.rindex(")") + 2 :].split()
            total += (int(fields[11]) + int(fields[12])) * TICK_S
    return total


def one(n: int) -> tuple[dict[str, float], dict[str, float]]:
    with tempfile.TemporaryDirectory(prefix="qnb-") as d:
        net = Path(d) / "net.toml"
        net.write_text(
            f'name = "bench"\n[nodes.bench]\ndevice = "generic"\nqubits = 2\n'
            f'speed = inf\napp_endpoint = "ipc://{d}/app"\nqdevice_endpoint = "ipc://{d}/qdev"\n'
            f'peer_endpoint = "ipc://{d}/peer"\n'  # (the default is shared by every run)
        )
        node = start([sys.executable, "-m", "qnodeos", "node", "bench", "--network", str(net)])
        try:
            trio.run(blocks, f"ipc://{d}/app", 200)  # warm up
            time.sleep(0.2)
            pids = [node.pid, *below(node.pid)]
            before = [cpu_s(p) for p in pids]
            io_before = [zmq_io_s(p) for p in (*pids, os.getpid())]
            mine = own_cpu()
            trio.run(blocks, f"ipc://{d}/app", n)
            mine = own_cpu() - mine
            after = [cpu_s(p) for p in pids]
            io_after = [zmq_io_s(p) for p in (*pids, os.getpid())]
        finally:
            node.terminate()
            node.wait()
    done = n + 100  # blocks() runs 100 more, untimed
    kernel, *rest = (a - b for a, b in zip(after, before, strict=True))
    us = {"kernel": kernel, "qdevice": sum(rest), "app": mine}
    us = {k: v / done * 1e6 for k, v in us.items()}
    us["total"] = sum(us.values())
    io_kernel, *io_rest, io_app = (a - b for a, b in zip(io_after, io_before, strict=True))
    io = {"kernel": io_kernel, "qdevice": sum(io_rest), "app": io_app}
    return us, {k: v / done * 1e6 for k, v in io.items()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--blocks", type=int, default=3000)
    ap.add_argument("--runs", type=int, default=3)
    a = ap.parse_args()
    for i in range(a.runs):
        us, io = one(a.blocks)
        print(
            f"run {i + 1}: CPU us/block: "
            + " ".join(f"{k}={v:.0f}" for k, v in us.items())
            + "; of which zmq I/O threads: "
            + " ".join(f"{k}={v:.0f}" for k, v in io.items())
        )


if __name__ == "__main__":
    main()
