"""What one node costs a host and its network, idle and at full rate: the figures a
1,000-node network on many hosts is planned from (docs/cluster.md).

    sudo python bench/cluster_traffic.py [--idle 10] [--pairs 3000]

Two nodes, each in its own Linux network namespace (so every byte between them crosses
a virtual ethernet link we can count), tcp endpoints with CURVE keys, speed 1.0 (real
time), a depolarising link (p = 0.2 per 10 us attempt). It prints, per node: CPU (its
classical and quantum processes) and packets and bytes sent per second on its link,
(1) idle: nodes up, no app, for ``--idle`` seconds; (2) at full rate: a linkstats app
pair taking ``--pairs`` measure-directly pairs as fast as the link gives them. Packets
are IP packets (tcp segments and their acknowledgements), not qnodeos messages: an
upper bound on messages, since small messages may share a segment. Needs root and
iproute2. It prints numbers; it is not a test.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from qnodeos.runtime.security import make_keys

ROOT = Path(__file__).resolve().parents[1]
TICK = os.sysconf("SC_CLK_TCK")


def ip(*args: str) -> str:
    return subprocess.run(["ip", *args], check=True, capture_output=True, text=True).stdout


def cpu_s(pid: int) -> float:
    """CPU seconds of ``pid`` and its children alive now."""
    total = 0.0
    pids = [pid]
    try:
        kids = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    except OSError:
        kids = []
    pids += [int(k) for k in kids]
    for p in pids:
        try:
            f = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += (int(f[11]) + int(f[12])) / TICK
    return total


def link_tx(ns: str, dev: str) -> tuple[int, int]:
    """(packets, bytes) sent by ``dev`` in ``ns`` so far."""
    info = json.loads(ip("-n", ns, "-s", "-j", "link", "show", "dev", dev))[0]
    tx = info["stats64"]["tx"]
    return int(tx["packets"]), int(tx["bytes"])


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--idle", type=float, default=10.0)
    p.add_argument("--pairs", type=int, default=3000)
    a = p.parse_args()
    tag = f"qt{os.getpid() % 10000}"
    spaces = {f"{tag}a": ("10.78.0.1", f"{tag}va"), f"{tag}b": ("10.78.0.2", f"{tag}vb")}
    procs: list[subprocess.Popen[str]] = []
    try:
        for ns in spaces:
            ip("netns", "add", ns)
        ip("link", "add", f"{tag}va", "type", "veth", "peer", "name", f"{tag}vb")
        for ns, (addr, dev) in spaces.items():
            ip("link", "set", dev, "netns", ns)
            ip("-n", ns, "addr", "add", f"{addr}/24", "dev", dev)
            ip("-n", ns, "link", "set", dev, "up")
            ip("-n", ns, "link", "set", "lo", "up")
        with tempfile.TemporaryDirectory(prefix="qntraffic-") as tmp:
            d = Path(tmp)
            make_keys(d / "keys", ["alice", "bob"], ["ls-a", "ls-b"])
            text = 'name = "traffic"\nkeys = "keys"\n'
            for name, (addr, _) in zip(("alice", "bob"), spaces.values(), strict=True):
                text += (
                    f"[nodes.{name}]\nqubits = 2\nspeed = 1.0\n"
                    f'peer_endpoint = "tcp://{addr}:7302"\nqpeer_endpoint = "tcp://{addr}:7303"\n'
                    f'app_endpoint = "ipc://{tmp}/{name}-app"\n'
                    f'qdevice_endpoint = "ipc://{tmp}/{name}-qdevice"\n'
                )
            text += (
                '[[links]]\nnodes = ["alice", "bob"]\nmodel = "depolarise"\nfidelity = 0.9\n'
                "p_success = 0.2\ncycle_ns = 10000\n"
            )
            net = d / "net.toml"
            net.write_text(text)
            env = {**os.environ, "QNODEOS_NETWORK": str(net), "QNODEOS_RUNTIME_DIR": tmp}

            def in_ns(ns: str, *cmd: str) -> subprocess.Popen[str]:
                proc = subprocess.Popen(
                    ["ip", "netns", "exec", ns, sys.executable, *cmd],
                    cwd=ROOT,
                    env=env,
                    stdout=subprocess.PIPE,
                    stderr=subprocess.STDOUT,
                    text=True,
                )
                procs.append(proc)
                return proc

            nodes = {
                name: in_ns(ns, "-m", "qnodeos", "node", name, "--network", str(net))
                for ns, name in zip(spaces, ("alice", "bob"), strict=True)
            }
            for proc in nodes.values():
                assert proc.stdout is not None
                line = proc.stdout.readline()
                assert line.startswith("READY"), line
            time.sleep(2.0)  # past start-up

            def sample() -> dict[str, tuple[float, int, int]]:
                out = {}
                for (ns, (_, dev)), (name, proc) in zip(spaces.items(), nodes.items(), strict=True):
                    out[name] = (cpu_s(proc.pid), *link_tx(ns, dev))
                return out

            def report(what: str, before: dict[str, tuple[float, int, int]], secs: float) -> None:
                after = sample()
                for name in nodes:
                    cpu = (after[name][0] - before[name][0]) / secs
                    pk = (after[name][1] - before[name][1]) / secs
                    by = (after[name][2] - before[name][2]) / secs
                    print(f"{what:<10} {name:<6} {100 * cpu:>7.1f} {pk:>10.0f} {by / 1024:>9.1f}")

            print(f"{os.cpu_count()} cores; load average {os.getloadavg()[0]:.1f}")
            print(f"{'phase':<10} {'node':<6} {'CPU %':>7} {'pkts/s':>10} {'KiB/s':>9}")
            t0, s0 = time.monotonic(), sample()
            time.sleep(a.idle)
            report("idle", s0, time.monotonic() - t0)
            apps = []
            t0, s0 = time.monotonic(), sample()
            for ns, node, role, me, peer_node, peer in (
                (f"{tag}a", "alice", "create", "ls-a", "bob", "ls-b"),
                (f"{tag}b", "bob", "recv", "ls-b", "alice", "ls-a"),
            ):
                args = {"role": role, "me": me, "peer_node": peer_node, "peer": peer}
                args["pairs"] = a.pairs
                apps.append(
                    in_ns(
                        ns,
                        "-m",
                        "qnodeos.testbed.app_runner",
                        "qnodeos.apps.linkstats",
                        node,
                        "--name",
                        me,
                        "--args",
                        json.dumps(args),
                        "--result",
                        str(d / f"{me}.json"),
                    )
                )
            for proc in apps:
                out, _ = proc.communicate(timeout=300)
                if proc.returncode != 0:
                    raise SystemExit(out[-2000:])
            secs = time.monotonic() - t0
            report("full rate", s0, secs)
            print(
                f"{a.pairs} pairs in {secs:.1f} s: {a.pairs / secs:.0f} pairs/s "
                "(the apps' start-up included)"
            )
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.terminate()
        for proc in procs:
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
        for ns in spaces:
            subprocess.run(["ip", "netns", "del", ns], capture_output=True)


if __name__ == "__main__":
    main()
