"""Local single-qubit gate tomography: the multitasking experiment's local app. It
prepares |0>, applies a gate, and measures the output in X, Y or Z, over and over in
small blocks, then reports the fidelity of the reconstructed output state with the
ideal one. It needs no other node: on a node also serving a delegated computation it
fills the device time the computation leaves idle (waiting for pairs and messages).

    [[apps]]
    node = "server"
    module = "qnodeos.apps.gate_tomography"
    args = { me = "tomo-1", gate = "h", seconds = 5.0 }

Ideal outputs: h: |+>, Bloch (1, 0, 0); x: |1>, (0, 0, -1); rx90: (0, -1, 0); i: |0>,
(0, 0, 1). Fidelity = (1 + r . n)/2 for measured Bloch vector r, ideal n.
"""

from __future__ import annotations

import math
from typing import Any

import trio

from qnodeos import sdk

IDEAL = {"h": (1.0, 0.0, 0.0), "x": (0.0, 0.0, -1.0), "rx90": (0.0, -1.0, 0.0), "i": (0, 0, 1)}


async def main(
    node: str, *, me: str | None = None, gate: str = "h", seconds: float = 5.0, per_block: int = 1
) -> dict[str, Any]:
    if gate not in IDEAL:
        raise ValueError(f"gate {gate!r}: use one of {', '.join(IDEAL)}")
    ones = {b: 0 for b in "XYZ"}
    shots = {b: 0 for b in "XYZ"}
    async with sdk.connect(node, app=me, qubits=1) as conn:
        end = trio.current_time() + seconds
        i = 0
        while trio.current_time() < end:
            conn.progress(round(seconds - (end - trio.current_time()), 1), seconds, "s")
            basis = "XYZ"[i % 3]
            i += 1
            async with conn.block() as b:
                futs = []
                for _ in range(per_block):
                    q = b.qubit()
                    if gate == "h":
                        q.h()
                    elif gate == "x":
                        q.x()
                    elif gate == "rx90":
                        q.rx(math.pi / 2)
                    if basis == "X":
                        q.h()
                    elif basis == "Y":
                        q.rx(math.pi / 2)
                    futs.append(q.measure())
            ones[basis] += sum(f.value for f in futs)
            shots[basis] += per_block
        conn.progress(seconds, seconds, "s")
    bloch = [1 - 2 * ones[b] / shots[b] if shots[b] else 0.0 for b in "XYZ"]
    n = IDEAL[gate]
    fid = (1 + sum(r * x for r, x in zip(bloch, n, strict=True))) / 2
    err = (
        math.sqrt(
            sum(
                x * x * (1 - r * r) / max(shots[b], 1)
                for r, x, b in zip(bloch, n, "XYZ", strict=True)
            )
        )
        / 2
    )
    return {
        "gate": gate,
        "shots": sum(shots.values()),
        "fidelity": fid,
        "stderr": err,
        "bloch": bloch,
    }


def format_result(r: dict[str, Any]) -> str:
    return (
        f"gate tomography ({r['gate']}): fidelity {r['fidelity']:.3f} ± {r['stderr']:.3f} "
        f"over {r['shots']} shots"
    )
