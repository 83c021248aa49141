"""Utilization counts only modelled device work (issue 20): ``results.json``'s
utilization of each node equals the work computed here independently, from the network
file (the link's cycle), the device's parameter table (op durations) and what the
timelines say was done (attempts per round, ops per batch, pairs and their bases),
within 1 %, at both ends of a link. Waiting (for the other end, a time bin, a state in
another process) is reported apart, never as work.

Deterministic mode at speed 1, with a classical delay on the link so the ends really
wait for each other; ``tests/integration/test_utilization.py`` runs the same in real
processes."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import trio

import qnodeos.sdk.client as client
from qnodeos.config.network import NetworkConfig
from qnodeos.hardware.specs import DeviceSpec
from qnodeos.runtime.timeline import ENV
from qnodeos.testbed.local import local_network
from qnodeos.testbed.trace import summarize, utilization
from tests.conftest import network
from tests.integration import util_app

NET = """
[nodes.alice]
device = "generic"
qubits = 3
speed = 1.0
seed = 1
[nodes.bob]
device = "generic"
qubits = 3
speed = 1.0
seed = 2
[[links]]
nodes = ["alice", "bob"]
model = "depolarise"
fidelity = 0.9
p_success = 0.05
cycle_ns = 2000
delay_s = 0.0005
seed = 9
{schedule}
"""

CORRECTION = {0: (), 1: ("z",), 2: ("x",), 3: ("y",)}  # Bell index -> Pauli to Phi+
ROTATION = {"Z": (), "X": ("h",)}  # into the basis, before the readout


def _rows(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def op_ns(spec: DeviceSpec, name: str) -> float:
    """An op's duration on a one-kind device, from its parameter table."""
    (kind,) = spec.kinds.values()
    if name == "init":
        return kind.init.duration_ns
    if name == "meas":
        assert kind.meas is not None
        return kind.meas.duration_ns
    if name in spec.two_qubit:
        return spec.two_qubit[name].spec.duration_ns
    return kind.gates[name].duration_ns


def modelled(run_dir: Path, cfg: NetworkConfig, node: str) -> dict[str, float]:
    """The device work of ``node`` in a run: attempts x cycle for its rounds, plus the
    ops after each pair's herald (a rotation and a readout for a measured pair; the
    Pauli correction at the link's first node for a kept one), and its blocks' ops."""
    spec = cfg.nodes[node].device
    (link,) = cfg.links
    device = _rows(run_dir / f"timeline-{node}-device.jsonl")
    kernel = _rows(run_dir / f"timeline-{node}-kernel.jsonl")
    rounds = sum(r["attempts"] for r in device if r["kind"] == "round") * link.model.cycle_ns
    recipes = 0.0
    for p in (r for r in kernel if r["kind"] == "pair"):
        if p["kept"]:
            ops: tuple[str, ...] = CORRECTION[p["bell"]] if link.nodes[0] == node else ()
        else:
            ops = (*ROTATION[p["basis"]], "meas")
        recipes += sum(op_ns(spec, o) for o in ops)
    blocks = {r["seq"] for r in kernel if r["kind"] == "use" and r["what"] == "block"}
    local = sum(
        n * op_ns(spec, op)
        for r in device
        if r["kind"] == "batch" and r["seq"] in blocks
        for op, n in r["ops"].items()
    )
    return {"entanglement_ns": rounds + recipes, "local_blocks_ns": local}


def check(util: dict[str, Any], expect: dict[str, float], node: str) -> None:
    """``util`` (a node's utilization in results.json) is the modelled work ``expect``
    within 1 %, and its waits and idle time make up the rest of its elapsed time."""
    for key, want in expect.items():
        assert want > 0 and abs(util[key] - want) <= 0.01 * want, (node, key, util[key], want)
    assert abs(util["busy_ns"] - sum(expect.values())) <= 0.01 * sum(expect.values())
    assert util["overhead_ns"] == pytest.approx(sum(util["waits_ns"].values()))
    total = util["busy_ns"] + util["overhead_ns"] + util["idle_ns"]
    assert total == pytest.approx(util["elapsed_ns"]), (node, util)


async def _run(cfg: NetworkConfig, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv(ENV, str(tmp_path))
    async with local_network(cfg) as eps:
        monkeypatch.setattr(client, "resolve_endpoint", lambda node, _n, _e: eps[node])
        async with trio.open_nursery() as nursery:
            for node, peer_node, role, me, peer in (
                ("alice", "bob", "create", "a", "b"),
                ("bob", "alice", "recv", "b", "a"),
            ):
                nursery.start_soon(
                    lambda *a: util_app.main(
                        a[0], role=a[1], me=a[2], peer_node=a[3], peer=a[4], kept=8
                    ),
                    node, role, me, peer_node, peer,
                )  # fmt: skip


async def test_utilization_is_the_modelled_work_at_both_ends_of_a_link(
    autojump_clock: object, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """alice hosts the station; bob's rounds wait for her attempts (0.5 ms each way),
    and bob's blocks on kept pairs wait for the pair's state to come from alice's
    process. Before: bob's entanglement time was that of alice plus its waits, and his
    blocks' time included the state's journey."""
    cfg = network(NET.format(schedule=""))
    await _run(cfg, monkeypatch, tmp_path)
    nodes, _ = summarize(tmp_path, ["alice", "bob"])
    for node in ("alice", "bob"):
        check(nodes[node]["utilization"], modelled(tmp_path, cfg, node), node)
    bob = nodes["bob"]["utilization"]["waits_ns"]
    assert bob["transfer"] > 0 and bob["peer"] > 0, bob  # there were waits to leave out


async def test_rounds_waiting_for_their_time_bin_are_not_busy(
    autojump_clock: object, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """The link owns 1 ms of every 4: rounds wait for it (the wait is reported as
    ``waits_ns.bin``), and the devices' busy time is still the modelled work."""
    sched = "schedule = { bin_ns = 1000000, period = 4, bins = [2] }"
    cfg = network(NET.format(schedule=sched))
    await _run(cfg, monkeypatch, tmp_path)
    nodes, _ = summarize(tmp_path, ["alice", "bob"])
    for node in ("alice", "bob"):
        util = nodes[node]["utilization"]
        check(util, modelled(tmp_path, cfg, node), node)
        assert util["waits_ns"]["bin"] > util["entanglement_ns"], util  # 3/4 of the time


def test_utilization_sums_work_and_waits_and_cuts_spans_in_proportion() -> None:
    """Rows as the timelines write them (a batch, a round with its waits, a legacy round
    row without them): work and waits by kind, the rest idle; ``until_ns`` counts a
    span running past it in proportion to its part before it."""
    spans = [
        {"what": "block", "app": "x", "start": 0, "end": 100, "waits": {"transfer": 50}},
        {
            "what": "round",
            "app": "",
            "since": 200,
            "start": 300,
            "end": 500,
            "work_ns": 150,
            "waits": {"bin": 60, "peer": 40, "dead": 50},
        },
        {"what": "round", "app": "", "start": 600, "end": 700},
    ]
    u = utilization(spans)
    assert (u["local_blocks_ns"], u["entanglement_ns"], u["busy_ns"]) == (100, 250, 350)
    assert u["waits_ns"] == {"peer": 40, "bin": 60, "dead": 50, "transfer": 50}
    assert (u["overhead_ns"], u["elapsed_ns"], u["idle_ns"]) == (200, 700, 150)
    half = utilization(spans, until_ns=350)  # the round from 200 to 500: half of it
    assert (half["entanglement_ns"], half["waits_ns"]["bin"], half["elapsed_ns"]) == (75, 30, 350)
