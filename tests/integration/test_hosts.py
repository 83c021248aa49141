"""Two hosts: each node in its own network namespace (its own network stack, joined by
a virtual ethernet pair), talking over TCP only, as nodes on two machines would. Needs
root and iproute2; skipped otherwise."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow


def ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True, text=True)


@pytest.fixture
def hosts() -> Iterator[dict[str, str]]:
    """Two namespaces joined by a veth pair: name -> address."""
    if os.geteuid() != 0 or shutil.which("ip") is None:
        pytest.skip("needs root and iproute2 for network namespaces")
    tag = f"qn{os.getpid() % 100000}"
    spaces = {f"{tag}a": "10.77.0.1", f"{tag}b": "10.77.0.2"}
    try:
        for ns in spaces:
            ip("netns", "add", ns)
        ip("link", "add", f"{tag}va", "type", "veth", "peer", "name", f"{tag}vb")
        for (ns, addr), dev in zip(spaces.items(), (f"{tag}va", f"{tag}vb"), strict=True):
            ip("link", "set", dev, "netns", ns)
            ip("-n", ns, "addr", "add", f"{addr}/24", "dev", dev)
            ip("-n", ns, "link", "set", dev, "up")
            ip("-n", ns, "link", "set", "lo", "up")
    except subprocess.CalledProcessError as exc:
        for ns in spaces:
            subprocess.run(["ip", "netns", "del", ns], capture_output=True)
        pytest.skip(f"cannot make network namespaces here: {exc.stderr.strip()}")
    try:
        yield spaces
    finally:
        for ns in spaces:
            subprocess.run(["ip", "netns", "del", ns], capture_output=True)


def test_entanglement_between_nodes_on_two_hosts_over_tcp(
    hosts: dict[str, str], tmp_path: Path
) -> None:
    (ns_a, addr_a), (ns_b, addr_b) = hosts.items()
    net = tmp_path / "net.toml"
    text = 'name = "hosts"\n'
    for name, addr in (("alice", addr_a), ("bob", addr_b)):
        text += f"""
[nodes.{name}]
qubits = 2
speed = 1.0
app_endpoint = "tcp://{addr}:7301"
peer_endpoint = "tcp://{addr}:7302"
qpeer_endpoint = "tcp://{addr}:7303"
qdevice_endpoint = "ipc://{tmp_path}/{name}-qdevice"
"""
    text += """
[[links]]
nodes = ["alice", "bob"]
model = "depolarise"
fidelity = 0.9
p_success = 0.2
cycle_ns = 10000
delay_s = 0.001
"""
    net.write_text(text)
    env = {**os.environ, "QNODEOS_NETWORK": str(net)}

    def in_ns(ns: str, *cmd: str) -> subprocess.Popen[str]:
        return subprocess.Popen(
            ["ip", "netns", "exec", ns, sys.executable, *cmd],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )

    nodes = [
        in_ns(ns, "-m", "qnodeos", "node", name, "--network", str(net))
        for ns, name in ((ns_a, "alice"), (ns_b, "bob"))
    ]
    try:
        for proc in nodes:
            assert proc.stdout is not None
            first = proc.stdout.readline()  # no keys on tcp: the node says so first
            assert "has no keys" in first and "carry plaintext" in first, first
            line = proc.stdout.readline()
            assert line.startswith("READY"), line
        n = 300
        apps = []
        for ns, node, role, me, peer_node, peer in (
            (ns_a, "alice", "create", "ls-a", "bob", "ls-b"),
            (ns_b, "bob", "recv", "ls-b", "alice", "ls-a"),
        ):
            args = {"role": role, "me": me, "peer_node": peer_node, "peer": peer, "pairs": n}
            apps.append(
                in_ns(
                    ns,
                    "-m",
                    "qnodeos.testbed.app_runner",
                    "qnodeos.apps.linkstats",
                    node,
                    "--args",
                    json.dumps(args),
                    "--result",
                    str(tmp_path / f"{me}.json"),
                )
            )
        for proc in apps:
            out, _ = proc.communicate(timeout=120)
            assert proc.returncode == 0, out
    finally:
        for proc in nodes:
            proc.terminate()
        for proc in nodes:
            proc.wait(timeout=10)
    r = json.loads((tmp_path / "ls-a.json").read_text())["result"]
    f, p = 0.9, 0.2
    f_err = (3 * (1 - (4 * f - 1) ** 2 / 9) / (n / 9)) ** 0.5 / 4
    assert abs(r["fidelity"] - f) <= 4 * f_err, r
    assert abs(r["p_success"] - p) <= 4 * p * ((1 - p) / n) ** 0.5, r
