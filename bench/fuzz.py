"""Fuzz every endpoint of a running node hard, and report crashes, hangs and memory.

    python bench/fuzz.py [--messages N] [--endpoints app,peer,qpeer,qdevice]
                         [--scenarios moves,expire,flood]

Starts two nodes with keys (alice, bob; tests/integration/test_fuzz.py's network) and
throws at least N (default 100,000) hostile messages at each of alice's endpoints with
the strategies of tests/fuzzing.py (random bytes and frame counts, nonsense and deeply
nested msgpack, every message type with unbounded and non-finite fields, spoofed
senders, truncations, oversized frames, replays). Every 2,000 messages a legitimate
app runs a block and takes pairs with bob and must get correct results within 10 s.
Prints, per endpoint: messages sent, crashes (a process died), hangs (the legitimate
app timed out or failed), and the resident memory of alice's classical and quantum
processes before and after.

Then the targeted scenarios (issue 21), each from "mallory", a listed node with keys
and no link to alice: ``moves`` (pulls and pushes of alice's and bob's qubits with
made-up custody tokens, on the qpeer endpoint), ``expire`` (link-layer expiries of
the pairs alice and bob make, naming bob or mallory, on the peer endpoint) and
``flood`` (oversized blocks back to back on the app endpoint: NetQASM text of 16,384
lines, binary of 16,384 commands, native blocks of 65,536 instructions).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
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


def fuzz(
    ep: str,
    tgt: Target,
    net: Path,
    messages: int,
    one: st.SearchStrategy[list[bytes]] | None = None,
) -> tuple[int, int]:
    """Send at least ``messages`` hostile messages to endpoint ``ep`` (drawn from
    ``one``, or the general strategies), checking the legitimate app every 2,000;
    returns (messages sent, failed checks)."""
    start, hangs = tgt.sent, 0
    checked = tgt.sent

    @settings(
        max_examples=messages // 4 + 1,  # each example sends about 6 messages
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(st.lists(one if one is not None else frames(ep), min_size=1, max_size=5))
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


def _qubit() -> st.SearchStrategy[tuple[str, int]]:
    return st.tuples(st.sampled_from(["alice", "bob", "mallory"]), st.integers(0, 3))


def _scenario(name: str) -> tuple[str, st.SearchStrategy[list[bytes]]]:
    """(endpoint, one message) of a targeted scenario."""
    from qnodeos.lang import codec
    from qnodeos.lang import messages as m
    from qnodeos.lang.program import Subroutine
    from qnodeos.lang.text import parse

    if name == "moves":
        enc = codec.qdevice_peer()
        zero = np.array([[1, 0], [0, 0]], dtype=np.complex128).tobytes()
        pull = st.builds(
            m.QPull, frm=st.just("mallory"), for_node=st.sampled_from(["alice", "mallory"]),
            qubit=_qubit(),
        )  # fmt: skip
        push = st.builds(
            m.QGroup, frm=st.just("mallory"), qubits=_qubit().map(lambda q: [q]),
            rho=st.just(zero), tokens=st.binary(min_size=8, max_size=8).map(lambda t: [t]),
        )  # fmt: skip
        return "qpeer", st.one_of(pull, push).map(lambda x: [enc.encode(x)])
    if name == "expire":
        enc = codec.node_to_node()
        expire = st.builds(
            m.EgpExpire, seqs=st.lists(st.integers(0, 50_000), min_size=1, max_size=50),
            reason=st.just("forged"),
        )  # fmt: skip
        frm = st.sampled_from(["bob", "mallory"])
        egp = st.builds(m.Egp, from_node=frm, msg=expire)
        return "peer", egp.map(lambda x: [enc.encode(x)])
    if name == "flood":
        enc = codec.app_to_node()
        four_k = parse("qalloc Q0\n" + "x Q0\n" * 4095).instrs
        text = ("# NETQASM 1.0\n# APPID 0\n" + "x Q0\n" * 16_384).encode()
        big = [
            enc.encode(m.SubmitNetQASM(block=1, code=text, form="text")),
            enc.encode(m.SubmitNetQASM(block=2, code=bytes(4) + bytes(7 * 16_384))),
            enc.encode(m.Submit(block=3, sub=Subroutine(arrays={}, instrs=four_k * 16, labels={}))),
        ]
        return "app", st.sampled_from(big).map(lambda b: [b])
    raise SystemExit(f"unknown scenario {name!r}; known: moves, expire, flood")


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--messages", type=int, default=100_000)
    p.add_argument("--endpoints", default=",".join(ENDPOINTS))
    p.add_argument("--scenarios", default="moves,expire,flood")
    a = p.parse_args()
    runs = [(ep, ep, None) for ep in a.endpoints.split(",") if ep]
    runs += [(name, *_scenario(name)) for name in a.scenarios.split(",") if name]
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
        for label, ep, one in runs:
            trio.run(legit_check, str(net))  # warm: both processes at their working size
            before = rss_kib(kernel), rss_kib(qproc)
            t0 = time.time()
            sent, hangs = fuzz(ep, tgt, net, a.messages, one)
            crashes = sum(n.p.poll() is not None for n in nodes)
            after = rss_kib(kernel), rss_kib(qproc)
            print(
                f"{label:9} {sent:9} {time.time() - t0:6.0f} {crashes:7} {hangs:5} "
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
