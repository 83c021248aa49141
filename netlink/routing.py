"""Routing for the network layer, sans-IO: the path a circuit takes between two nodes.

How it works. The network file's links are the graph; a path is shortest by its number
of hops (breadth-first search), or, with ``[network] route_cost``, cheapest by a cost
per link (Dijkstra): ``"rate"`` costs a link its expected time per pair (1 / rate), so
the path has the least total time per link pair; ``"fidelity"`` costs it -log w of its
Werner parameter w = (4F - 1)/3, so the path has the highest product of the w, the
end-to-end fidelity after perfect swaps. Ties are broken by node names, and the path
between two nodes is always computed from the one whose name sorts first, then
reversed if needed, so both directions of a pair of nodes get the same path
(``path(a, b) == path(b, a)[::-1]``).

>>> links = [("a", "b"), ("b", "c"), ("c", "d"), ("a", "x"), ("x", "d")]
>>> shortest_path(links, "a", "d")
['a', 'x', 'd']
>>> shortest_path(links, "d", "a")
['d', 'x', 'a']
>>> shortest_path(links, "a", "zz") is None
True
>>> slow = {frozenset(("a", "x")): 10.0}  # every other link costs 1
>>> cheapest_path(links, "d", "a", lambda hop: slow.get(frozenset(hop), 1.0))
['d', 'c', 'b', 'a']
"""

from __future__ import annotations

import heapq
import math
from collections import deque
from collections.abc import Callable, Iterable, Mapping

from .models import LinkModel

ROUTE_COSTS = ("hops", "rate", "fidelity")
MIN_WERNER = 1e-12  # a link of fidelity 1/4 (w = 0) costs -log of this, not infinity


def link_cost(how: str, model: LinkModel) -> float:
    """What a link of ``model`` costs a path under ``route_cost`` ``how``: 1 a hop, its
    expected seconds per pair, or -log of its Werner parameter.

    >>> from qnodeos.netlink.models import Depolarise
    >>> m = Depolarise(fidelity=0.85, p_success=0.1, cycle_ns=1000)
    >>> link_cost("hops", m), link_cost("rate", m), round(link_cost("fidelity", m), 4)
    (1.0, 1e-05, 0.2231)
    """
    if how == "hops":
        return 1.0
    if how == "rate":
        return 1.0 / model.rate_hz()
    if how == "fidelity":
        return -math.log(max((4 * model.expected_fidelity() - 1) / 3, MIN_WERNER))
    raise ValueError(f"route_cost {how!r}: use one of {', '.join(ROUTE_COSTS)}")


class Topology(tuple[tuple[str, str], ...]):
    """The network's links (pairs of nodes), and what each costs a path (by the pair
    as a frozenset; None: hops, as ``shortest_path`` counts them)."""

    costs: Mapping[frozenset[str], float] | None

    def __new__(
        cls,
        links: Iterable[tuple[str, str]],
        costs: Mapping[frozenset[str], float] | None = None,
    ) -> Topology:
        out = super().__new__(cls, ((a, b) for a, b in links))
        out.costs = dict(costs) if costs is not None else None
        return out

    def path(self, src: str, dst: str) -> list[str] | None:
        """The path between ``src`` and ``dst``: the cheapest by ``costs``, else the
        fewest hops."""
        if self.costs is None:
            return shortest_path(self, src, dst)
        costs = self.costs
        return cheapest_path(self, src, dst, lambda hop: costs[frozenset(hop)])


def neighbours(links: Iterable[tuple[str, str]]) -> dict[str, list[str]]:
    """Each node's neighbours, sorted by name."""
    out: dict[str, set[str]] = {}
    for a, b in links:
        if a == b:
            continue
        out.setdefault(a, set()).add(b)
        out.setdefault(b, set()).add(a)
    return {n: sorted(s) for n, s in out.items()}


def shortest_path(links: Iterable[tuple[str, str]], src: str, dst: str) -> list[str] | None:
    """The fewest-hops path from ``src`` to ``dst`` (both included), the same nodes in
    both directions; None if ``dst`` cannot be reached."""
    if src == dst:
        return [src]
    first, last = sorted((src, dst))
    graph = neighbours(links)
    prev: dict[str, str] = {first: first}
    todo = deque([first])
    while todo:
        n = todo.popleft()
        if n == last:
            break
        for nb in graph.get(n, []):
            if nb not in prev:
                prev[nb] = n
                todo.append(nb)
    if last not in prev:
        return None
    path = [last]
    while path[-1] != first:
        path.append(prev[path[-1]])
    path.reverse()  # first .. last
    return path if first == src else path[::-1]


def cheapest_path(
    links: Iterable[tuple[str, str]],
    src: str,
    dst: str,
    cost: Callable[[tuple[str, str]], float],
) -> list[str] | None:
    """The path from ``src`` to ``dst`` (both included) of least total ``cost(hop)``
    (each >= 0), the same nodes in both directions (equal totals: the fewer hops, then
    the names in order); None if ``dst`` cannot be reached."""
    if src == dst:
        return [src]
    first, last = sorted((src, dst))
    graph = neighbours(links)
    done: set[str] = set()
    todo: list[tuple[float, int, list[str]]] = [(0.0, 0, [first])]
    while todo:
        total, hops, path = heapq.heappop(todo)
        n = path[-1]
        if n in done:
            continue
        if n == last:
            return path if first == src else path[::-1]
        done.add(n)
        for nb in graph.get(n, []):
            if nb not in done:
                heapq.heappush(todo, (total + cost((n, nb)), hops + 1, [*path, nb]))
    return None
