"""Makes ``import squidasm...`` give qnodeos's SquidASM layer (``qnodeos squidasm``
calls :func:`install` before it runs a script), and ``pydynaa`` the one name programs
import from it (``EventExpression``, for type hints). ``import netsquid`` fails with
an ImportError that says why."""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import sys
import types
from collections.abc import Sequence

__all__ = ["MODULES", "install"]

# squidasm module -> (qnodeos module, names it exports there; None: all public names)
MODULES: dict[str, tuple[str, Sequence[str] | None]] = {
    "squidasm.run.stack.run": ("qnodeos.squidasm.run", None),
    "squidasm.run.stack.config": ("qnodeos.squidasm.config", None),
    "squidasm.sim.stack.program": ("qnodeos.squidasm.program", None),
    "squidasm.sim.stack.common": ("qnodeos.squidasm.common", None),
    "squidasm.sim.stack.csocket": ("qnodeos.squidasm.stack", ["ClassicalSocket"]),
    "squidasm.sim.stack.connection": ("qnodeos.squidasm.stack", ["SquidConnection"]),
    "squidasm.util": ("qnodeos.squidasm.util", None),
    "squidasm.util.util": ("qnodeos.squidasm.util", None),
    "squidasm.util.routines": ("qnodeos.squidasm.routines", None),
}
PACKAGES = ["squidasm", "squidasm.run", "squidasm.run.stack", "squidasm.sim", "squidasm.sim.stack"]


class EventExpression:
    """NetSquid's event expression, for programs' type hints only: a program on
    qnodeos never receives one."""


class _NoNetSquid(importlib.abc.MetaPathFinder):
    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: types.ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        if fullname.split(".")[0] in ("netsquid", "netsquid_netbuilder", "netsquid_driver"):
            raise ImportError(
                f"{fullname} is NetSquid's, which `qnodeos squidasm` replaces: a script may "
                f"import squidasm and netqasm, not NetSquid itself",
                name=fullname,
            )
        return None


def install() -> None:
    """Put the ``squidasm`` modules (and ``pydynaa``) in ``sys.modules``."""
    import importlib

    mods: dict[str, types.ModuleType] = {}
    for name in PACKAGES:
        pkg = types.ModuleType(name, "SquidASM, as qnodeos provides it (qnodeos.squidasm)")
        pkg.__path__ = []
        mods[name] = pkg
    for name, (source, names) in MODULES.items():
        src = importlib.import_module(source)
        mod = types.ModuleType(name, src.__doc__)
        exported = names if names is not None else getattr(src, "__all__", [])
        for attr in exported:
            setattr(mod, attr, getattr(src, attr))
        mods[name] = mod
    mods["squidasm.util"].__path__ = []  # a package too: util.util, util.routines
    pydynaa = types.ModuleType("pydynaa", "NetSquid's engine: only EventExpression, for hints")
    pydynaa.EventExpression = EventExpression  # type: ignore[attr-defined]
    mods["pydynaa"] = pydynaa
    for name, mod in sorted(mods.items()):
        sys.modules[name] = mod
        parent, _, child = name.rpartition(".")
        if parent:
            setattr(mods[parent], child, mod)
    if not any(isinstance(f, _NoNetSquid) for f in sys.meta_path):
        sys.meta_path.insert(0, _NoNetSquid())
