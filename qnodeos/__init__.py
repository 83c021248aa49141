"""qnodeos: an operating system for quantum network nodes on simulated hardware.

Where the repository's top-level folders come from: ``apps/``, ``netlink/`` and
``testbed/`` stay top-level folders of the repository (the design card's layout), but
they are parts of this package: ``qnodeos.apps``, ``qnodeos.netlink`` and
``qnodeos.testbed``. The distribution installs them under those names (setuptools'
``package-dir`` mapping in pyproject.toml), so it claims no generic top-level name and
a user's own ``apps`` package never collides with ours. In a source checkout the same
names resolve through three symlinks, ``qnodeos/apps -> ../apps``, ``qnodeos/netlink
-> ../netlink`` and ``qnodeos/testbed -> ../testbed``: a checkout whose folder is first
on ``sys.path`` (``python -m pytest`` or ``python -m qnodeos`` from the repository
root, with or without an editable install) imports ``qnodeos`` from it, and
``qnodeos.apps`` is then found inside it, exactly as in an installed copy. Because the
tree on disk has the installed shape, tools that read files rather than run the import
system (mypy, pytest's doctest collection, editors) see the same module names; an
installed copy has real folders there and no link. Nothing is added to ``sys.path``
or to a package's ``__path__``.
"""

from .version import __version__

__all__ = ["Network", "Results", "__version__"]


def __dir__() -> list[str]:
    # tab completion (IPython, Jupyter) finds the lazily imported names too
    return sorted({*globals(), *__all__})


def __getattr__(name: str) -> object:
    # qnodeos.Network and qnodeos.Results on first use: importing qnodeos (as every
    # node and quantum process does) stays light
    if name in ("Network", "Results"):
        from .facade import api

        return getattr(api, name)
    raise AttributeError(f"module 'qnodeos' has no attribute {name!r}")
