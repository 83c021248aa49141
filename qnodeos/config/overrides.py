"""``--set KEY=VALUE``: change one value of a network file for one run, without editing
it (``qnodeos run dqc --set apps.client.args.k=1200``).

KEY is a dotted path into the file's tables: ``nodes.alice.speed``,
``links.0.fidelity`` (lists by index), ``apps.client.args.k`` (apps also by the name a
run shows: their ``name``, else MODULE-INDEX as in ``apps.teleport-0.args.rounds``;
links also by their two nodes joined with ``-``: ``links.alice-bob.fidelity``). VALUE is
a TOML value (``0.9``, ``inf``, ``[0, 2]``, ``{ bin_ns = 1e6, period = 2, bins = [0] }``,
``"nv"``); a bare word that is not one is taken as a string (``device=nv``). The last
key may be new (the loader then checks it like any other: unknown keys are errors
naming the nearest known one); every key before it must exist.

>>> data = {"nodes": {"a": {"speed": 1.0}}, "apps": [{"name": "x", "args": {"k": 2}}]}
>>> apply(data, ["apps.x.args.k=1200", "nodes.a.speed=inf", "nodes.a.device=nv"])
>>> data["apps"][0]["args"]["k"], data["nodes"]["a"]["speed"], data["nodes"]["a"]["device"]
(1200, inf, 'nv')
>>> data = {"apps": [{"module": "qnodeos.apps.teleport", "args": {"rounds": 60}}]}
>>> apply(data, ["apps.teleport-0.args.rounds=5"])
>>> data["apps"][0]["args"]["rounds"]
5
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

from ..errors import ConfigError


def value(text: str) -> Any:
    """A TOML value, or the text itself when it is not one."""
    try:
        return tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        return text


def _child(node: Any, part: str, where: str) -> Any:
    if isinstance(node, dict):
        if part not in node:
            known = ", ".join(sorted(node)) or "none"
            raise ConfigError(f"--set {where}: no key {part!r} there (known: {known})")
        return node[part]
    if isinstance(node, list):
        return node[_index(node, part, where)]
    raise ConfigError(f"--set {where}: {part!r} is inside a value, not a table")


def _index(items: list[Any], part: str, where: str) -> int:
    """A list element by index, by its ``name`` (apps), or by its nodes (links)."""
    if part.isdigit():
        if int(part) < len(items):
            return int(part)
        raise ConfigError(f"--set {where}: index {part} out of range (there are {len(items)})")
    for i, item in enumerate(items):
        if isinstance(item, dict) and part in (_name(item, i), _link_name(item)):
            return i
    names = [
        _name(it, i) or _link_name(it)
        for i, it in enumerate(items)
        if isinstance(it, dict) and (_name(it, i) or it.get("nodes"))
    ]
    known = f"; named: {', '.join(names)}" if names else ""
    raise ConfigError(f"--set {where}: no element named {part!r} (or use an index from 0{known})")


def _name(item: dict[str, Any], i: int) -> str:
    """An app's name as a run shows it: its ``name``, else MODULE-INDEX (``chsh-0``)."""
    if isinstance(item.get("name"), str):
        return str(item["name"])
    module = item.get("module")
    return f"{module.rsplit('.', 1)[-1]}-{i}" if isinstance(module, str) else ""


def _link_name(item: dict[str, Any]) -> str:
    """A link's name: its two nodes joined with ``-`` (``alice-bob``)."""
    return "-".join(map(str, item.get("nodes", [])))


def applied(text: str, source: str, path: str | Path | None, settings: list[str]) -> str:
    """A network file's ``text`` with ``settings`` applied, as TOML again; ``keys``, a
    directory relative to the file at ``path``, is made absolute (the new text lives
    elsewhere)."""
    import tomli_w

    from .network import parse_toml

    data = parse_toml(text, source)
    if path is not None and isinstance(data.get("keys"), str):
        data["keys"] = str((Path(path).parent / data["keys"]).resolve())
    apply(data, settings)
    return tomli_w.dumps(data)


def apply(data: dict[str, Any], settings: list[str]) -> None:
    """Apply each ``KEY=VALUE`` of ``settings`` to the parsed network ``data``."""
    for setting in settings:
        key, eq, text = setting.partition("=")
        parts = key.strip().split(".")
        if not eq or not all(parts):
            raise ConfigError(f"--set {setting!r}: expected KEY=VALUE, e.g. nodes.alice.speed=1.0")
        node: Any = data
        for part in parts[:-1]:
            node = _child(node, part, key)
        last = parts[-1]
        if isinstance(node, list):
            node[_index(node, last, key)] = value(text.strip())
        elif isinstance(node, dict):
            node[last] = value(text.strip())
        else:
            raise ConfigError(f"--set {key}: {parts[-2]!r} is a value, not a table")
