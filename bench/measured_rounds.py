"""CPU per measure-directly ("M") pair in the quantum processes (no sockets, no kernel).

    python bench/measured_rounds.py [--pairs N] [--round R] [--repeat K] [--model M]
                                    [--reference]

Two quantum-process cores (``QDeviceServer``, generic devices of 3 qubits with gate
errors, T1/T2 and readout errors on) joined by an in-memory wire, as in the tests:
alice hosts the station, bob is the other end. Each round asks for R measured pairs
with bases drawn X/Z per pair at each end (two recipes and a plan, as the kernel sends
them). Prints CPU seconds (``time.process_time``) per pair for alice (station, her
halves, bob's halves computed and encoded) and bob (decoding, his halves), the median of
K runs. ``--reference``: the per-pair density-matrix path instead of the vectorised one.
"""

from __future__ import annotations

import argparse
import json
import math
import time

import numpy as np

from qnodeos.config.network import LinkConfig, NodeConfig
from qnodeos.hardware.params import generic
from qnodeos.hardware.specs import with_overrides
from qnodeos.lang import codec
from qnodeos.lang import messages as m
from qnodeos.netlink.models import MODELS, LinkModel
from qnodeos.qdevice import rounds
from qnodeos.qdevice.server import QDeviceServer, ToKernel, ToPeer

MODEL_ARGS: dict[str, dict[str, float]] = {
    "perfect": {},
    "depolarise": {"fidelity": 0.9, "p_success": 0.5},
    "single_click": {"alpha": 0.1, "eta": 0.3, "dark_count": 1e-3, "visibility": 0.95},
    "double_click": {"eta": 0.5, "visibility": 0.9},
}


def node(name: str, seed: int) -> NodeConfig:
    spec = with_overrides(
        generic(3),
        {
            "kinds": {
                "qubit": {
                    "t1_ns": 3.6e12,
                    "t2_ns": 5e8,
                    "gates": {g: {"error": 0.01} for g in ("rx", "ry", "rz", "h")},
                    "meas": {"p01": 0.05, "p10": 0.005},
                }
            }
        },
    )
    return NodeConfig(
        name=name, device=spec, speed=math.inf, seed=seed,
        app_endpoint="", qdevice_endpoint="", peer_endpoint="",
    )  # fmt: skip


class Pair:
    """Two quantum-process cores and the messages between them; CPU time per side."""

    def __init__(self, model: LinkModel, seed: int = 1) -> None:
        link = LinkConfig(nodes=("alice", "bob"), model=model, seed=seed)
        self.q = {
            n: QDeviceServer(node(n, seed + i), [link]) for i, n in enumerate(("alice", "bob"))
        }
        self.enc, self.dec = codec.to_device(), codec.from_device()
        self.cpu = {"alice": 0.0, "bob": 0.0}
        self.done: dict[str, list[m.EntangleDone]] = {"alice": [], "bob": []}
        self.seq = 0
        for n in self.q:
            self.send(n, m.Ping(seq=0))

    def run(self, at: str, first: list[object]) -> None:
        queue = [(at, o) for o in first]
        while queue:
            here, o = queue.pop(0)
            if isinstance(o, ToKernel):
                msg = self.dec.decode(o.frames[1])
                if isinstance(msg, m.EntangleDone):
                    self.done[here].append(msg)
            elif isinstance(o, ToPeer):
                start = time.process_time()
                outs = self.q[o.node].peer_message(o.data, 0.0, 0.0)
                self.cpu[o.node] += time.process_time() - start
                queue += [(o.node, x) for x in outs]

    def send(self, at: str, msg: m.ToDevice) -> None:
        start = time.process_time()
        outs = self.q[at].handle([b"k", self.enc.encode(msg)], 0.0, 0.0)
        self.cpu[at] += time.process_time() - start
        self.run(at, outs)

    def round(self, key: str, pairs: int, rng: np.random.Generator) -> None:
        # X: h then meas; Z: meas (what the kernel lowers for a generic device)
        recipes = [
            [[m.PhysOp("h", (0,)), m.PhysOp("meas", (0,))]] * 4,
            [[m.PhysOp("meas", (0,))]] * 4,
        ]
        for n in ("bob", "alice"):
            self.seq += 1
            self.send(
                n,
                m.Entangle(
                    seq=self.seq, peer="alice" if n == "bob" else "bob", key=key, qubits=[0],
                    max_attempts=1000 * pairs, expires_s=1e9, pairs=pairs, recipes=recipes,
                    plan=[int(x) for x in rng.integers(0, 2, pairs)],
                ),
            )  # fmt: skip


def once(model: str, total: int, per_round: int) -> tuple[float, float]:
    p = Pair(MODELS[model](cycle_ns=1000, **MODEL_ARGS[model]))
    rng = np.random.default_rng(5)
    made = 0
    i = 0
    while made < total:
        i += 1
        p.round(f"r{i}", min(per_round, total - made), rng)
        made += sum(len(d.pairs) for d in p.done["alice"][-1:])
    got = sum(len(d.pairs) for d in p.done["alice"])
    assert got == sum(len(d.pairs) for d in p.done["bob"]) == made
    return p.cpu["alice"] / got * 1e6, p.cpu["bob"] / got * 1e6


def main() -> None:
    a = argparse.ArgumentParser()
    a.add_argument("--pairs", type=int, default=20_000)
    a.add_argument("--round", type=int, default=4096)
    a.add_argument("--repeat", type=int, default=3)
    a.add_argument("--model", nargs="+", default=["perfect", "depolarise", "single_click"])
    a.add_argument("--reference", action="store_true", help="the per-pair path")
    a.add_argument("--json", action="store_true")
    args = a.parse_args()
    if args.reference:
        rounds.VECTORISED = False
    out: dict[str, float] = {}
    if not args.json:
        path = "reference (per pair)" if args.reference else "vectorised"
        print(f"CPU us per measured pair, {path}; median of {args.repeat} runs")
        print(f"{'model':>14} {'alice':>8} {'bob':>8} {'sum':>8}")
    for model in args.model:
        runs = sorted(once(model, args.pairs, args.round) for _ in range(args.repeat))
        al, bo = runs[len(runs) // 2]
        out[f"{model}_alice_us"], out[f"{model}_bob_us"] = al, bo
        if not args.json:
            print(f"{model:>14} {al:8.2f} {bo:8.2f} {al + bo:8.2f}", flush=True)
    if args.json:
        print(json.dumps(out))


if __name__ == "__main__":
    main()
