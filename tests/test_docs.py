"""The API reference: every public SDK name has a docstring, and the reference built
from them (pdoc, README's command) builds without a warning."""

from __future__ import annotations

import inspect
import warnings
from pathlib import Path

import pytest

import qnodeos.sdk as sdk

REFERENCE = ["qnodeos.sdk", "qnodeos.facade.api", "qnodeos.facade.sweep"]


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


def test_the_api_reference_builds_without_warnings(tmp_path: Path) -> None:
    pdoc = pytest.importorskip("pdoc")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        pdoc.pdoc(*REFERENCE, output_directory=tmp_path)
    page = (tmp_path / "qnodeos" / "sdk.html").read_text()
    for name in ("Node", "Block", "EprSocket", "create_keep", "progress"):
        assert name in page


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
