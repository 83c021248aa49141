"""mkdocs hooks: pages generated from the code at build time, so they cannot drift.

A page holding ``<!-- generated: NAME -->`` gets that marker replaced by ``GENERATED[NAME]()``:

- ``cli``: every ``qnodeos`` command and option, from the parser itself
  (``qnodeos.facade.cli.build_parser``);
- ``network-file``: every key of the network file with its type, range and meaning,
  from the JSON Schema the loader is checked against (``qnodeos.config.schema``).

``tests/test_docs.py`` checks both name everything there is.
"""

from __future__ import annotations

import argparse
import json
import os
import re
from collections.abc import Callable
from typing import Any

MARKER = re.compile(r"<!-- generated: ([\w-]+) -->")


def _subcommands(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    for action in parser._actions:  # argparse keeps its subparsers here (docs tooling only)
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    return {}


def cli_reference() -> str:
    """Markdown: the top-level help, then each command's help, as ``--help`` prints them."""
    from qnodeos.facade.cli import build_parser

    os.environ["COLUMNS"] = "90"  # argparse wraps to the terminal; fix it for the page
    parser = build_parser()
    out = ["## qnodeos", "", "```text", parser.format_help().rstrip(), "```", ""]
    for name, sub in _subcommands(parser).items():
        out += [f"## qnodeos {name}", ""]
        if sub.description:
            out += [sub.description, ""]
        out += ["```text", sub.format_help().rstrip(), "```", ""]
    return "\n".join(out)


def _type(spec: dict[str, Any]) -> str:
    if "enum" in spec:
        return " \\| ".join(f"`{json.dumps(v)}`" for v in spec["enum"])
    if "const" in spec:
        return f"`{json.dumps(spec['const'])}`"
    if "oneOf" in spec:
        return " or ".join(_type(s) for s in spec["oneOf"])
    kind = spec.get("type", "any")
    if kind == "array" and "items" in spec:
        return f"array of {_type(spec['items'])}"
    return str(kind)


def _range(spec: dict[str, Any]) -> str:
    parts = []
    for key, sign in (
        ("minimum", "≥"),
        ("exclusiveMinimum", ">"),
        ("maximum", "≤"),
        ("exclusiveMaximum", "<"),
    ):
        if key in spec:
            parts.append(f"{sign} {spec[key]}")
    if "pattern" in spec:
        parts.append(f"matches `{spec['pattern']}`")
    return ", ".join(parts)


def _table(props: dict[str, Any], required: list[str]) -> list[str]:
    rows = ["| key | type | range | meaning |", "|---|---|---|---|"]
    for key, spec in props.items():
        need = " (required)" if key in required else ""
        desc = str(spec.get("description", "")).replace("|", "\\|")
        rows.append(f"| `{key}`{need} | {_type(spec)} | {_range(spec)} | {desc} |")
    return rows


def network_reference() -> str:
    """Markdown: the network file's tables and keys, from ``qnodeos schema``."""
    from qnodeos.config.schema import network_schema

    schema = network_schema()
    props = schema["properties"]
    out = ["## Top level", ""]
    top = {k: v for k, v in props.items() if k not in ("nodes", "links", "apps")}
    out += _table(top, schema["required"]) + [""]
    out += ["## `[nodes.NAME]`", "", props["nodes"]["description"], ""]
    node = props["nodes"]["additionalProperties"]
    out += _table(node["properties"], node.get("required", [])) + [""]
    out += ["## `[[links]]`", "", props["links"]["description"], ""]
    for variant in props["links"]["items"]["oneOf"]:
        model = variant["properties"]["model"]["const"]
        out += [f'### `model = "{model}"`', ""]
        if variant.get("description"):
            out += [variant["description"], ""]
        out += _table(variant["properties"], variant["required"]) + [""]
    apps = props["apps"]
    out += ["## `[[apps]]`", "", apps["description"], ""]
    out += _table(apps["items"]["properties"], apps["items"]["required"]) + [""]
    return "\n".join(out)


GENERATED: dict[str, Callable[[], str]] = {
    "cli": cli_reference,
    "network-file": network_reference,
}


def on_page_markdown(markdown: str, **_: Any) -> str:
    def fill(m: re.Match[str]) -> str:
        return GENERATED[m.group(1)]()

    return MARKER.sub(fill, markdown)
