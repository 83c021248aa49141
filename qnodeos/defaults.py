"""The embedded default network file (packaged with qnodeos)."""

from __future__ import annotations

from importlib.resources import files


def default_network_text() -> str:
    return files("qnodeos").joinpath("data/default.toml").read_text()
