"""CPU per create-and-keep pair, per process (issue #25): ``bench/pairs.py``'s K run
(two nodes, generic devices at speed inf, a perfect link; K pairs per request into K
qubits, then one block measuring them), with the CPU time (utime + stime from /proc)
of each node process and of this process (both SDK apps) read before and after.

    python bench/keep_cpu.py [--pairs 4000] [--keep-batch 16] [--runs 3]

Prints, per run, K pairs/s and µs of CPU per pair: each classical process, each
quantum process, the apps, and the sum over all five processes; then how much of that
the processes' zmq I/O threads took (socket reads and writes, outside Python).
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
from block_cpu import zmq_io_s  # noqa: E402
from cpu import below, cpu_s, own_cpu  # noqa: E402
from pairs import NET, run  # noqa: E402
from roundtrip import start  # noqa: E402


def one(pairs: int, batch: int) -> tuple[float, dict[str, float], float]:
    with tempfile.TemporaryDirectory(prefix="qnk-") as d:
        net = Path(d) / "net.toml"
        net.write_text(NET.format(d=d, q=batch))
        nodes = {
            n: start([sys.executable, "-m", "qnodeos", "node", n, "--network", str(net)])
            for n in ("alice", "bob")
        }
        try:
            trio.run(run, d, "K", 2 * batch, batch)  # warm up (connections, imports)
            time.sleep(0.2)
            procs = {n: [p.pid, *below(p.pid)] for n, p in nodes.items()}
            before = {n: [cpu_s(x) for x in pids] for n, pids in procs.items()}
            every = [os.getpid(), *(x for pids in procs.values() for x in pids)]
            io = sum(zmq_io_s(x) for x in every)
            mine = own_cpu()
            rate = trio.run(run, d, "K", pairs, batch)
            mine = own_cpu() - mine
            after = {n: [cpu_s(x) for x in pids] for n, pids in procs.items()}
            io = sum(zmq_io_s(x) for x in every) - io
        finally:
            for p in nodes.values():
                p.terminate()
            for p in nodes.values():
                p.wait()
    us: dict[str, float] = {}
    for n in nodes:
        kernel, *rest = (a - b for a, b in zip(after[n], before[n], strict=True))
        us[f"{n} kernel"] = kernel / pairs * 1e6
        us[f"{n} qdevice"] = sum(rest) / pairs * 1e6
    us["apps"] = mine / pairs * 1e6
    us["total"] = sum(us.values())
    return rate, us, io / pairs * 1e6


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--pairs", type=int, default=4000)
    ap.add_argument("--keep-batch", type=int, default=16)
    ap.add_argument("--runs", type=int, default=3)
    a = ap.parse_args()
    for i in range(a.runs):
        rate, us, io = one(a.pairs, a.keep_batch)
        parts = " ".join(f"{k}={v:.0f}" for k, v in us.items())
        print(
            f"run {i + 1}: {rate:.0f} K pairs/s; CPU us/pair: {parts}; of which zmq I/O "
            f"threads {io:.0f}",
            flush=True,
        )


if __name__ == "__main__":
    main()
