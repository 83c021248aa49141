"""The network file's JSON Schema (qnodeos schema) agrees with the loader: the same
keys, and a value of the wrong type refused by both; every shipped network and README's
example network are valid under it."""

from __future__ import annotations

import re
import tomllib
from importlib.resources import files
from pathlib import Path

import pytest

from qnodeos.config.network import parse_network
from qnodeos.config.schema import NODE, check_against_loader, network_schema
from qnodeos.errors import ConfigError

jsonschema = pytest.importorskip("jsonschema")
ROOT = Path(__file__).resolve().parents[1]
WRONG = {"number": "fast", "integer": "many", "string": 7, "array": "a", "object": "b"}


def valid(data: dict[str, object]) -> bool:
    return jsonschema.Draft202012Validator(network_schema()).is_valid(data)


def test_the_schema_names_the_loaders_keys() -> None:
    check_against_loader()


def test_shipped_networks_and_the_readme_example_are_valid() -> None:
    texts = [p.read_text() for p in files("qnodeos").joinpath("data").iterdir()
             if p.name.endswith(".toml")]  # fmt: skip
    readme = (ROOT / "README.md").read_text()
    texts += [b for b in re.findall(r"```toml\n(.*?)```", readme, re.S) if "[nodes." in b]
    assert len(texts) >= 4
    for text in texts:
        jsonschema.validate(tomllib.loads(text), network_schema())


@pytest.mark.parametrize("key", sorted(k for k, v in NODE.items() if "type" in v))
def test_a_wrongly_typed_node_value_is_refused_by_both(key: str) -> None:
    bad = WRONG[NODE[key]["type"]]
    data = {"nodes": {"a": {"device": "generic", key: bad}}}
    assert not valid(data)
    with pytest.raises(ConfigError, match=re.escape(f"nodes.a.{key}")):
        parse_network(f"[nodes.a]\ndevice = 'generic'\n{key} = {bad!r}\n".replace("'", '"'))


def test_unknown_keys_and_models_are_refused_by_both() -> None:
    assert not valid({"nodes": {"a": {"colour": 1}}})
    link = {"nodes": ["a", "b"], "model": "depolarise", "fidelity": 0.9}  # no p_success
    two = {"a": {}, "b": {}}
    assert not valid({"nodes": two, "links": [link]})
    assert valid({"nodes": two, "links": [{**link, "p_success": 0.1, "cycle_ns": 1000}]})
    assert not valid({"nodes": two, "links": [{**link, "model": "teleporter"}]})
