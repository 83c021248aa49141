"""Routing for the network layer, sans-IO: the path a circuit takes between two nodes.

How it works. The network file's links are the graph; a path is shortest by its number
of hops (breadth-first search). Ties are broken by node names, and the path between two
nodes is always computed from the one whose name sorts first, then reversed if needed,
so both directions of a pair of nodes get the same path (``path(a, b) ==
path(b, a)[::-1]``).

>>> links = [("a", "b"), ("b", "c"), ("c", "d"), ("a", "x"), ("x", "d")]
>>> shortest_path(links, "a", "d")
['a', 'x', 'd']
>>> shortest_path(links, "d", "a")
['d', 'x', 'a']
>>> shortest_path(links, "a", "zz") is None
True
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable


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
