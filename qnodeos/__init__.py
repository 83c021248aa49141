"""qnodeos: an operating system for quantum network nodes on simulated hardware."""

__version__ = "0.1.0"

__all__ = ["Network", "Results", "__version__"]


def __getattr__(name: str) -> object:
    # qnodeos.Network and qnodeos.Results on first use: importing qnodeos (as every
    # node and quantum process does) stays light
    if name in ("Network", "Results"):
        from . import api

        return getattr(api, name)
    raise AttributeError(f"module 'qnodeos' has no attribute {name!r}")
