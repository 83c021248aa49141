"""Ramsey experiment: measure the T2 of the node's first qubit.

Each point is one block: a loop of ``shots`` rounds of init, H, wait t, H, measure,
run on the device as one subroutine. The probability of reading 0 is affine in the
coherence e^(-t/T2), with offsets from init, gate and readout errors. A point at
t = 6*T2 measures the dephased level P_inf (to within e^-6 = 0.25% of the contrast), so

    (P(t) - P_inf) / (P(0) - P_inf) = e^(-t/T2)

whatever those errors are, and T2 is fitted from the ratios (weighted least squares of
-ln(ratio) = t/T2, weights from the binomial errors; the error of T2 is 1 sigma).
Run alone against a running node: ``python -m qnodeos.apps.ramsey`` (node alice).
"""

from __future__ import annotations

import math
from typing import Any

import trio

from qnodeos import sdk

BLOCK_S = 20.0  # device time per block at most


async def main(
    node: str, *, shots: int = 200, waits_ms: list[float] | None = None, t2_ms: float | None = None
) -> dict[str, Any]:
    waits = list(waits_ms or [0, 100, 250, 500, 1000])
    far = 6 * (t2_ms or max(waits) or 1.0)
    points: list[dict[str, float]] = []
    async with sdk.connect(node, qubits=1) as conn:
        for wait in [*waits, far]:
            ones = 0
            # Blocks of at most ~20 s of device time: a node gives one block at most
            # max_block_s (60 s by default), and shorter blocks let other apps in.
            per_block = max(1, int(BLOCK_S / (wait * 1e-3 + 0.005)))
            for start in range(0, shots, per_block):
                n = min(per_block, shots - start)
                async with conn.block() as b:
                    with b.loop(n):
                        q = b.qubit()
                        q.h()
                        b.wait(wait * 1e-3)
                        q.h()
                        m = q.measure()
                ones += sum(m.value)
                conn.progress(len(points) * shots + start + n, (len(waits) + 1) * shots, "shots")
            p0 = 1 - ones / shots
            points.append(
                {"wait_ms": wait, "p0": p0, "stderr": math.sqrt(max(p0 * (1 - p0), 1e-12) / shots)}
            )
    far_pt = points.pop()
    p_inf, s_inf = far_pt["p0"], far_pt["stderr"]
    p_zero, s_zero = points[0]["p0"], points[0]["stderr"]
    span = p_zero - p_inf
    num = den = 0.0
    for pt in points:
        ratio = (pt["p0"] - p_inf) / span if span else float("nan")
        pt["contrast"] = ratio
        if t2_ms:
            pt["expected"] = math.exp(-pt["wait_ms"] / t2_ms)
        if pt["wait_ms"] > 0 and 0 < ratio < 1:
            # y = -ln(ratio) = t / T2. Weighted least squares through the origin in
            # 1/T2, each point weighted by 1/var(y), var(y) = var(ratio) / ratio^2.
            var_r = pt["stderr"] ** 2 + (1 - ratio) ** 2 * s_inf**2 + ratio**2 * s_zero**2
            w = ratio**2 / (var_r / span**2)
            num += w * pt["wait_ms"] * -math.log(ratio)
            den += w * pt["wait_ms"] ** 2
    rate = num / den if den else 0.0
    fit = 1 / rate if rate > 0 else None
    fit_err = (1 / math.sqrt(den)) / rate**2 if fit else None
    return {
        "device": conn.device,
        "shots": shots,
        "p_inf": p_inf,
        "points": points,
        "fitted_t2_ms": fit,
        "fitted_t2_err_ms": fit_err,
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
    fit, err = r["fitted_t2_ms"], r["fitted_t2_err_ms"]
    conf = f" (configured T2 = {r['configured_t2_ms']:g} ms)" if r["configured_t2_ms"] else ""
    lines.append(f"fitted T2 = {fit:.0f} ± {err:.0f} ms{conf}" if fit else "fitted T2: no decay")
    return "\n".join(lines)


if __name__ == "__main__":
    print(format_result(trio.run(main, "alice")))
