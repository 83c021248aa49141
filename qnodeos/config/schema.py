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

from qnodeos.netlink.fibre import ATTENUATION_DB_KM, MAX_LENGTH_KM, REFRACTIVE_INDEX
from qnodeos.netlink.models import MODELS
from qnodeos.netlink.routing import ROUTE_COSTS

from ..hardware.params import DEVICES
from ..kernel.memory import PLACEMENTS
from ..kernel.scheduler import POLICIES
from .chain import MAX_NODES as MAX_CHAIN
from .links import LINK_KEYS, MAX_PERIOD
from .network import APP_KEYS, MAX_APPS, NODE_KEYS

NUM = {"type": "number"}
SECONDS = {"type": "number", "minimum": 0}
NAME = {"type": "string", "pattern": "^[A-Za-z][A-Za-z0-9_-]{0,31}$"}

NODE: dict[str, dict[str, Any]] = {
    "device": {"enum": sorted(DEVICES), "description": "the simulated device"},
    "qubits": {
        "type": "integer",
        "minimum": 1,
        "maximum": 16,
        "description": "physical qubits in all (NV: the electron and carbons)",
    },
    "speed": {
        "type": "number",
        "exclusiveMinimum": 0,
        "description": "device ns per wall ns; `inf`: as fast as the machine goes",
    },
    "seed": {"type": "integer", "description": "the device's RNG seed (omit: random)"},
    "policy": {"enum": list(POLICIES), "description": "how queued blocks are chosen"},
    "placement": {
        "enum": list(PLACEMENTS),
        "description": "where new qubits go: lowest index first (NV: the electron), or "
        "memory first (NV: carbons, the electron left to the network)",
    },
    "lease_s": {
        "type": "number",
        "minimum": 0.05,
        "maximum": 3600,
        "description": "an app silent this long loses its session",
    },
    "budget": {"type": "integer", "minimum": 1, "description": "instructions per block"},
    "max_wait_s": {
        **SECONDS,
        "maximum": 3600,
        "description": "longest single wait in a block (device s)",
    },
    "max_block_s": {
        **SECONDS,
        "maximum": 86400,
        "description": "most device time one block may take",
    },
    "starvation_s": {
        "type": "number",
        "minimum": 0.001,
        "maximum": 3600,
        "description": "a block passed over this long (priority, edf) goes first",
    },
    "peer_timeout_s": {
        "type": "number",
        "minimum": 0.3,
        "maximum": 3600,
        "description": "a linked node silent this long is taken as gone",
    },
    "exclusive_apps": {
        "type": "array",
        "items": {"type": "string"},
        "description": "app names that may connect with `exclusive=True`",
    },
    "max_apps": {
        "type": "integer",
        "minimum": 1,
        "maximum": MAX_APPS,
        "description": "apps connected at once",
    },
    "app_endpoint": {
        "type": "string",
        "description": "where apps reach the node (default: ipc:// in the runtime directory)",
    },
    "qdevice_endpoint": {
        "type": "string",
        "description": "where the classical process reaches its quantum process",
    },
    "peer_endpoint": {
        "type": "string",
        "description": "where other nodes' classical processes reach it",
    },
    "qpeer_endpoint": {
        "type": "string",
        "description": "where other nodes' quantum processes reach it",
    },
    "peer_bind": {"type": "string", "description": "what peer_endpoint binds, if not itself"},
    "qpeer_bind": {"type": "string", "description": "what qpeer_endpoint binds, if not itself"},
    "host": {"type": "string", "description": "--cluster: the host to run this node on"},
    "params": {"type": "object", "description": "device parameter overrides (kinds.NAME...)"},
}

# what each link model's parameters mean (the schema's and the docs' descriptions)
PARAMS = {
    "cycle_ns": "device time of one attempt (ns): the pair rate is p / cycle_ns",
    "fidelity": "fidelity of the Werner state delivered",
    "p_success": "success probability per attempt",
    "alpha": "bright-state population: F ≈ 1 − alpha, p ≈ 2·alpha·eta",
    "eta": "detection efficiency",
    "visibility": "two-photon interference visibility",
    "dark_count": "dark-count probability per attempt",
}
MODEL_HELP = {
    "perfect": "every attempt succeeds with a perfect Φ+ pair",
    "depolarise": "a Werner state of `fidelity`, with probability `p_success` per attempt",
    "single_click": "single-click heralding: p ≈ 2αη, F ≈ 1 − α",
    "double_click": "double-click (Barrett–Kok): p = η²/2, F = (1 + V)/2",
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
        "nodes": {
            "type": "array",
            "items": {"type": "string"},
            "minItems": 2,
            "maxItems": 2,
            "description": "the two nodes (the first one's quantum process hosts the "
            "heralding station)",
        },
        "delay_s": {
            "type": "number",
            "minimum": 0,
            "maximum": 60,
            "description": "classical delay each way between the two nodes (s; default: "
            "light's travel time over length_km, else 0)",
        },
        "seed": {"type": "integer", "description": "the heralding station's RNG seed"},
        "length_km": {
            "type": "number",
            "minimum": 0,
            "maximum": MAX_LENGTH_KM,
            "description": "fibre length between the nodes (km): photon loss, a longer "
            "attempt cycle and the classical delay follow from it (omit: side by side)",
        },
        "attenuation_db_km": {
            "type": "number",
            "minimum": 0,
            "maximum": 100,
            "description": f"fibre loss, dB/km (default {ATTENUATION_DB_KM})",
        },
        "refractive_index": {
            "type": "number",
            "minimum": 1,
            "maximum": 4,
            "description": f"light goes at c / this in the fibre (default {REFRACTIVE_INDEX})",
        },
        "station": {
            "type": "string",
            "description": "where the heralding station is on the fibre: "
            "`midpoint` (default) or the name of one of the link's two nodes",
        },
        "schedule": {
            **SCHEDULE,
            "description": "`continuous`, or time bins: `{ bin_ns, period, bins }`",
        },
    }
    variants = []
    for kind, cls in MODELS.items():
        fields = [f for f in dataclasses.fields(cls) if f.init]
        props = {
            **common,
            "model": {"const": kind, "description": "the link model"},
            **{f.name: {**NUM, "description": PARAMS.get(f.name, "")} for f in fields},
        }
        required = [
            f.name
            for f in fields
            if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
        ]
        variants.append(
            {
                "type": "object",
                "description": MODEL_HELP.get(kind, ""),
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
            "name": {**NAME, "description": "the network's name (qnodeos down NAME)"},
            "keys": {
                "type": "string",
                "description": "CURVE key directory, relative to the file (qnodeos keys)",
            },
            "nodes": {
                "type": "object",
                "description": "One table per node, named by the node's name.",
                "propertyNames": NAME,
                "additionalProperties": {
                    "type": "object",
                    "properties": NODE,
                    "additionalProperties": False,
                },
            },
            "links": {
                "type": "array",
                "description": "One table per heralded link between two nodes; the keys "
                "depend on its `model`.",
                "items": _link(),
            },
            "network": {
                "type": "object",
                "description": "The network layer (end-to-end pairs over repeaters).",
                "properties": {
                    "protocol": {
                        "type": "string",
                        "description": "repeaters' policy, 'module:Class' (NetworkProtocol)",
                    },
                    "args": {"type": "object", "description": "the protocol's arguments"},
                    "route_cost": {
                        "enum": list(ROUTE_COSTS),
                        "description": "what a path costs: `hops` (default), `rate` (each "
                        "link's expected time per pair) or `fidelity` (-log of each link's "
                        "Werner parameter: the best end-to-end fidelity)",
                    },
                },
                "additionalProperties": False,
            },
            "chain": {
                "type": "object",
                "description": "A repeater chain n0 - n1 - ... made into nodes and links "
                "(apps may name its ends chain.first and chain.last)",
                "properties": {
                    "nodes": {
                        "type": "integer",
                        "minimum": 2,
                        "maximum": MAX_CHAIN,
                        "description": "how many nodes in a line",
                    },
                    "node": {
                        "type": "object",
                        "properties": NODE,
                        "additionalProperties": False,
                        "description": "every node's table (a seed is shifted by its index)",
                    },
                    "link": {
                        "description": "every link's table, without nodes (a seed is "
                        "shifted by its index)",
                    },
                },
                "required": ["nodes"],
                "additionalProperties": False,
            },
            "apps": {
                "type": "array",
                "description": "One table per app that `qnodeos run` starts.",
                "items": {
                    "type": "object",
                    "properties": {
                        "node": {"type": "string", "description": "the node it runs on"},
                        "module": {
                            "type": "string",
                            "description": "a module with `async def main(node, **args)`: "
                            "importable, beside this file, or in the current directory",
                        },
                        "name": {
                            "type": "string",
                            "description": "its name on the node (default: MODULE-INDEX)",
                        },
                        "args": {
                            "type": "object",
                            "description": "keyword arguments for `main`, checked against "
                            "its signature before any node starts",
                        },
                    },
                    "required": ["node", "module"],
                    "additionalProperties": False,
                },
            },
        },
        "required": [],  # nodes, or a chain that makes them:
        "anyOf": [{"required": ["nodes"]}, {"required": ["chain"]}],
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
