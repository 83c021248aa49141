"""Dask, when a cluster is asked for: ``distributed`` loaded on first use (it is an
optional extra, ``pip install 'qnodeos[cluster]'``: nothing else imports it, so
``qnodeos run`` on one machine never loads it) and a client of a scheduler."""

from __future__ import annotations

import importlib
from typing import Any

from qnodeos.errors import ConfigError

RESOURCE = "cores"  # the worker resource a sweep point or a node reserves
CONNECT_TIMEOUT_S = 20.0


def distributed() -> Any:
    """The ``distributed`` module (ConfigError saying how to install it if missing)."""
    try:
        return importlib.import_module("distributed")
    except ImportError:
        raise ConfigError(
            "--cluster needs Dask's distributed package: pip install 'qnodeos[cluster]'"
        ) from None


def connect(address: str) -> Any:
    """A Dask client of the scheduler at ``address`` (ConfigError if it cannot be
    reached within ``CONNECT_TIMEOUT_S``)."""
    dd = distributed()
    try:
        return dd.Client(address, timeout=CONNECT_TIMEOUT_S, set_as_default=False)
    except (OSError, TimeoutError) as exc:
        raise ConfigError(f"--cluster {address}: cannot reach a Dask scheduler: {exc}") from None
