"""The embedded networks (packaged with qnodeos): the default one, and the paper's
experiments (``qnodeos run dqc``, ``qnodeos run multitask``)."""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .network import NetworkConfig


def default_network_text() -> str:
    return files("qnodeos").joinpath("data/default.toml").read_text()


def network_or_default(path: str | None) -> NetworkConfig:
    """The network file ``path``, or (None) the embedded default network."""
    from .network import load_network, parse_network

    return load_network(path) if path else parse_network(default_network_text(), "<default>")


def shipped_networks() -> list[str]:
    """Names of the embedded networks."""
    data = files("qnodeos").joinpath("data")
    return sorted(p.name.removesuffix(".toml") for p in data.iterdir() if p.name.endswith(".toml"))


def shipped_network_text(name: str) -> str | None:
    """The embedded network ``name`` (None: there is none, or a file of that name
    exists, which wins)."""
    if Path(name).exists() or name not in shipped_networks():
        return None
    return files("qnodeos").joinpath(f"data/{name}.toml").read_text()


def network_text(arg: str | None) -> tuple[str, str, str | None]:
    """What a command's NETWORK argument names: (text, source for messages, the file's
    path or None): an embedded network by name, a file (ConfigError if unreadable),
    or, for None, the default network."""
    from .network import read_network

    if not arg:
        return default_network_text(), "<default>", None
    shipped = shipped_network_text(arg)
    if shipped is not None:
        return shipped, f"<{arg}>", None
    return read_network(arg), arg, arg
