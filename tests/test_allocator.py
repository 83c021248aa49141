"""The quantum process fixes glibc's mmap and trim thresholds (``runtime.allocator``):
large arrays freed by one device op are reused by the next instead of being unmapped
and faulted in again. Checked by behaviour, the page faults a forked quantum process
takes, against a plain forked child of the same fresh interpreter."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from qnodeos.runtime.allocator import glibc

pytestmark = pytest.mark.skipif(glibc() is None, reason="glibc Linux only")

# Four 2 MiB arrays (8-qubit density matrices) made and dropped together, 10 times:
# glibc's own thresholds unmap or trim them every time (~2,000 faults a round here).
PROBE = """
import os, sys
import numpy as np

def faults() -> int:
    with open('/proc/self/stat') as f:
        return int(f.read().rsplit(')', 1)[1].split()[7])

def probe(*args, **kwargs) -> None:
    for _ in range(3):  # the heap grows once
        xs = [np.ones(2**18) for _ in range(4)]; del xs
    before = faults()
    for _ in range(10):
        xs = [np.ones(2**18) for _ in range(4)]; del xs
    print(sys.argv[1], faults() - before, flush=True)
"""


def _faults(code: str, *names: str) -> dict[str, int]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MALLOC_")}
    out = subprocess.run(
        [sys.executable, "-c", PROBE + code, *names], env=env, capture_output=True, text=True
    )
    assert out.returncode == 0, out.stderr
    got = dict(line.split() for line in out.stdout.split("\n") if line)
    return {k: int(v) for k, v in got.items()}


NETWORK = """
name = "heap"
[nodes.big]
device = "generic"
qubits = 7
[nodes.small]
device = "generic"
qubits = 6
"""


def test_a_forked_quantum_process_of_7_qubits_keeps_its_large_arrays_pages(
    tmp_path: Path,
) -> None:
    """``fork_qdevice`` (what a node does) with its device loop replaced by the probe:
    a 7-qubit node's quantum process takes no page faults after the first rounds; a
    6-qubit node's (whose arrays never pass glibc's threshold: it keeps glibc's own)
    faults on every round, as a plain ``fork`` of the same interpreter does."""
    net = tmp_path / "heap.toml"
    net.write_text(NETWORK)
    code = f"""
import trio
import qnodeos.qdevice.realtime
from qnodeos.runtime.forking import fork
from qnodeos.testbed.node import fork_qdevice

qnodeos.qdevice.realtime.serve_forever = probe
for sys.argv[1] in ("plain", "small", "big"):
    if sys.argv[1] == "plain":
        trio.run(fork(lambda lifeline: probe()).wait)
    else:
        trio.run(fork_qdevice(sys.argv[1], {str(net)!r}, "token").wait)
"""
    got = _faults(code, "plain")
    assert got["plain"] > 5_000, got  # else the probe shows nothing on this machine
    assert got["small"] > 5_000, got
    assert got["big"] < 100, got


def test_an_explicit_environment_setting_is_kept() -> None:
    """``MALLOC_MMAP_THRESHOLD_`` in the environment (glibc reads it at start) wins:
    the call leaves glibc alone then (set here too late for glibc to read it, so the
    probe shows glibc's own thresholds), and says it did its part."""
    code = """
os.environ["MALLOC_MMAP_THRESHOLD_"] = "65536"
os.environ["MALLOC_TRIM_THRESHOLD_"] = "65536"
from qnodeos.runtime.allocator import roomy_heap
assert roomy_heap()
probe()
"""
    assert _faults(code, "kept")["kept"] > 5_000
