"""``run`` (in this process, simulated time): its results' shape, and errors that
name the problem: a program that raises (the other is stopped), one that yields
NetSquid's events, programs for stacks the config does not have, more qubits than the
device has. And the import shim: ``import squidasm...`` gives this layer,
``import netsquid`` says why it cannot."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Generator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

pytest.importorskip("netqasm")

from netqasm.sdk import Qubit  # noqa: E402

from qnodeos.errors import ConfigError  # noqa: E402
from qnodeos.squidasm.config import StackConfig, StackNetworkConfig  # noqa: E402
from qnodeos.squidasm.program import Program, ProgramContext, ProgramMeta  # noqa: E402
from qnodeos.squidasm.run import run  # noqa: E402
from qnodeos.squidasm.util import create_two_node_network, get_qubit_state  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]


class Bell(Program):
    """Keeps its half of a pair and reads the pair's joint state."""

    def __init__(self, peer: str, create: bool, fail: bool = False) -> None:
        self.peer, self.create, self.fail = peer, create, fail

    @property
    def meta(self) -> ProgramMeta:
        return ProgramMeta(name="bell", csockets=[self.peer], epr_sockets=[self.peer],
                           max_qubits=1)  # fmt: skip

    def run(self, context: ProgramContext) -> Generator[Any, None, dict[str, Any]]:
        sock, epr = context.csockets[self.peer], context.epr_sockets[self.peer]
        q = (epr.create_keep() if self.create else epr.recv_keep())[0]
        yield from context.connection.flush()
        if self.fail:
            raise ZeroDivisionError("the program's own bug")
        if self.create:
            state = get_qubit_state(q, "x", full_state=True)
            sock.send("read")
        else:
            state = None
            assert (yield from sock.recv()) == "read"
        m = q.measure()
        yield from context.connection.flush()
        return {"m": int(m), "state": state}


class Local(Program):
    @property
    def meta(self) -> ProgramMeta:
        return ProgramMeta(name="local", csockets=[], epr_sockets=[], max_qubits=2)

    def run(self, context: ProgramContext) -> Generator[Any, None, dict[str, Any]]:
        q = Qubit(context.connection)
        q.X()
        m = q.measure()
        yield from context.connection.flush()
        yield "an event expression"
        return {"m": int(m)}


def three() -> StackNetworkConfig:
    cfg = create_two_node_network(["Alice", "Bob"], link_noise=0.2)
    cfg.stacks.append(StackConfig.perfect_generic_config("Idle"))
    return cfg


def test_results_per_stack_in_config_order() -> None:
    f = 1 - 0.2 * 3 / 4
    alice, bob, idle = run(three(), {"Bob": Bell("Alice", False), "Alice": Bell("Bob", True)},
                           num_times=4)  # fmt: skip
    assert len(alice) == len(bob) == 4 and idle == []
    phi = np.array([1, 0, 0, 1]) / np.sqrt(2)
    for a, b in zip(alice, bob, strict=True):
        assert a["m"] == b["m"] or f < 1  # Werner pairs can disagree
        assert isinstance(a["state"], np.ndarray) and a["state"].shape == (4, 4)
        assert abs((phi @ a["state"] @ phi).real - f) < 1e-9


def test_a_failing_program_raises_its_error_and_stops_the_other() -> None:
    with pytest.raises(ZeroDivisionError, match="the program's own bug"):
        run(three(), {"Alice": Bell("Bob", True), "Bob": Bell("Alice", False, fail=True)})


def test_netsquid_events_are_refused_by_name() -> None:
    with pytest.raises(TypeError, match="yielded 'an event expression'"):
        run(three(), {"Idle": Local()})


def test_stacks_and_qubits_are_checked() -> None:
    with pytest.raises(ConfigError, match="programs for 'Eve', which the config has no stack for"):
        run(three(), {"Eve": Local()})
    cfg = three()
    cfg.stacks[2].qdevice_cfg.num_qubits = 1
    with pytest.raises(ConfigError, match="max_qubits = 2; the stack's device has 1"):
        run(cfg, {"Idle": Local()})


SCRIPT = """
import sys
import pydynaa
import squidasm.run.stack.run as r
from squidasm.sim.stack.program import Program
from squidasm.util.routines import teleport_send
from squidasm.sim.stack.csocket import ClassicalSocket
assert r.run.__module__ == "qnodeos.squidasm.run", r.run.__module__
print("args", sys.argv[1:])
try:
    import netsquid
except ImportError as exc:
    print("refused:", exc)
"""


def test_script_imports_squidasm_from_qnodeos(tmp_path: Path) -> None:
    (tmp_path / "run.py").write_text(SCRIPT)
    out = subprocess.run(
        [sys.executable, "-m", "qnodeos", "squidasm", str(tmp_path), "x", "--y"],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr[-2000:]
    assert "args ['x', '--y']" in out.stdout
    assert "refused: netsquid is NetSquid's" in out.stdout
    (tmp_path / "run_other.py").write_text("")
    out = subprocess.run(
        [sys.executable, "-m", "qnodeos", "squidasm", str(tmp_path)],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert out.returncode == 2 and "which script?" in out.stderr


def test_heralded_link_pairs_have_the_visibility_fidelity() -> None:
    """A double-click link of visibility V gives pairs of fidelity (1 + V)/2 (read
    exactly with full_state=True), on NV stacks."""
    from qnodeos.squidasm.config import HeraldedLinkConfig, LinkConfig, NVQDeviceConfig

    nv = NVQDeviceConfig.perfect_config()
    nv.electron_T1 = nv.electron_T2 = nv.carbon_T1 = nv.carbon_T2 = 0
    cfg = StackNetworkConfig(
        stacks=[StackConfig(name=n, qdevice_typ="nv", qdevice_cfg=nv) for n in ("A", "B")],
        links=[LinkConfig(stack1="A", stack2="B", typ="heralded",
                          cfg=HeraldedLinkConfig(length=2.0, visibility=0.9))],
    )  # fmt: skip
    alice, _ = run(cfg, {"A": Bell("B", True), "B": Bell("A", False)}, num_times=3)
    phi = np.array([1, 0, 0, 1]) / np.sqrt(2)
    for a in alice:
        assert abs((phi @ a["state"] @ phi).real - (1 + 0.9) / 2) < 1e-9
