"""After a run: every node's timeline joined into one Chrome/Perfetto trace
(``timeline.json`` in the run directory: open it in ui.perfetto.dev or chrome://tracing)
and each node's device utilization (for results.json).

A node's quantum process recorded each batch of ops and each entanglement round it ran,
by request number and in device time; its classical process recorded what each request
number was for and every process-state change (``qnodeos.runtime.timeline``).

Utilization of a node's device counts only modelled device work: ops (gates, inits,
readouts, waits an app asked for) and entanglement attempts (``attempts`` x the link's
``cycle_ns``) with the ops run after each herald. ``elapsed_ns`` is device time from 0 to
the end of the last thing it did; ``busy_ns`` = ``local_blocks_ns`` (apps' batches) +
``entanglement_ns`` (rounds' work) + ``moves_ns`` (the node's moves of a qubit's state).
The device was also held, doing nothing, by ``overhead_ns`` of waits, by cause in
``waits_ns``: ``peer`` (a round waiting for the other end's attempt or the station's
answer), ``bin`` (a round waiting for its link's time bin, or through a short gap
between bins), ``dead`` (time in the link's bins a round kept without attempting: after
a herald, for the longer of the two ends' recipes where this end's own ops did not need
it; the end of a bin too short for one more attempt) and ``transfer`` (a batch waiting
for a qubit's state from another node's process: a simulator's wait, so its ops run as
if the state had been there; see ``qnodeos.qdevice.server``). ``idle_ns`` is the rest:
``busy_ns + overhead_ns + idle_ns = elapsed_ns`` (one thing at a time on a device).
``per_app`` is the block time of each app.
"""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path
from typing import Any

from qnodeos.config.network import NetworkConfig


def _rows(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def node_spans(
    run_dir: Path, node: str, device: list[dict[str, Any]] | None = None
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The node's device spans, each labelled with what it was for (``what``: block,
    round or move; ``app`` for blocks), and its process-state changes. ``device``: the
    rows of its device timeline, if read already."""
    if device is None:
        device = _rows(run_dir / f"timeline-{node}-device.jsonl")
    kernel = _rows(run_dir / f"timeline-{node}-kernel.jsonl")
    uses = {r["seq"]: r for r in kernel if r["kind"] == "use"}
    spans = []
    for r in device:
        if r["kind"] not in ("batch", "round"):
            continue
        use = uses.get(r["seq"], {})
        what = "round" if r["kind"] == "round" else use.get("what", "block")
        span = {**r, "what": what, "app": use.get("app", "")}
        if "block" in use:
            span["block"] = use["block"]  # the app's block id
        spans.append(span)
    states = [r for r in kernel if r["kind"] == "state"]
    return spans, states


WAITS = ("peer", "bin", "dead", "transfer")


def work_ns(span: dict[str, Any]) -> float:
    """The modelled device work of a span: a round's ``work_ns``; a batch's ops ran back
    to back, from its start to its end."""
    work = span.get("work_ns")
    return float(work) if work is not None else max(0.0, span["end"] - span["start"])


def utilization(spans: list[dict[str, Any]], until_ns: float | None = None) -> dict[str, Any]:
    """Device work by kind and waits by cause (ns of device time; see the module's
    docstring) over the node's elapsed device time, or over device time 0 to
    ``until_ns`` (a span running past it counts in proportion to its part before it)."""
    by_what = {"block": 0.0, "round": 0.0, "move": 0.0}
    waits = dict.fromkeys(WAITS, 0.0)
    per_app: dict[str, float] = {}
    elapsed = 0.0
    for s in spans:
        since, end, share = s.get("since", s["start"]), s["end"], 1.0
        if until_ns is not None:
            if since >= until_ns:
                continue
            if end > until_ns:
                share, end = (until_ns - since) / (end - since), until_ns
        elapsed = max(elapsed, end)
        d = work_ns(s) * share
        by_what[s["what"]] = by_what.get(s["what"], 0.0) + d
        if s["what"] == "block":
            per_app[s["app"]] = per_app.get(s["app"], 0.0) + d
        for why, t in s.get("waits", {}).items():
            waits[why] = waits.get(why, 0.0) + t * share
    busy = sum(by_what.values())
    overhead = sum(waits.values())
    return {
        "elapsed_ns": elapsed,
        "busy_ns": busy,
        "busy_fraction": busy / elapsed if elapsed > 0 else 0.0,
        "local_blocks_ns": by_what["block"],
        "entanglement_ns": by_what["round"],
        "moves_ns": by_what["move"],
        "overhead_ns": overhead,
        "waits_ns": waits,
        "idle_ns": max(0.0, elapsed - busy - overhead),
        "per_app": per_app,
    }


def records(run_dir: Path, nodes: list[str]) -> dict[str, int]:
    """Write ``blocks.csv`` (each block: node, app, block id, device time, latency from
    submission to its end, wall time of its end) and ``pairs.csv`` (each pair handed
    to an app: node, app, peer, entanglement sequence number, Bell index, fidelity
    estimate, attempts, herald time, kept or measured, basis and outcome) from the
    nodes' timelines; returns how many rows each got."""
    tables: dict[str, list[dict[str, Any]]] = {"block": [], "pair": []}
    for node in nodes:
        for r in _rows(run_dir / f"timeline-{node}-kernel.jsonl"):
            if r.get("kind") in tables:
                tables[r["kind"]].append(
                    {"node": node, **{k: v for k, v in r.items() if k != "kind"}}
                )
    counts = {}
    for kind, rows in tables.items():
        counts[f"{kind}s"] = len(rows)
        if not rows:
            continue
        cols = list(dict.fromkeys(k for r in rows for k in r))
        with (run_dir / f"{kind}s.csv").open("w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=cols)
            w.writeheader()
            w.writerows(rows)
    return counts


def merge(
    run_dir: Path, nodes: list[str], lags: dict[str, Any] | None = None
) -> dict[str, Any]:
    """Write ``timeline.json`` for the run; returns each node's utilization (empty if no
    node recorded a timeline). In real time a quantum process also recorded how late
    it acted against its device clock (``qdevice.lag``): per window, drawn as a counter
    track; the whole run's figures go into ``lags`` (node -> n, p50_us, p99_us,
    max_us)."""
    events: list[dict[str, Any]] = []
    util: dict[str, Any] = {}
    for pid, node in enumerate(nodes, start=1):
        device = _rows(run_dir / f"timeline-{node}-device.jsonl")
        spans, states = node_spans(run_dir, node, device)
        for r in device:
            if r["kind"] == "lag":
                window = {k: r[k] for k in ("p50_us", "p99_us", "max_us")}
                events.append(
                    {"name": "lag behind the device clock (us)", "ph": "C", "pid": pid,
                     "ts": r["device_ns"] / 1e3, "args": window}
                )  # fmt: skip
            elif r["kind"] == "lag_total" and lags is not None:
                lags[node] = {k: v for k, v in r.items() if k != "kind"}
        if not spans and not states:
            continue
        util[node] = utilization(spans)
        tids: dict[str, int] = {"entanglement": 1, "moves": 2}
        events.append(_meta(pid, 0, "process_name", f"node {node} (device time)"))
        for s in spans:
            track = {"round": "entanglement", "move": "moves"}.get(s["what"], f"app {s['app']}")
            tid = tids.setdefault(track, len(tids) + 1)
            args = {k: v for k, v in s.items() if k not in ("start", "end", "kind")}
            since = s.get("since", s["start"])
            if since < s["start"]:  # the device held for the round, before its attempts
                why = ", ".join(w for w in ("bin", "peer") if s["waits"][w])
                events.append(
                    {
                        "name": f"waiting: {why}",
                        "cat": "wait",
                        "ph": "X",
                        "ts": since / 1e3,
                        "dur": (s["start"] - since) / 1e3,
                        "pid": pid,
                        "tid": tid,
                        "args": s["waits"],
                    }
                )
            events.append(
                {
                    "name": s["what"] if s["what"] != "block" else f"block ({s['app']})",
                    "cat": s["what"],
                    "ph": "X",
                    "ts": s["start"] / 1e3,
                    "dur": max(0.0, s["end"] - s["start"]) / 1e3,
                    "pid": pid,
                    "tid": tid,
                    "args": args,
                }
            )
        for st in states:
            track = f"process {st['app']}"
            tid = tids.setdefault(track, len(tids) + 1)
            events.append(
                {
                    "name": st["state"] + (f" ({st['on']})" if st.get("on") else ""),
                    "cat": "state",
                    "ph": "i",
                    "s": "t",
                    "ts": st["device_ns"] / 1e3,
                    "pid": pid,
                    "tid": tid,
                }
            )
        events += [_meta(pid, tid, "thread_name", name) for name, tid in tids.items()]
    if events:
        (run_dir / "timeline.json").write_text(json.dumps({"traceEvents": events}))
    return util


def _meta(pid: int, tid: int, what: str, name: str) -> dict[str, Any]:
    return {"name": what, "ph": "M", "pid": pid, "tid": tid, "args": {"name": name}}


def summarize(run_dir: Path, nodes: list[str]) -> tuple[dict[str, Any], dict[str, int]]:
    """After a run: write its timeline, blocks.csv and pairs.csv; returns results.json's
    ``_nodes`` (each node's utilization, and in real time its ``lag`` behind the device
    clock; empty without a timeline) and the record counts."""
    lags: dict[str, Any] = {}
    util = merge(run_dir, nodes, lags)
    counts = records(run_dir, nodes)
    out: dict[str, Any] = {n: {"utilization": u} for n, u in util.items()}
    for n, lag in lags.items():
        out.setdefault(n, {})["lag"] = lag
    return out, counts


LAG_WARN_FRACTION = 0.01  # of the shortest coherence time in the network


def lag_warnings(cfg: NetworkConfig, nodes: dict[str, Any]) -> list[str]:
    """Nodes whose quantum process ran late against its device clock (p99 of its lag,
    times the node's speed: device time) by more than ``LAG_WARN_FRACTION`` of the
    shortest T1 or T2 of any qubit in the network: their results reflect the host's
    load as well as the devices. ``nodes``: results.json's ``_nodes``."""
    coherence = [
        (t, f"{'T1' if t == k.t1_ns else 'T2'} of {c.device.name} {k.name} qubits")
        for c in cfg.nodes.values()
        for k in c.device.kinds.values()
        for t in (k.t1_ns, k.t2_ns)
        if math.isfinite(t)
    ]
    if not coherence:
        return []
    shortest, what = min(coherence)
    out = []
    for name, info in nodes.items():
        lag = info.get("lag")
        speed = cfg.nodes[name].speed if name in cfg.nodes else math.inf
        if not lag or not math.isfinite(speed):
            continue
        late_ns = lag["p99_us"] * 1e3 * speed
        if late_ns > LAG_WARN_FRACTION * shortest:
            out.append(
                f"node {name}'s quantum process ran up to {lag['max_us'] / 1e3:.1f} ms late "
                f"against its device clock (p99 {lag['p99_us'] / 1e3:.1f} ms: "
                f"{late_ns / shortest:.1%} of the shortest coherence time, {what}: "
                f"{shortest / 1e6:g} ms). The host was too busy for real time: the results "
                f"reflect its load as well as the devices. Run on a quieter machine, or "
                f"lower the nodes' speed"
            )
    return out
