"""The documentation: every public SDK name has a docstring, and the generated
reference pages name every command, option and network-file key (CI builds the whole
site with ``mkdocs build --strict``)."""

from __future__ import annotations

import dataclasses
import importlib.util
import inspect
from pathlib import Path
from types import ModuleType
from typing import Any

import qnodeos.sdk as sdk

ROOT = Path(__file__).resolve().parent.parent


def test_every_public_sdk_name_has_a_docstring() -> None:
    missing = []
    for name in sdk.__all__:
        obj = getattr(sdk, name)
        if not inspect.getdoc(obj):
            missing.append(name)
        if inspect.isclass(obj):
            for attr, member in vars(obj).items():
                if attr.startswith("_"):
                    continue
                fn = member.fget if isinstance(member, property) else member
                if callable(fn) and not fn.__doc__:
                    missing.append(f"{name}.{attr}")
    assert missing == []


def _hooks() -> ModuleType:
    """docs/hooks.py, which generates the reference pages when mkdocs builds the site."""
    spec = importlib.util.spec_from_file_location("docs_hooks", ROOT / "docs" / "hooks.py")
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_the_cli_reference_names_every_command_and_option() -> None:
    from qnodeos.facade.cli import build_parser

    hooks = _hooks()
    page = hooks.cli_reference()
    subs = hooks._subcommands(build_parser())
    assert len(subs) >= 10
    for name, sub in subs.items():
        assert f"## qnodeos {name}" in page
        for action in sub._actions:
            for flag in action.option_strings:
                assert flag in page, (name, flag)


def test_the_network_file_reference_names_every_key_with_its_meaning() -> None:
    from qnodeos.config.network import APP_KEYS, LINK_KEYS, NODE_KEYS
    from qnodeos.config.schema import network_schema
    from qnodeos.netlink.models import MODELS

    page = _hooks().network_reference()
    fields = {f.name for m in MODELS.values() for f in dataclasses.fields(m) if f.init}
    for key in {*NODE_KEYS, *LINK_KEYS, *APP_KEYS, *fields, "name", "keys"}:
        assert f"| `{key}`" in page, key
    for kind in MODELS:
        assert f'### `model = "{kind}"`' in page

    def described(props: dict[str, Any], where: str) -> None:
        for key, spec in props.items():
            assert spec.get("description"), f"{where}.{key} has no description"

    props = network_schema()["properties"]
    described(props, "top")
    described(props["nodes"]["additionalProperties"]["properties"], "nodes")
    for variant in props["links"]["items"]["oneOf"]:
        described(variant["properties"], "links")
    described(props["apps"]["items"]["properties"], "apps")


def test_every_page_of_the_site_is_in_its_navigation() -> None:
    """A page left out of mkdocs.yml's nav is built but found by nobody."""
    nav = (ROOT / "mkdocs.yml").read_text()
    pages = {p.relative_to(ROOT / "docs").as_posix() for p in (ROOT / "docs").rglob("*.md")}
    assert pages and all(page in nav for page in pages), sorted(p for p in pages if p not in nav)


def test_references_in_the_sdk_docstrings_resolve() -> None:
    """A docstring naming ``Node.progress`` or ``sdk.connect`` (in double backticks)
    names something that exists: a renamed method breaks this test, not the reader."""
    import re

    docs: list[str] = []
    for name in sdk.__all__:
        obj = getattr(sdk, name)
        docs.append(inspect.getdoc(obj) or "")
        if inspect.isclass(obj):
            docs += [inspect.getdoc(m) or "" for a, m in vars(obj).items() if not a.startswith("_")]
    broken = []
    for ref in {r for d in docs for r in re.findall(r"``([A-Za-z_][\w.]*)``", d)}:
        head, _, rest = ref.removeprefix("sdk.").partition(".")
        if head not in sdk.__all__:
            continue  # a parameter, a value, another package: not a reference into the SDK
        target: object = getattr(sdk, head)
        for part in rest.split(".") if rest else []:
            if not hasattr(target, part):
                broken.append(ref)
                break
            target = getattr(target, part)
    assert broken == []


def test_the_sdk_reference_leaves_out_exactly_the_internals() -> None:
    """docs/reference/sdk.md filters out what the SDK's own code calls (recording,
    building and filling in a block), and nothing an app uses."""
    import re

    page = (ROOT / "docs" / "reference" / "sdk.md").read_text()
    found = re.search(r"filters: \[(.*)\]", page)
    assert found is not None
    filters = [f.strip().strip('"') for f in found.group(1).split(",")]
    hides = [re.compile(f[1:]) for f in filters if f.startswith("!")]

    def hidden(name: str) -> bool:
        return any(h.search(name) for h in hides)

    internals = {"build", "emit", "fill", "current_block", "_reg", "__init__"}
    assert all(hidden(n) for n in internals)
    public = [a for n in sdk.__all__ for a in dir(getattr(sdk, n)) if not a.startswith("_")]
    public += list(sdk.__all__)
    assert sorted(n for n in public if hidden(n) and n not in internals) == []
