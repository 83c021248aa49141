"""Where each node of a ``--cluster`` run goes, what it binds and where it is dialled,
and whether the hosts' clocks agree well enough for the network's time bins (sans-IO:
plain data in, plain data out; ``testbed/cluster.py`` does the talking).

- ``place``: a node with a ``host`` key runs on a worker of that host (its address or
  its name); the others go, one at a time, to the worker with the most cores left
  (its ``cores`` resource, else its threads), so they spread over the cluster.
- ``cluster_text``: the network file as the nodes read it: every node's peer and
  qpeer endpoints made tcp at its worker's address on ports free there, bound on every
  interface of that host (``peer_bind``), and CURVE keys (``keys``) on.
- ``clock_offset``: a host's clock offset to the driver, NTP-style, from timed round
  trips; ``check_time_bins`` refuses a network whose linked nodes' clocks may differ
  by more than ``BIN_FRACTION`` of a time bin.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import tomli_w

from qnodeos.config.network import NetworkConfig, parse_toml
from qnodeos.errors import ConfigError

BIN_FRACTION = 0.1  # the largest clock disagreement a time-bin link tolerates, of a bin


@dataclass(frozen=True)
class Worker:
    """A Dask worker as placement sees it."""

    address: str  # tcp://HOST:PORT
    name: str
    cores: float

    @property
    def host(self) -> str:
        """The host part of the worker's address (what peers on other hosts dial)."""
        rest = self.address.partition("://")[2]
        return rest.rpartition(":")[0].strip("[]")


def place(cfg: NetworkConfig, workers: list[Worker]) -> dict[str, Worker]:
    """Each node's worker (ConfigError naming a node whose ``host`` has no worker).

    >>> from qnodeos.config.network import parse_network
    >>> net = parse_network('name="n"\\n[nodes.a]\\n[nodes.b]\\n[nodes.c]\\nhost="w1"\\n')
    >>> ws = [Worker("tcp://10.0.0.1:1", "w1", 2), Worker("tcp://10.0.0.2:1", "w2", 2)]
    >>> {n: w.name for n, w in place(net, ws).items()}
    {'a': 'w2', 'b': 'w1', 'c': 'w1'}
    """
    if not workers:
        raise ConfigError("the cluster has no workers")
    free = {w.address: w.cores for w in workers}
    order = sorted(workers, key=lambda w: w.address)
    out: dict[str, Worker] = {}
    pinned = [n for n, c in cfg.nodes.items() if c.host is not None]
    for name in [*pinned, *(n for n in cfg.nodes if n not in pinned)]:
        host = cfg.nodes[name].host
        fits = order if host is None else [w for w in order if host in (w.host, w.name)]
        if not fits:
            seen = ", ".join(f"{w.name} ({w.host})" for w in order)
            raise ConfigError(
                f"nodes.{name}.host: no worker of the cluster is on {host!r}; workers: {seen}"
            )
        best = max(fits, key=lambda w: free[w.address])  # first of the most free
        free[best.address] -= 1
        out[name] = best
    return {n: out[n] for n in cfg.nodes}


def cluster_text(text: str, placement: dict[str, Worker], ports: dict[str, tuple[int, int]]) -> str:
    """The network file ``text`` for a cluster run: node N dialled at
    ``tcp://HOST:P`` (peer) and ``tcp://HOST:Q`` (qpeer) of its worker, bound on every
    interface there, ``ports[N] == (P, Q)``; keys in ``keys/`` beside the file."""
    data: dict[str, Any] = parse_toml(text, "network")
    for name, worker in placement.items():
        peer, qpeer = ports[name]
        table = data["nodes"].setdefault(name, {})
        dial = f"[{worker.host}]" if ":" in worker.host else worker.host
        table["peer_endpoint"] = f"tcp://{dial}:{peer}"
        table["qpeer_endpoint"] = f"tcp://{dial}:{qpeer}"
        table["peer_bind"] = f"tcp://*:{peer}"
        table["qpeer_bind"] = f"tcp://*:{qpeer}"
    data["keys"] = "keys"
    return tomli_w.dumps(data)


@dataclass(frozen=True)
class Clock:
    """A host's clock against the driver's: ``offset_s`` (theirs minus ours) known to
    within ``error_s`` (half the shortest round trip it was measured over)."""

    offset_s: float
    error_s: float


def clock_offset(samples: list[tuple[float, float, float]]) -> Clock:
    """NTP-style: from (sent, their time, received) triples, the one with the shortest
    round trip gives the offset (their time minus the midpoint) within half of it.

    >>> clock_offset([(0.0, 5.5, 1.0), (2.0, 7.1, 2.2)])
    Clock(offset_s=5.0, error_s=0.10000000000000009)
    """
    if not samples:
        raise ValueError("no clock samples")
    sent, theirs, got = min(samples, key=lambda s: s[2] - s[0])
    return Clock(theirs - (sent + got) / 2, (got - sent) / 2)


def check_time_bins(
    cfg: NetworkConfig, clocks: dict[str, Clock], fraction: float = BIN_FRACTION
) -> None:
    """ConfigError naming the first link with time bins whose two nodes' clocks may
    differ (offsets apart plus both errors, in the nodes' device time) by more than
    ``fraction`` of a bin. ``clocks``: by node."""
    for link in cfg.links:
        if link.schedule is None:
            continue
        a, b = (clocks[n] for n in link.nodes)
        worst_s = abs(a.offset_s - b.offset_s) + a.error_s + b.error_s
        speed = max(cfg.nodes[n].speed for n in link.nodes)
        worst_ns = worst_s * 1e9 * (speed if math.isfinite(speed) else 1.0)
        if worst_ns > fraction * link.schedule.bin_ns:
            raise ConfigError(
                f"link {link.name}: its nodes' clocks may differ by {worst_ns:.0f} ns of device "
                f"time (offsets {a.offset_s * 1e6:+.0f} us and {b.offset_s * 1e6:+.0f} us, "
                f"each known within {a.error_s * 1e6:.0f} / {b.error_s * 1e6:.0f} us), more "
                f"than {fraction:g} of its {link.schedule.bin_ns:g} ns time bins; use longer "
                f"bins, a continuous schedule, or place both nodes on one host"
            )
