"""``[chain]``: a repeater chain of N nodes in a line, written once in a network file and
made into its nodes and links when the file is read, so that ``--set chain.nodes=3``
or a sweep over it changes the number of hops.

    [chain]
    nodes = 5                            # n0 - n1 - n2 - n3 - n4 (at least 2)
    node = { device = "generic", qubits = 2, seed = 1 }    # every node's table
    link = { model = "depolarise", fidelity = 0.97, p_success = 0.2, cycle_ns = 10000,
             length_km = 0, seed = 11 }                    # every link's table

Node ``i`` is ``n{i}`` with the ``node`` table (a ``seed`` there is shifted by ``i``,
so every device draws its own numbers); link ``i`` joins ``n{i}`` and ``n{i+1}`` with
the ``link`` table (its ``seed`` shifted by ``i`` too). Every key of those tables is
checked afterwards like a node's or a link's. An app's ``node`` may name the chain's
ends as ``"chain.first"`` and ``"chain.last"``, which no node can be called, so an app
stays at the far end whatever the number of nodes. A file may have ``[nodes.X]`` and
``[[links]]`` besides, as long as no name is taken twice.

>>> data = {"chain": {"nodes": 3, "node": {"seed": 1}, "link": {"model": "perfect"}},
...         "apps": [{"node": "chain.last", "module": "m"}]}
>>> out = expand(data, "<doc>")
>>> sorted(out["nodes"]), [lk["nodes"] for lk in out["links"]], out["apps"][0]["node"]
(['n0', 'n1', 'n2'], [['n0', 'n1'], ['n1', 'n2']], 'n2')
>>> [out["nodes"][n]["seed"] for n in ("n0", "n1", "n2")], out["chain"]
([1, 2, 3], ['n0', 'n1', 'n2'])
"""

from __future__ import annotations

import copy
from typing import Any

from ..errors import ConfigError

CHAIN_KEYS = {"nodes", "node", "link"}
MAX_NODES = 64
ENDS = ("chain.first", "chain.last")


def names(n: int) -> list[str]:
    """The nodes of a chain of ``n``, in order."""
    return [f"n{i}" for i in range(n)]


def expand(data: dict[str, Any], source: str) -> dict[str, Any]:
    """``data`` (a parsed network file) with its ``[chain]`` made into nodes and links,
    and ``chain`` replaced by the chain's node names in order; ``data`` itself as it is
    when it has no chain. ConfigError naming the key for a bad chain."""
    if "chain" not in data:
        return data
    where = f"{source}: chain"
    chain = data["chain"]
    if not isinstance(chain, dict):
        raise ConfigError(f"{where}: expected a table, got {chain!r}")
    unknown = sorted(set(chain) - CHAIN_KEYS)
    if unknown:
        raise ConfigError(
            f"{where}: unknown key(s) {', '.join(unknown)}; known: {', '.join(sorted(CHAIN_KEYS))}"
        )
    n = chain.get("nodes")
    if isinstance(n, bool) or not isinstance(n, int) or not 2 <= n <= MAX_NODES:
        raise ConfigError(f"{where}.nodes: expected a whole number of nodes in 2..{MAX_NODES}, "
                          f"got {n!r}")  # fmt: skip
    tables = {}
    for key in ("node", "link"):
        t = chain.get(key, {})
        if not isinstance(t, dict):
            raise ConfigError(f"{where}.{key}: expected a table, got {t!r}")
        if key == "link" and "nodes" in t:
            raise ConfigError(f"{where}.link.nodes: the chain joins its nodes itself")
        tables[key] = t
    out = copy.deepcopy({k: v for k, v in data.items() if k != "chain"})
    chain_nodes = names(n)
    nodes = out.setdefault("nodes", {})
    if not isinstance(nodes, dict):
        raise ConfigError(f"{source}: nodes: expected a table")
    links = out.setdefault("links", [])
    if not isinstance(links, list):
        raise ConfigError(f"{source}: links: expected a list of tables")
    for i, name in enumerate(chain_nodes):
        if name in nodes:
            raise ConfigError(f"{where}: node {name!r} is the chain's and also a [nodes.{name}]")
        nodes[name] = _shifted(tables["node"], i)
    for i, (a, b) in enumerate(zip(chain_nodes, chain_nodes[1:], strict=False)):
        links.append({"nodes": [a, b], **_shifted(tables["link"], i)})
    apps = out.get("apps", [])
    if not isinstance(apps, list):
        raise ConfigError(f"{source}: apps: expected a list of tables ([[apps]])")
    for app in apps:
        if isinstance(app, dict) and app.get("node") in ENDS:
            app["node"] = chain_nodes[0] if app["node"] == ENDS[0] else chain_nodes[-1]
    out["chain"] = chain_nodes
    return out


def _shifted(table: dict[str, Any], i: int) -> dict[str, Any]:
    """A copy of ``table`` for the chain's ``i``-th node or link: its seed plus ``i``."""
    t = copy.deepcopy(table)
    if isinstance(t.get("seed"), int) and not isinstance(t["seed"], bool):
        t["seed"] += i
    return t
