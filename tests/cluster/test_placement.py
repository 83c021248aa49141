"""Placement, endpoints, keys and clocks of a --cluster run, as plain data."""

from __future__ import annotations

import pytest

from qnodeos.config.network import parse_network
from qnodeos.errors import ConfigError
from qnodeos.testbed.cluster import keys_for
from qnodeos.testbed.placement import (
    Clock,
    Worker,
    check_time_bins,
    clock_offset,
    cluster_text,
    place,
)

W = [
    Worker("tcp://10.0.0.1:4001", "w1", 2),
    Worker("tcp://10.0.0.2:4002", "w2", 2),
    Worker("tcp://10.0.0.3:4003", "w3", 1),
]


def chain(n: int, extra: str = "") -> str:
    text = 'name = "c"\n'
    for i in range(n):
        text += f"[nodes.n{i}]\n" + (extra if i == 0 else "")
    for i in range(n - 1):
        text += f'[[links]]\nnodes = ["n{i}", "n{i + 1}"]\nmodel = "perfect"\ncycle_ns = 1000\n'
    return text


def test_nodes_spread_by_free_cores() -> None:
    got = place(parse_network(chain(5)), W)
    per = {w.name: sum(1 for x in got.values() if x is w) for w in W}
    assert per == {"w1": 2, "w2": 2, "w3": 1}
    assert got["n0"].name != got["n1"].name  # neighbours spread, not stacked


def test_a_host_key_pins_a_node_by_address_or_name() -> None:
    got = place(parse_network(chain(3, 'host = "10.0.0.3"\n')), W)
    assert got["n0"].name == "w3"
    got = place(parse_network(chain(3, 'host = "w2"\n')), W)
    assert got["n0"].name == "w2"


def test_a_host_without_a_worker_is_refused_naming_the_node_and_the_workers() -> None:
    with pytest.raises(ConfigError, match=r"nodes\.n0\.host: no worker .* 'h9'; workers: w1"):
        place(parse_network(chain(2, 'host = "h9"\n')), W)


def test_each_node_is_dialled_at_its_workers_host_and_binds_every_interface() -> None:
    text = chain(2)
    placement = place(parse_network(text), W)
    ports = {"n0": (7000, 7001), "n1": (7002, 7003)}
    cfg = parse_network(cluster_text(text, placement, ports))
    for name, (p, q) in ports.items():
        node, host = cfg.nodes[name], placement[name].host
        assert node.peer_endpoint == f"tcp://{host}:{p}" and node.bind_peer == f"tcp://*:{p}"
        assert node.qpeer_endpoint == f"tcp://{host}:{q}" and node.bind_qpeer == f"tcp://*:{q}"
    assert cfg.keys is not None  # CURVE on every tcp link


def test_a_host_gets_every_public_key_and_only_its_own_secrets() -> None:
    keys = {
        "nodes/a.key": b"A",
        "nodes/a.key_secret": b"a",
        "nodes/b.key": b"B",
        "nodes/b.key_secret": b"b",
        "apps/x.key": b"X",
        "apps/x.key_secret": b"x",
    }
    assert set(keys_for(keys, ["a"], [])) == {
        "nodes/a.key",
        "nodes/a.key_secret",
        "nodes/b.key",
        "apps/x.key",
    }


def test_the_clock_offset_comes_from_the_shortest_round_trip() -> None:
    c = clock_offset([(10.0, 15.9, 10.4), (20.0, 25.001, 20.002), (30.0, 36.0, 31.0)])
    assert c.offset_s == pytest.approx(5.0) and c.error_s == pytest.approx(0.001)


BINS = "schedule = { bin_ns = 100000, period = 2, bins = [0] }\n"


def test_time_bins_are_refused_when_clocks_may_differ_by_more_than_a_tenth_of_a_bin() -> None:
    text = chain(2).replace("cycle_ns = 1000\n", "cycle_ns = 1000\n" + BINS)
    cfg = parse_network(text)
    ok = {"n0": Clock(0.000_002, 0.000_001), "n1": Clock(-0.000_002, 0.000_001)}  # 6 us < 10
    check_time_bins(cfg, ok)
    bad = {"n0": Clock(0.000_010, 0.000_001), "n1": Clock(0.0, 0.000_001)}  # 12 us > 10
    with pytest.raises(ConfigError, match=r"link n0-n1: .* 12000 ns .* more than 0.1 of its"):
        check_time_bins(cfg, bad)
    check_time_bins(parse_network(chain(2)), bad)  # continuous links have no bins to blur


def test_one_machine_never_loads_dask() -> None:
    """``qnodeos run`` and ``qnodeos sweep`` without ``--cluster`` import no Dask."""
    import subprocess
    import sys

    code = (
        "import sys, qnodeos, qnodeos.facade.cli, qnodeos.facade.sweep, "
        "qnodeos.testbed.launcher; print(sorted(m for m in sys.modules "
        "if m.split('.')[0] in ('dask', 'distributed')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.stdout.strip() == "[]", out.stderr
