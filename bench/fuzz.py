"""Fuzz every endpoint of a running node hard, and report crashes, hangs and memory.

    python bench/fuzz.py [--messages N] [--endpoints app,peer,qpeer,qdevice]

Starts two nodes with keys (alice, bob; tests/integration/test_fuzz.py's network) and
throws at least N (default 100,000) hostile messages at each of alice's endpoints with
the strategies of tests/fuzzing.py (random bytes and frame counts, nonsense and deeply
nested msgpack, every message type with unbounded and non-finite fields, spoofed
senders, truncations, oversized frames, replays). Every 2,000 messages a legitimate
app runs a block and takes pairs with bob and must get correct results within 10 s.
Prints, per endpoint: messages sent, crashes (a process died), hangs (the legitimate
app timed out or failed), and the resident memory of alice's classical and quantum
processes before and after.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import trio
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tests.fuzzing import ENDPOINTS, Target, frames, legit_check  # noqa: E402
from tests.integration.helpers import start_node  # noqa: E402
from tests.integration.test_fuzz import fuzz_network, fuzz_target  # noqa: E402


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def child_of(pid: int) -> int:
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                if int((d / "stat").read_text().rsplit(")", 1)[1].split()[1]) == pid:
                    return int(d.name)
            except (OSError, ValueError, IndexError):
                continue
    raise RuntimeError(f"process {pid} has no child")


def fuzz(ep: str, tgt: Target, net: Path, messages: int) -> tuple[int, int]:
    """Send at least ``messages`` hostile messages to endpoint ``ep``, checking the
    legitimate app every 2,000; returns (messages sent, failed checks)."""
    start, hangs = tgt.sent, 0
    checked = tgt.sent

    @settings(
        max_examples=messages // 4 + 1,  # each example sends about 6 messages
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(st.lists(frames(ep), min_size=1, max_size=5))
    def attack(batch: list[list[bytes]]) -> None:
        nonlocal hangs, checked
        for msg in batch:
            tgt.blast(ep, msg)
        if tgt.sent - checked >= 2000:
            checked = tgt.sent
            try:
                trio.run(legit_check, str(net))
            except Exception as exc:  # a hang or a wrong result: count it, go on
                hangs += 1
                print(f"  legitimate app failed: {type(exc).__name__}: {exc}")

    while tgt.sent - start < messages:
        attack()
    return tgt.sent - start, hangs


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--messages", type=int, default=100_000)
    p.add_argument("--endpoints", default=",".join(ENDPOINTS))
    a = p.parse_args()
    d = Path(tempfile.mkdtemp(prefix="qf-"))
    net = fuzz_network(d)
    nodes = [start_node(n, net, d / f"{n}.log") for n in ("alice", "bob")]
    kernel = nodes[0].p.pid
    qproc = child_of(kernel)
    tgt = fuzz_target(d)
    print(
        f"{'endpoint':9} {'messages':>9} {'s':>6} {'crashes':>7} {'hangs':>5} "
        f"{'classical RSS MiB':>18} {'quantum RSS MiB':>16}"
    )
    try:
        for ep in a.endpoints.split(","):
            trio.run(legit_check, str(net))  # warm: both processes at their working size
            before = rss_kib(kernel), rss_kib(qproc)
            t0 = time.time()
            sent, hangs = fuzz(ep, tgt, net, a.messages)
            crashes = sum(n.p.poll() is not None for n in nodes)
            after = rss_kib(kernel), rss_kib(qproc)
            print(
                f"{ep:9} {sent:9} {time.time() - t0:6.0f} {crashes:7} {hangs:5} "
                f"{before[0] / 1024:8.1f} -> {after[0] / 1024:6.1f} "
                f"{before[1] / 1024:7.1f} -> {after[1] / 1024:6.1f}",
                flush=True,
            )
            if crashes:
                break
    finally:
        tgt.close()
        for n in nodes:
            n.stop()
    log = (d / "alice.log").read_text()
    bugs = log.count("internal error") + log.count("kernel failed")
    print(f"alice's log: {len(log.splitlines())} lines, {len(log)} bytes; bugs caught: {bugs}")


if __name__ == "__main__":
    main()
