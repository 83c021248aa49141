"""Start-up and scale of whole networks run by ``qnodeos run``, as printed tables.

    python bench/scale.py [--quick] [--nodes 2,8,32,64] [--pairs 100] [--blocks 300]
    python bench/scale.py --stream [--nodes 64] [--pairs 2000]

1. Chains of N nodes (generic devices, perfect links, speed inf), an app at each end of
   every link taking ``--pairs`` measure-directly pairs (10 per request). For each N:
   the time from ``qnodeos run`` to every node up, to the first pair on every link, and
   to exit; the CPU time of all processes of the run; the aggregate pairs/s over all
   links (pairs / (last pair - first app connected)); and memory per node (classical +
   quantum process, at their largest during the run): RSS, which counts pages shared
   with the forking parent in full, and PSS, which splits them among the sharers.
2. One node, 1, 4 and 16 apps each running ``--blocks`` one-gate blocks (allocate, X,
   measure): aggregate blocks/s.

``--stream``: only chains whose every link streams ``--pairs`` pairs (default 2,000) at
once, counting failed apps (a busy machine must make the run slower, not fail it), and
the CPU per pair of all processes, start-up excluded: each chain also runs with half the
pairs, and the CPU difference is divided by the pairs' difference (both ends of a link
count one pair); then the same per pair for each kind of process (quantum, classical,
apps; sampled from /proc every 0.05 s, so the rest is the launcher and what a
sample missed), and per pair each kind's context switches, system calls and time
waiting for a core (all threads; sampled ~0.3 s apart). ``--busy K``: K spinning
processes beside; ``--beside N``: an N-node chain streaming beside (a small chain
measured under a big one's load; the half/full difference needs the load to hold
still between the two runs). ``--pairs`` may give one count per size.

It prints numbers; it is not a test. ``--quick`` runs 2 and 8 nodes and fewer pairs
and blocks (about half a minute). The machine is shared: compare runs made together.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import resource
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent


def chain(n: int, pairs: int) -> str:
    out = [f'name = "chain{n}"']
    for i in range(n):
        out += [f"[nodes.n{i}]", 'device = "generic"', "qubits = 2", "speed = inf"]
    for i in range(n - 1):
        out += ["[[links]]", f'nodes = ["n{i}", "n{i + 1}"]', 'model = "perfect"']
        out += ["cycle_ns = 1000"]
        for a, b, role in ((i, i + 1, "create"), (i + 1, i, "recv")):
            args = f'role = "{role}", me = "n{a}-n{b}", peer_node = "n{b}", peer = "n{b}-n{a}"'
            out += ["[[apps]]", f'node = "n{a}"', 'module = "scale_app"']
            out += [f"args = {{ {args}, pairs = {pairs} }}"]
    return "\n".join(out) + "\n"


def one_node(apps: int, blocks: int) -> str:
    out = ['name = "blocks"', "[nodes.n0]", 'device = "generic"', "qubits = 16", "speed = inf"]
    for i in range(apps):
        out += ["[[apps]]", 'node = "n0"', 'module = "scale_app"']
        out += [f'args = {{ role = "blocks", me = "b{i}", blocks = {blocks} }}']
    return "\n".join(out) + "\n"


class Memory:
    """Samples the run's node and app processes (command lines naming the network file
    or the run folder) every 0.05 s (a 2-node run lives ~0.1 s): keeps each node
    process's largest RSS and PSS (kB), and every process's CPU time (utime + stime,
    clock ticks) as last seen, by kind (``KINDS``)."""

    KINDS = {b" qdevice ": "quantum", b" node ": "classical", b"app_runner": "apps"}
    # what ``sched`` keeps per process, summed over its threads (zmq's I/O thread too)
    SCHED = ("voluntary", "involuntary", "syscalls", "runq_ms")

    def __init__(self, net: Path, run_dir: Path) -> None:
        self.marks = (str(net).encode(), str(run_dir).encode())
        self.peak: dict[int, tuple[int, int]] = {}
        self.ticks: dict[int, tuple[str, int]] = {}
        self.sched: dict[int, tuple[str, tuple[float, ...]]] = {}
        self._kind: dict[int, str | None] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> Memory:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()

    def kind(self, d: Path) -> str | None:
        """The kind of process ``d`` (a /proc folder), None if not the run's."""
        pid = int(d.name)
        if pid in self._kind:
            return self._kind[pid]
        cmd = (d / "cmdline").read_bytes().replace(b"\0", b" ")
        if not any(m in cmd for m in self.marks):
            self._kind[pid] = None  # not the run's: never looked at again
            return None
        for key, kind in self.KINDS.items():
            if key in cmd:
                self._kind[pid] = kind
                return kind
        return None  # the launcher, or a child not yet showing its own title

    @staticmethod
    def threads(d: Path) -> tuple[float, ...]:
        """Process ``d``'s context switches (voluntary: it waited; involuntary: it was
        preempted, with work left), read and write system calls (/proc's io: every
        thread) and time spent runnable but waiting for a core (ms), summed over its
        threads (``SCHED``)."""
        vol = invol = wait_ns = 0
        for t in (d / "task").iterdir():
            try:
                for line in (t / "status").read_text().splitlines()[-2:]:
                    if line.startswith("voluntary_ctxt_switches:"):
                        vol += int(line.split()[1])
                    elif line.startswith("nonvoluntary_ctxt_switches:"):
                        invol += int(line.split()[1])
                wait_ns += int((t / "schedstat").read_text().split()[1])
            except (OSError, ValueError, IndexError):
                continue  # a thread that ended meanwhile
        io = dict(line.split(": ") for line in (d / "io").read_text().splitlines())
        return (vol, invol, int(io["syscr"]) + int(io["syscw"]), wait_ns / 1e6)

    def _run(self) -> None:
        turn = 0
        while not self._stop.wait(0.05):
            turn += 1
            for d in Path("/proc").iterdir():
                if not d.name.isdigit():
                    continue
                try:
                    kind = self.kind(d)
                    if kind is None:
                        continue
                    # after the command, whose name may hold spaces: fields 14, 15
                    stat = (d / "stat").read_text().rsplit(")", 1)[1].split()
                    self.ticks[int(d.name)] = (kind, int(stat[11]) + int(stat[12]))
                    if turn % 6 == 0 or int(d.name) not in self.sched:  # ~0.3 s: dearer
                        self.sched[int(d.name)] = (kind, self.threads(d))
                    if kind == "apps":
                        continue
                    rss = pss = 0
                    for line in (d / "smaps_rollup").read_text().splitlines():
                        if line.startswith("Rss:"):
                            rss = int(line.split()[1])
                        elif line.startswith("Pss:"):
                            pss = int(line.split()[1])
                except (OSError, ValueError, IndexError):
                    continue
                old = self.peak.get(int(d.name), (0, 0))
                self.peak[int(d.name)] = (max(old[0], rss), max(old[1], pss))

    def sched_by_kind(self) -> dict[str, tuple[float, ...]]:
        """``SCHED`` summed over each kind of process, as last sampled (~0.3 s apart)."""
        out = {k: (0.0,) * len(self.SCHED) for k in self.KINDS.values()}
        for kind, vals in self.sched.values():
            out[kind] = tuple(a + b for a, b in zip(out[kind], vals, strict=True))
        return out

    def per_node_mib(self, nodes: int) -> tuple[float, float]:
        rss = sum(r for r, _ in self.peak.values()) / 1024 / nodes
        pss = sum(p for _, p in self.peak.values()) / 1024 / nodes
        return rss, pss

    def cpu_by_kind(self) -> dict[str, float]:
        """CPU seconds of each kind of process, as last sampled (a process's last
        0.05 s before it exits can be missed)."""
        hz = os.sysconf("SC_CLK_TCK")
        out = dict.fromkeys(self.KINDS.values(), 0.0)
        for kind, ticks in self.ticks.values():
            out[kind] += ticks / hz
        return out


def run(text: str, d: Path, name: str, keep_going: bool = False) -> dict[str, Any]:
    """``qnodeos run`` one network file; times (s from start), CPU s, the apps' results.
    ``keep_going``: a run in which apps failed is measured too (``failed`` counts them)."""
    net = d / f"{name}.toml"
    net.write_text(text)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(HERE), str(HERE.parent)])}
    cpu0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.time()
    up = float("nan")
    with Memory(net, d / name) as mem:
        proc = subprocess.Popen(
            [sys.executable, "-m", "qnodeos", "run", str(net), "--run-dir", str(d / name)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
            cwd=HERE.parent,
        )
        assert proc.stdout is not None
        for line in proc.stdout:
            if "node(s) up" in line:
                up = time.time() - t0
        proc.wait()
    end = time.time() - t0
    cpu1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    assert proc.stderr is not None
    results = json.loads((d / name / "results.json").read_text())
    failed = [k for k, r in results.items() if not k.startswith("_") and "error" in r]
    if proc.returncode != 0 and not (keep_going and failed):
        raise SystemExit(f"{name}: qnodeos run failed: {proc.stderr.read()[-2000:]}")
    res = [r["result"] for k, r in results.items() if not k.startswith("_") and "result" in r]
    nodes = text.count("[nodes.")
    rss, pss = mem.per_node_mib(nodes)
    return {
        "up": up,
        "first": max((r["first"] for r in res), default=math.nan) - t0,
        "connected": min((r["connected"] for r in res), default=math.nan) - t0,
        "last": max((r["last"] for r in res), default=math.nan) - t0,
        "exit": end,
        "cpu": (cpu1.ru_utime + cpu1.ru_stime) - (cpu0.ru_utime + cpu0.ru_stime),
        "done": sum(r["done"] for r in res),
        "rss": rss,
        "pss": pss,
        "failed": len(failed),
        "error": str(results[failed[0]]["error"])[:300] if failed else "",
        "apps": len(results) - sum(k.startswith("_") for k in results),
        **{f"cpu_{k}": v for k, v in mem.cpu_by_kind().items()},
        **{f"sched_{k}": v for k, v in mem.sched_by_kind().items()},
        "load": os.getloadavg()[0],
    }


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--quick", action="store_true", help="2 and 8 nodes, fewer pairs/blocks")
    p.add_argument("--nodes", help="comma-separated chain sizes (default 2,8,32,64)")
    p.add_argument(
        "--pairs",
        help="pairs per link (default 100; quick 20); --stream: one, or one per size "
        "(default 2000)",
    )
    p.add_argument("--blocks", type=int, help="blocks per app (default 300; quick 100)")
    p.add_argument(
        "--stream",
        action="store_true",
        help="only the streaming check: every link of the chains streams --pairs pairs "
        "(default 2,000) at once; counts failed apps instead of stopping at the first",
    )
    p.add_argument("--busy", type=int, default=0, help="(stream) spinning processes beside")
    p.add_argument(
        "--beside",
        type=int,
        default=0,
        help="(stream) an N-node chain streaming beside the measured ones (equal load)",
    )
    a = p.parse_args()
    if a.stream:
        sizes = [int(x) for x in (a.nodes or "64").split(",")]
        many = [int(x) for x in (a.pairs or "2000").split(",")]
        stream(sizes, many * len(sizes) if len(many) == 1 else many, a.busy, a.beside)
        return
    sizes = [int(x) for x in (a.nodes or ("2,8" if a.quick else "2,8,32,64")).split(",")]
    pairs = int(a.pairs or (20 if a.quick else 100))
    blocks = a.blocks or (100 if a.quick else 300)
    print(f"{os.cpu_count()} cores; load average {os.getloadavg()[0]:.1f} at start")
    with tempfile.TemporaryDirectory(prefix="qnscale-") as tmp:
        d = Path(tmp)
        print(f"\nChains: perfect links, speed inf, {pairs} M pairs per link (10 per request)")
        head = (
            f"{'nodes':>5} {'up s':>6} {'1st pair s':>10} {'exit s':>7} {'CPU s':>6} "
            f"{'pairs/s':>8} {'RSS MiB/node':>12} {'PSS MiB/node':>12}"
        )
        print(head)
        for n in sizes:
            r = run(chain(n, pairs), d, f"chain{n}")
            rate = r["done"] / 2 / (r["last"] - r["connected"])  # each pair seen at both ends
            print(
                f"{n:>5} {r['up']:>6.2f} {r['first']:>10.2f} {r['exit']:>7.2f} {r['cpu']:>6.1f} "
                f"{rate:>8.0f} {r['rss']:>12.1f} {r['pss']:>12.1f}",
                flush=True,
            )
        print(f"\nOne node, one-gate blocks (allocate, X, measure), {blocks} per app")
        print(f"{'apps':>5} {'blocks/s':>9} {'exit s':>7}")
        for k in (1, 4, 16):
            r = run(one_node(k, blocks), d, f"blocks{k}")
            rate = r["done"] / (r["last"] - r["connected"])
            print(f"{k:>5} {rate:>9.0f} {r['exit']:>7.2f}", flush=True)


class Beside:
    """What runs beside the measured chains, so that they are measured under a known
    load: ``busy`` processes spinning, and an ``nodes``-node chain streaming (its own
    run folder; not counted in the measured runs' CPU), restarted whenever it ends."""

    def __init__(self, tmp: Path, busy: int, nodes: int) -> None:
        self.tmp, self.busy, self.nodes = tmp, busy, nodes
        self.procs: list[subprocess.Popen[bytes]] = []
        self.chain: subprocess.Popen[bytes] | None = None
        self.chain_runs = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._keep_chain, daemon=True)

    def __enter__(self) -> Beside:
        spin = [sys.executable, "-c", "while True: pass"]
        self.procs = [subprocess.Popen(spin) for _ in range(self.busy)]
        if self.nodes:
            self._started = threading.Event()
            self._thread.start()
            self._started.wait()
            time.sleep(5.0)  # into its streaming, past the start-up
        return self

    def _keep_chain(self) -> None:
        net = self.tmp / f"beside{self.nodes}.toml"
        net.write_text(chain(self.nodes, 1_000_000))
        env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(HERE), str(HERE.parent)])}
        while not self._stop.is_set():
            self.chain_runs += 1
            run_dir = self.tmp / f"beside{self.nodes}-{self.chain_runs}"
            cmd = [sys.executable, "-m", "qnodeos", "run", str(net), "--run-dir", str(run_dir)]
            self.chain = subprocess.Popen(
                cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env, cwd=HERE.parent
            )
            assert self.chain.stdout is not None
            for line in self.chain.stdout:
                if b"node(s) up" in line:
                    self._started.set()
            self.chain.wait()
            self._started.set()

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        if self.chain is not None and self.chain.poll() is None:
            self.chain.send_signal(2)  # SIGINT: the launcher stops every process of it
            try:
                self.chain.wait(30)
            except subprocess.TimeoutExpired:
                self.chain.kill()
        if self.nodes:
            self._thread.join()
        for proc in self.procs:
            proc.kill()
            proc.wait()

    def __str__(self) -> str:
        what = [f"{self.busy} busy loops"] if self.busy else []
        what += [f"a {self.nodes}-node chain streaming"] if self.nodes else []
        return " and ".join(what) or "nothing"


def stream(sizes: list[int], pairs: list[int], busy: int = 0, beside: int = 0) -> None:
    """Chains with every link streaming ``pairs`` (one count per size) measure-directly
    pairs at once: a busy machine must make the run slower, never make apps fail.
    Beside them ``busy`` spinning processes and a ``beside``-node chain (``Beside``)."""
    print(f"{os.cpu_count()} cores; load average {os.getloadavg()[0]:.1f} at start")
    print(f"\nChains streaming: perfect links, speed inf, M pairs per link at once: {pairs}")
    head = (
        f"{'nodes':>5} {'apps':>5} {'failed':>6} {'exit s':>7} {'CPU s':>6} {'pairs/s':>8} "
        f"{'CPU us/pair':>11} {'quantum':>9} {'classical':>9} {'apps':>9} {'load':>5}"
    )
    rows: list[tuple[int, dict[str, Any], dict[str, Any]]] = []
    with (
        tempfile.TemporaryDirectory(prefix="qnscale-") as tmp,
        Beside(Path(tmp), busy, beside) as side,
    ):
        print(f"beside: {side}; load average {os.getloadavg()[0]:.1f}")
        print(head)
        for n, k in zip(sizes, pairs, strict=True):
            half = run(chain(n, k // 2), Path(tmp), f"half{n}", keep_going=True)
            r = run(chain(n, k), Path(tmp), f"stream{n}", keep_going=True)
            rows.append((n, half, r))
            span = r["last"] - r["connected"]
            rate = r["done"] / 2 / span if span > 0 else float("nan")
            more = (r["done"] - half["done"]) / 2  # pairs, each seen at both ends
            per = (r["cpu"] - half["cpu"]) / more * 1e6 if more > 0 else float("nan")
            kinds = [
                (r[f"cpu_{k}"] - half[f"cpu_{k}"]) / more * 1e6 if more > 0 else float("nan")
                for k in Memory.KINDS.values()
            ]
            print(
                f"{n:>5} {r['apps']:>5} {r['failed'] + half['failed']:>6} {r['exit']:>7.1f} "
                f"{r['cpu']:>6.1f} {rate:>8.0f} {per:>11.0f} "
                + " ".join(f"{x:>9.0f}" for x in kinds)
                + f" {r['load']:>5.1f}",
                flush=True,
            )
            for x in (half, r):
                if x["error"]:
                    print(f"      an app failed: {x['error']}", flush=True)
        if beside and side.chain_runs > 1:
            print(f"(the {beside}-node chain beside ended and was restarted meanwhile)")
    print(
        "\nPer pair (the same difference of two sizes), all threads of each kind of "
        "process:\nvoluntary / involuntary context switches, read+write system calls, "
        "ms waiting for a core per 1,000 pairs"
    )
    print(f"{'nodes':>5} {'kind':>9} {'vol cs':>7} {'invol cs':>8} {'syscalls':>8} {'runq':>7}")
    for n, half, r in rows:
        more = (r["done"] - half["done"]) / 2
        if more <= 0:
            continue
        for kind in Memory.KINDS.values():
            d = [
                (a - b) / more
                for a, b in zip(r[f"sched_{kind}"], half[f"sched_{kind}"], strict=True)
            ]
            print(f"{n:>5} {kind:>9} {d[0]:>7.2f} {d[1]:>8.2f} {d[2]:>8.1f} {d[3] * 1e3:>7.0f}")


if __name__ == "__main__":
    main()
