"""A JSON Schema of the network file, for editors that complete and check TOML keys
(``qnodeos schema > network.schema.json``; e.g. Taplo / Even Better TOML: put
``#:schema ./network.schema.json`` at the top of the file).

It is built from what the loader (``config.py``) knows: its key sets, the devices,
scheduling policies and placements it accepts, the link models and their parameters
(``qnodeos.netlink.models``), and the ranges it enforces. ``tests/test_schema.py`` checks the
two agree: every key the schema lists is one the loader takes, and a value of the wrong
type is refused by the loader too.
"""

from __future__ import annotations

import dataclasses
import json
from typing import Any

from qnodeos.netlink.models import MODELS

from ..hardware.params import DEVICES
from ..kernel.memory import PLACEMENTS
from ..kernel.scheduler import POLICIES
from .network import APP_KEYS, LINK_KEYS, MAX_PERIOD, NODE_KEYS

NUM = {"type": "number"}
SECONDS = {"type": "number", "minimum": 0}
NAME = {"type": "string", "pattern": "^[A-Za-z][A-Za-z0-9_-]{0,31}$"}

NODE: dict[str, dict[str, Any]] = {
    "device": {"enum": sorted(DEVICES), "description": "the simulated device"},
    "qubits": {"type": "integer", "minimum": 1, "maximum": 16},
    "speed": {"type": "number", "exclusiveMinimum": 0, "description": "device ns per wall ns"},
    "seed": {"type": "integer", "description": "the device's RNG seed (omit: random)"},
    "policy": {"enum": list(POLICIES), "description": "how queued blocks are chosen"},
    "placement": {"enum": list(PLACEMENTS), "description": "where new qubits go"},
    "lease_s": {"type": "number", "minimum": 0.05, "maximum": 3600},
    "budget": {"type": "integer", "minimum": 1, "description": "instructions per block"},
    "max_wait_s": {**SECONDS, "maximum": 3600},
    "max_block_s": {**SECONDS, "maximum": 86400},
    "starvation_s": {"type": "number", "minimum": 0.001, "maximum": 3600},
    "peer_timeout_s": {"type": "number", "minimum": 0.3, "maximum": 3600},
    "exclusive_apps": {"type": "array", "items": {"type": "string"}},
    "app_endpoint": {"type": "string"},
    "qdevice_endpoint": {"type": "string"},
    "peer_endpoint": {"type": "string"},
    "qpeer_endpoint": {"type": "string"},
    "params": {"type": "object", "description": "device parameter overrides (kinds.NAME...)"},
}

SCHEDULE = {
    "oneOf": [
        {"const": "continuous"},
        {
            "type": "object",
            "properties": {
                "bin_ns": {"type": "number", "exclusiveMinimum": 0},
                "period": {"type": "integer", "minimum": 1, "maximum": MAX_PERIOD},
                "bins": {"type": "array", "items": {"type": "integer", "minimum": 0}},
            },
            "required": ["bin_ns", "period", "bins"],
            "additionalProperties": False,
        },
    ]
}


def _link() -> dict[str, Any]:
    common: dict[str, Any] = {
        "nodes": {"type": "array", "items": {"type": "string"}, "minItems": 2, "maxItems": 2},
        "delay_s": {"type": "number", "minimum": 0, "maximum": 60},
        "seed": {"type": "integer"},
        "schedule": SCHEDULE,
    }
    variants = []
    for kind, cls in MODELS.items():
        fields = [f for f in dataclasses.fields(cls) if f.init]
        props = {**common, "model": {"const": kind}, **{f.name: NUM for f in fields}}
        required = [
            f.name
            for f in fields
            if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
        ]
        variants.append(
            {
                "type": "object",
                "properties": props,
                "required": ["nodes", *(["model"] if kind != "perfect" else []), *required],
                "additionalProperties": False,
            }
        )
    return {"oneOf": variants}


def network_schema() -> dict[str, Any]:
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "qnodeos network file",
        "type": "object",
        "properties": {
            "name": NAME,
            "keys": {"type": "string", "description": "CURVE key directory (qnodeos keys)"},
            "nodes": {
                "type": "object",
                "propertyNames": NAME,
                "additionalProperties": {
                    "type": "object",
                    "properties": NODE,
                    "additionalProperties": False,
                },
            },
            "links": {"type": "array", "items": _link()},
            "network": {
                "type": "object",
                "description": "the network layer (end-to-end pairs over repeaters)",
                "properties": {
                    "protocol": {
                        "type": "string",
                        "description": "repeaters' policy, 'module:Class' (NetworkProtocol)",
                    },
                    "args": {"type": "object", "description": "the protocol's arguments"},
                },
                "additionalProperties": False,
            },
            "apps": {
                "type": "array",
                "items": {
                    "type": "object",
                    "properties": {
                        "node": {"type": "string"},
                        "module": {"type": "string"},
                        "name": {"type": "string"},
                        "args": {"type": "object"},
                    },
                    "required": ["node", "module"],
                    "additionalProperties": False,
                },
            },
        },
        "required": ["nodes"],
        "additionalProperties": False,
    }


def check_against_loader() -> None:
    """The schema names exactly the keys the loader takes (AssertionError if not)."""
    assert set(NODE) == set(NODE_KEYS), set(NODE) ^ set(NODE_KEYS)
    app = network_schema()["properties"]["apps"]["items"]["properties"]
    assert set(app) == set(APP_KEYS)
    model_fields = {f.name for c in MODELS.values() for f in dataclasses.fields(c)}
    assert set(_link()["oneOf"][0]["properties"]) - model_fields == set(LINK_KEYS)


def main() -> None:
    print(json.dumps(network_schema(), indent=2))
