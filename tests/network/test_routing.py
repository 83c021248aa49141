"""Paths by a cost other than hops (``[network] route_cost``): on a network where the
fewest hops, the least time per pair and the best fidelity are three different paths,
each cost picks its own, the same in both directions, and end-to-end pairs take it."""

from __future__ import annotations

import math

import pytest

import qnodeos
from qnodeos.errors import ConfigError
from qnodeos.netlink.routing import Topology, cheapest_path, shortest_path
from tests.conftest import network

# a - b - d: two slow links of F 0.8; a - c1 - c2 - d: three fast links of F 0.9;
# a - e1 - e2 - e3 - d: four links of F 0.99 and middling speed (cycles of 1 us)
LINKS = [
    ("a", "b", 0.002, 0.8),
    ("b", "d", 0.002, 0.8),
    ("a", "c1", 0.5, 0.9),
    ("c1", "c2", 0.5, 0.9),
    ("c2", "d", 0.5, 0.9),
    ("a", "e1", 0.1, 0.99),
    ("e1", "e2", 0.1, 0.99),
    ("e2", "e3", 0.1, 0.99),
    ("e3", "d", 0.1, 0.99),
]
NODES = ("a", "b", "c1", "c2", "e1", "e2", "e3", "d")
PATHS = {
    "hops": ["a", "b", "d"],  # 2 hops
    "rate": ["a", "c1", "c2", "d"],  # 3 x 2 us per pair, against 2 x 500 us and 4 x 10 us
    "fidelity": ["a", "e1", "e2", "e3", "d"],  # w = 0.987^4, against 0.867^3 and 0.733^2
}


def text(route_cost: str | None, pairs: int = 30) -> str:
    out = 'name = "routes"\n'
    if route_cost is not None:
        out += f'[network]\nroute_cost = "{route_cost}"\n'
    for i, n in enumerate(NODES):
        out += f'[nodes.{n}]\ndevice = "generic"\nqubits = 2\nseed = {i + 1}\n'
    for i, (x, y, p, f) in enumerate(LINKS):
        out += (
            f'[[links]]\nnodes = ["{x}", "{y}"]\nmodel = "depolarise"\nfidelity = {f}\n'
            f"p_success = {p}\ncycle_ns = 1000\nseed = {20 + i}\n"
        )
    for node, me, peer, role in (("a", "x", "y", "create"), ("d", "y", "x", "recv")):
        other = "d" if node == "a" else "a"
        out += (
            f'[[apps]]\nnode = "{node}"\nname = "{me}"\nmodule = "qnodeos.apps.e2estats"\n'
            f'args = {{ role = "{role}", me = "{me}", peer_node = "{other}", peer = "{peer}", '
            f"pairs = {pairs}, batch = {pairs} }}\n"
        )
    return out


@pytest.mark.parametrize("how", ["hops", "rate", "fidelity"])
def test_each_cost_picks_its_own_path_the_same_both_ways(how: str) -> None:
    cfg = network(text(how).removeprefix('name = "routes"\n'))
    assert cfg.route_cost == how
    assert cfg.route("a", "d") == PATHS[how]
    assert cfg.route("d", "a") == PATHS[how][::-1]
    for x in NODES:  # every pair of nodes: one path, both ways
        for y in NODES:
            assert cfg.route(x, y) == (cfg.route(y, x) or [])[::-1]


def test_hops_is_the_default_and_the_breadth_first_path() -> None:
    cfg = network(text(None).removeprefix('name = "routes"\n'))
    assert cfg.route_cost == "hops" and cfg.topology().costs is None
    assert cfg.route("c1", "b") == shortest_path(cfg.topology(), "c1", "b")


def test_linked_nodes_use_their_link_whatever_the_cost() -> None:
    cfg = network(text("fidelity").removeprefix('name = "routes"\n'))
    assert cfg.route("b", "d") == ["b", "d"]  # the link layer makes those pairs


def test_equal_costs_break_ties_by_fewer_hops_then_names() -> None:
    links = [("s", "m"), ("m", "t"), ("s", "k"), ("k", "t"), ("s", "q"), ("q", "z"), ("z", "t")]
    half = {frozenset(("s", "q")), frozenset(("q", "z")), frozenset(("z", "t"))}

    def cost(hop: tuple[str, str]) -> float:
        return 2 / 3 if frozenset(hop) in half else 1.0

    # s-k-t, s-m-t and s-q-z-t all cost 2: the two-hop ones win, k before m
    assert cheapest_path(links, "s", "t", cost) == ["s", "k", "t"]
    assert cheapest_path(links, "t", "s", cost) == ["t", "k", "s"]
    assert cheapest_path(links, "s", "nowhere", cost) is None
    assert Topology(links, {frozenset(h): 1.0 for h in links}).path("s", "s") == ["s"]


def test_an_unknown_route_cost_is_refused_by_name() -> None:
    with pytest.raises(ConfigError, match="network.route_cost: unknown 'speed'; known: hops"):
        network(text("speed").removeprefix('name = "routes"\n'))


def test_end_to_end_pairs_take_the_path_of_the_cost() -> None:
    """The creating node's network layer routes by the cost (deterministic mode): the
    pairs come over a - e1 - e2 - e3 - d, and their fidelity is that path's prediction."""
    run = qnodeos.Network(text("fidelity", pairs=120)).run(deterministic=True)
    r = run["x"]
    assert r["path"] == PATHS["fidelity"]
    assert {p["path"] for p in run.pair_rows if p["app"] == "x"} == {"a-e1-e2-e3-d"}
    w = ((4 * 0.99 - 1) / 3) ** 4
    assert r["predicted_fidelity"] == pytest.approx((3 * w + 1) / 4)
    # the spread of F from three correlators of ~n/9 pairs each, at the predicted F
    f, n = r["predicted_fidelity"], 120
    f_err = math.sqrt(3 * (1 - (4 * f - 1) ** 2 / 9) / (n / 9)) / 4
    assert abs(r["fidelity"] - f) <= 4 * f_err, (r["fidelity"], f, f_err)
