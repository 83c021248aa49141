"""bench/cpu.py's CPU meter against CPU that is known: a child that burns a measured
amount of CPU (it reports its own process time), and a workload of known cost per unit."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "bench"))
from cpu import Meter, per_unit  # noqa: E402

BURN = """
import os, sys, time
while time.process_time() < float(sys.argv[1]):
    pass
print(time.process_time(), flush=True)
sys.stdin.read()  # stay alive until told, so the meter can read it
"""

pytestmark = pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs /proc")


def test_meter_counts_a_child_and_its_child() -> None:
    # A parent shell whose child burns 0.4 s: the meter, given only the parent, sees it.
    p = subprocess.Popen(
        ["sh", "-c", f'{sys.executable} -c "$0" 0.4', BURN],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    meter = Meter([p.pid])
    try:
        assert p.stdout is not None
        told = float(p.stdout.readline())  # the child's own process time
        seen = meter.read()
        mine = Meter([]).read()  # this process alone
    finally:
        assert p.stdin is not None
        p.stdin.close()
        p.wait()
    # The child's start-up (interpreter import) adds some; clock ticks are 10 ms.
    assert told - 0.02 <= seen - mine <= told + 0.5


def test_per_unit_cancels_fixed_costs() -> None:
    spent = [0.0]

    class Fake(Meter):
        def read(self) -> float:
            return spent[0]

    def work(n: int) -> None:
        spent[0] += 0.25 + n * 1e-4  # a fixed set-up cost plus 100 us per unit

    assert per_unit(Fake([]), work, 1000, 3000) == pytest.approx(1e-4)
    with pytest.raises(ValueError, match="0 < n1 < n2"):
        per_unit(Fake([]), work, 5, 5)
