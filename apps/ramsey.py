"""Ramsey experiment: measure the T2 of the node's first qubit.

Each point is one block: a loop of ``shots`` rounds of init, H, wait t, H, measure,
run on the device as one subroutine. The probability of reading 0 is affine in the
coherence e^(-t/T2), with offsets from init, gate and readout errors. A point at
t = 6*T2 measures the dephased level P_inf (to within e^-6 = 0.25% of the contrast), so

    (P(t) - P_inf) / (P(0) - P_inf) = e^(-t/T2)

whatever those errors are, and T2 is fitted from the ratios.
Run alone against a running node: ``python -m apps.ramsey`` (node alice).
"""

from __future__ import annotations

import math
from typing import Any

import trio

from qnodeos import sdk


async def main(
    node: str, *, shots: int = 200, waits_ms: list[float] | None = None, t2_ms: float | None = None
) -> dict[str, Any]:
    waits = list(waits_ms or [0, 100, 250, 500, 1000])
    far = 6 * (t2_ms or max(waits) or 1.0)
    points = []
    async with sdk.connect(node, app="ramsey", qubits=1) as conn:
        for wait in [*waits, far]:
            async with conn.block() as b:
                with b.loop(shots):
                    q = b.qubit()
                    q.h()
                    b.wait(wait * 1e-3)
                    q.h()
                    m = q.measure()
            p0 = 1 - sum(m.value) / shots
            points.append(
                {"wait_ms": wait, "p0": p0, "stderr": math.sqrt(max(p0 * (1 - p0), 1e-12) / shots)}
            )
    p_inf = points.pop()["p0"]
    p_zero = points[0]["p0"]
    num = den = 0.0
    for pt in points:
        ratio = (pt["p0"] - p_inf) / (p_zero - p_inf) if p_zero != p_inf else float("nan")
        pt["contrast"] = ratio
        if t2_ms:
            pt["expected"] = math.exp(-pt["wait_ms"] / t2_ms)
        if pt["wait_ms"] > 0 and 0 < ratio < 1:
            # least squares of -ln(ratio) = t / T2 through the origin, in 1/T2
            num += pt["wait_ms"] * -math.log(ratio)
            den += pt["wait_ms"] ** 2
    return {
        "device": conn.device,
        "shots": shots,
        "p_inf": p_inf,
        "points": points,
        "fitted_t2_ms": den / num if num > 0 else None,
        "configured_t2_ms": t2_ms,
    }


def format_result(r: dict[str, Any]) -> str:
    lines = [
        f"Ramsey on the {r['device']} device, {r['shots']} shots per point "
        f"(dephased level P_inf = {r['p_inf']:.3f})",
        f"{'wait (ms)':>10} {'P(0)':>14} {'contrast':>9} {'e^(-t/T2)':>10}",
    ]
    for p in r["points"]:
        exp = f"{p['expected']:10.3f}" if "expected" in p else " " * 10
        lines.append(
            f"{p['wait_ms']:>10g} {p['p0']:8.3f} ±{p['stderr']:.3f} {p['contrast']:9.3f} {exp}"
        )
    fit = r["fitted_t2_ms"]
    conf = f" (configured T2 = {r['configured_t2_ms']:g} ms)" if r["configured_t2_ms"] else ""
    lines.append(f"fitted T2 = {fit:.0f} ms{conf}" if fit else "fitted T2: no decay seen")
    return "\n".join(lines)


if __name__ == "__main__":
    print(format_result(trio.run(main, "alice")))
