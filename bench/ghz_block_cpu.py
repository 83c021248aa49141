"""CPU and page faults per block on a real node whose blocks entangle K qubits: a GHZ
state (h, a CNOT chain), an x on each qubit, then all measured; the quantum process's
state group grows to K qubits and shrinks again in every block.

    python bench/ghz_block_cpu.py [--qubits 9] [--blocks 200]

Prints µs of CPU (utime + stime from /proc, 10 ms ticks: run enough blocks) and minor
page faults per block for the node's classical and quantum processes.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import trio

sys.path.insert(0, str(Path(__file__).parent))
from cpu import below, cpu_s  # noqa: E402
from roundtrip import start  # noqa: E402

from qnodeos import sdk  # noqa: E402


def faults(pid: int) -> int:
    """Minor page faults so far of ``pid`` (/proc/PID/stat field 10)."""
    return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[7])


async def blocks(ep: str, k: int, n: int) -> None:
    async with sdk.connect("bench", app="bench", qubits=k, endpoint=ep) as node:
        for _ in range(n):
            async with node.block() as b:
                qs = [b.qubit() for _ in range(k)]
                qs[0].h()
                for a, c in zip(qs, qs[1:], strict=False):
                    a.cnot(c)
                for q in qs:
                    q.x()
                for q in qs:
                    q.measure()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--qubits", type=int, default=9)
    ap.add_argument("--blocks", type=int, default=200)
    a = ap.parse_args()
    k, n = a.qubits, a.blocks
    with tempfile.TemporaryDirectory(prefix="qnghz-") as d:
        net = Path(d) / "net.toml"
        net.write_text(
            f'name = "bench"\n[nodes.bench]\ndevice = "generic"\nqubits = {k}\n'
            f'speed = inf\napp_endpoint = "ipc://{d}/app"\nqdevice_endpoint = "ipc://{d}/qdev"\n'
            f'peer_endpoint = "ipc://{d}/peer"\n'
        )
        node = start([sys.executable, "-m", "qnodeos", "node", "bench", "--network", str(net)])
        try:
            trio.run(blocks, f"ipc://{d}/app", k, 10)  # warm up
            pids = [node.pid, *below(node.pid)]
            cpu0, flt0 = [cpu_s(p) for p in pids], [faults(p) for p in pids]
            trio.run(blocks, f"ipc://{d}/app", k, n)
            cpu1, flt1 = [cpu_s(p) for p in pids], [faults(p) for p in pids]
        finally:
            node.terminate()
            node.wait()
    names = ["classical", *(["quantum"] if len(pids) == 2 else [f"child{i}" for i in pids[1:]])]
    for name, c0, c1, f0, f1 in zip(names, cpu0, cpu1, flt0, flt1, strict=True):
        print(f"{k} qubits, {name}: {(c1 - c0) / n * 1e6:.0f} us CPU, {(f1 - f0) / n:.1f} faults")


if __name__ == "__main__":
    main()
