"""The layout shows the architecture (DESIGN.md "Layout", STYLE.md 7, 12, 14), and this
test keeps it so, reading every module's imports with ``ast`` (imports inside functions
and under ``TYPE_CHECKING`` count like any other: a circle that only the type checker
walks is still two modules that cannot be understood apart):

- no import circles among qnodeos's modules;
- no module takes another's private names (``from X import _name``, ``X._name``);
- imports flow one way, down the layers below (lang <- sdk, kernel, qdevice, netlink
  <- testbed, apps <- cli, api): the SDK and the quantum process never import each
  other, and the node's entry point does not import the orchestration that calls it;
- pyproject.toml installs exactly the packages there are, the top-level apps/,
  netlink/ and testbed/ under the qnodeos namespace.
"""

from __future__ import annotations

import ast
import os
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import qnodeos

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = Path(qnodeos.__file__).parent

# Each module's layer: the longest prefix listed names it. A module imports only from
# its own layer and those below.
LAYERS = {
    # the bottom: errors, the version, instructions and the messages on the wire
    "qnodeos.errors": 0,
    "qnodeos.version": 0,
    "qnodeos.lang": 0,
    # what every process stands on, and devices as data
    "qnodeos.runtime": 1,
    "qnodeos.hardware": 1,
    # a node (kernel, quantum process, link layer), its network file, the app SDK
    "qnodeos.config": 2,
    "qnodeos.kernel": 2,
    "qnodeos.qdevice": 2,
    "qnodeos.netlink": 2,
    "qnodeos.sdk": 2,
    "qnodeos.netqasm.decode": 2,  # NetQASM subroutines as the kernel reads them
    "qnodeos.netqasm.backend": 2,  # NetQASM's SDK on ours
    "qnodeos.netqasm.sim_states": 2,  # netqasm's simulation helpers, which backend installs
    # apps, and the orchestration that starts nodes and runs apps
    "qnodeos.testbed": 3,
    "qnodeos.apps": 3,
    "qnodeos.netqasm": 3,
    # the user's front door, and the package's public names (qnodeos.Network)
    "qnodeos.facade": 4,
    "qnodeos.squidasm": 4,  # SquidASM's API: runs networks through the facade
    "qnodeos": 4,
}
NEVER = [  # (importer, imported) prefixes that must not meet, on top of the layers
    # the SDK and the quantum process never import each other (DESIGN.md); an app
    # reaches its node over the wire only
    ("qnodeos.sdk", "qnodeos.qdevice"),
    ("qnodeos.qdevice", "qnodeos.sdk"),
    ("qnodeos.sdk", "qnodeos.kernel"),
    ("qnodeos.sdk", "qnodeos.netlink"),
    # a node's two processes share the wire types, the network file and the link layer
    ("qnodeos.kernel", "qnodeos.qdevice"),
    ("qnodeos.qdevice", "qnodeos.kernel"),
    # the link layer's protocols are sans-IO, below both processes
    ("qnodeos.netlink", "qnodeos.kernel"),
    ("qnodeos.netlink", "qnodeos.qdevice"),
    ("qnodeos.netlink", "qnodeos.config"),
    # the node's entry point sits below the orchestration that calls it
    ("qnodeos.testbed.node", "qnodeos.testbed.launcher"),
    ("qnodeos.testbed.node", "qnodeos.testbed.forks"),
    ("qnodeos.testbed.node", "qnodeos.testbed.up"),
]


@dataclass(frozen=True)
class Import:
    module: str  # the qnodeos module imported
    name: str  # the name taken from it ("" for the module itself)
    line: int


def modules() -> dict[str, Path]:
    """Every qnodeos module by name (apps, netlink and testbed included: links in a
    source checkout, folders in an installed copy)."""
    found = {}
    for folder, dirs, files in os.walk(PACKAGE, followlinks=True):
        dirs[:] = [d for d in dirs if (Path(folder) / d / "__init__.py").exists()]
        rel = Path(folder).relative_to(PACKAGE).parts
        for f in files:
            if f.endswith(".py"):
                parts = ("qnodeos", *rel) + (() if f == "__init__.py" else (f[:-3],))
                found[".".join(parts)] = Path(folder) / f
    return found


MODULES = modules()


def layer(module: str) -> int:
    parts = module.split(".")
    for n in range(len(parts), 0, -1):
        if ".".join(parts[:n]) in LAYERS:
            return LAYERS[".".join(parts[:n])]
    raise AssertionError(f"{module}: in no layer; add it to LAYERS")


def owner(dotted: str) -> str | None:
    """The qnodeos module a dotted name lies in (the longest prefix that is one)."""
    while dotted and dotted not in MODULES:
        dotted = dotted.rpartition(".")[0]
    return dotted or None


def imports(module: str) -> Iterator[Import]:
    path = MODULES[module]
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                target = owner(alias.name)
                if target is not None:
                    yield Import(target, "", node.lineno)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                source = ".".join([*base, *([node.module] if node.module else [])])
            else:
                source = node.module or ""
            if owner(source) is None:
                continue
            for alias in node.names:
                sub = f"{source}.{alias.name}"
                if sub in MODULES:  # a module taken from its package
                    yield Import(sub, "", node.lineno)
                else:
                    yield Import(owner(source) or source, alias.name, node.lineno)


GRAPH = {m: {i.module for i in imports(m)} - {m} for m in MODULES}


def cycles() -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in GRAPH[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                found.append(sorted(comp))

    for v in sorted(GRAPH):
        if v not in index:
            visit(v)
    return found


def test_the_modules_are_all_found() -> None:
    for name in ("qnodeos.facade.cli", "qnodeos.apps.teleport", "qnodeos.testbed.node"):
        assert name in MODULES
    assert "qnodeos.netlink.egp" in GRAPH["qnodeos.kernel.netstack"]


def test_no_import_circles() -> None:
    assert cycles() == []


def test_no_module_takes_another_modules_private_names() -> None:
    taken = []
    for module in MODULES:
        tree = ast.parse(MODULES[module].read_text())
        bound: dict[str, str] = {}  # local name -> the qnodeos module it is
        for imp in imports(module):
            if imp.name.startswith("_") and not imp.name.startswith("__"):
                taken.append(f"{module}:{imp.line}: from {imp.module} import {imp.name}")
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                for alias in node.names:
                    if alias.asname and owner(alias.name) == alias.name:
                        bound[alias.asname] = alias.name
                    elif not alias.asname and alias.name.startswith("qnodeos"):
                        bound["qnodeos"] = "qnodeos"
            elif isinstance(node, ast.ImportFrom):
                for imp in imports(module):
                    if imp.line == node.lineno and not imp.name:
                        for alias in node.names:
                            if imp.module.rpartition(".")[2] == alias.name:
                                bound[alias.asname or alias.name] = imp.module
        for node in ast.walk(tree):
            if not isinstance(node, ast.Attribute) or not node.attr.startswith("_"):
                continue
            if node.attr.startswith("__"):
                continue
            chain = ast.unparse(node.value).split(".")
            if chain[0] not in bound:
                continue
            target = ".".join([bound[chain[0]], *chain[1:]])
            if target in MODULES and target != module:
                taken.append(f"{module}:{node.lineno}: {target}.{node.attr}")
    assert taken == []


def test_imports_flow_down_the_layers() -> None:
    upward = [
        f"{m} (layer {layer(m)}) imports {t} (layer {layer(t)})"
        for m, targets in GRAPH.items()
        for t in sorted(targets)
        if layer(t) > layer(m)
    ]
    assert upward == []


def test_the_modules_that_must_not_meet_do_not() -> None:
    def under(module: str, prefix: str) -> bool:
        return module == prefix or module.startswith(prefix + ".")

    met = [
        f"{m} imports {t}"
        for m, targets in GRAPH.items()
        for t in targets
        for a, b in NEVER
        if under(m, a) and under(t, b)
    ]
    assert met == []


def test_pyproject_installs_exactly_the_packages_there_are() -> None:
    """Every package listed (none discovered: a stray folder is never installed),
    and the top-level folders mapped into the qnodeos namespace, where a source
    checkout's links lead too."""
    setup = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    packages = {m for m, p in MODULES.items() if p.name == "__init__.py"}
    assert sorted(setup["packages"]) == sorted(packages)
    assert setup["package-dir"] == {
        "qnodeos.apps": "apps",
        "qnodeos.netlink": "netlink",
        "qnodeos.testbed": "testbed",
    }
    for package, folder in setup["package-dir"].items():
        found = MODULES[package].resolve().parent
        assert found == (ROOT / folder).resolve() or found.parent == PACKAGE.resolve()
