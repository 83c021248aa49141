"""A NetQASM app folder as a qnodeos network (``qnodeos netqasm APP_DIR``).

A folder holds ``app_<party>.py`` per party (each with ``main(app_config=None,
**inputs)``), and optionally ``roles.yaml`` (party -> node; default: each party on a
node of its own name), ``<party>.yaml`` (the party's inputs) and ``network.yaml``
(NetQASM's network description). The network the parties run on is, in order:

1. ``--network NET.toml``: its nodes and links (its own apps are not run);
2. the folder's ``network.yaml``, mapped onto qnodeos (see ``from_netqasm_yaml``);
3. the embedded default: one noiseless generic 5-qubit node per node name, at speed
   inf, and one link between every two of them (perfect, or a Werner link of
   ``--fidelity``).

Each party becomes one app (``qnodeos.netqasm.runner``) named as the party, on its
node, in a process of its own.
"""

from __future__ import annotations

import hashlib
import itertools
import re
import tomllib
from pathlib import Path
from typing import Any

from ..errors import ConfigError

DEFAULT_QUBITS = 5
VALID_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_-]{0,31}$")  # as a network's name must be


def _yaml(path: Path) -> Any:
    import yaml

    try:
        return yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"cannot read {path}: {exc}") from None


def parties(app_dir: Path) -> list[str]:
    found = sorted(p.stem.removeprefix("app_") for p in app_dir.glob("app_*.py"))
    if not found:
        raise ConfigError(f"{app_dir} holds no app_<party>.py: not a NetQASM app folder")
    return found


def roles(app_dir: Path, names: list[str]) -> dict[str, str]:
    path = app_dir / "roles.yaml"
    got = _yaml(path) if path.exists() else None
    if got is None:
        return {p: p for p in names}
    if not isinstance(got, dict) or not all(isinstance(v, str) for v in got.values()):
        raise ConfigError(f"{path}: expected party: node lines")
    missing = [p for p in names if p not in got]
    if missing:
        raise ConfigError(f"{path}: no node for part(y/ies) {', '.join(missing)}")
    return {p: str(got[p]) for p in names}


def inputs(app_dir: Path, party: str) -> dict[str, Any]:
    path = app_dir / f"{party}.yaml"
    got = _yaml(path) if path.exists() else None
    if got is None:
        return {}
    if not isinstance(got, dict):
        raise ConfigError(f"{path}: expected name: value lines (the party's inputs)")
    return {str(k): v for k, v in got.items()}


def given_roles(placed: list[str], names: list[str]) -> dict[str, str]:
    """``PARTY=NODE`` settings as {party: node}."""
    out: dict[str, str] = {}
    for item in placed:
        party, eq, node = item.partition("=")
        if not eq or not party or not node:
            raise ConfigError(f"--role {item!r}: write PARTY=NODE, e.g. sender=alice")
        if party not in names:
            raise ConfigError(f"--role {item!r}: no party {party!r} (parties: {', '.join(names)})")
        out[party] = node
    return out


def given_inputs(given: list[str], names: list[str]) -> dict[str, dict[str, Any]]:
    """``PARTY.NAME=VALUE`` settings as {party: {name: value}}."""
    import yaml

    out: dict[str, dict[str, Any]] = {}
    for item in given:
        key, eq, text = item.partition("=")
        party, dot, name = key.partition(".")
        if not eq or not dot or not name:
            raise ConfigError(f"--input {item!r}: write PARTY.NAME=VALUE, e.g. sender.phi=0.5")
        if party not in names:
            raise ConfigError(f"--input {item!r}: no party {party!r} (parties: {', '.join(names)})")
        try:
            value = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise ConfigError(f"--input {item!r}: {exc}") from None
        out.setdefault(party, {})[name] = value
    return out


def network_name(folder_name: str) -> str:
    """The network name for an app folder: ``netqasm-`` and the folder's name, which
    may hold anything a file name can (dots, spaces, any length): a name that is not a
    valid network name as it is becomes its valid characters, cut short, and a hash of
    the whole name, so that different folders keep different names.

    >>> network_name("teleport")
    'netqasm-teleport'
    >>> network_name("netqasm-teleport.v2")
    'netqasm-netqasm-tel-66604b07'
    """
    name = f"netqasm-{folder_name}"
    if VALID_NAME.match(name):
        return name
    digest = hashlib.sha256(folder_name.encode("utf-8", "surrogateescape")).hexdigest()[:8]
    kept = re.sub(r"[^A-Za-z0-9_-]+", "-", folder_name).strip("-_")[:11].rstrip("-_")
    return f"netqasm-{kept}-{digest}" if kept else f"netqasm-{digest}"


def default_network(nodes: list[str], fidelity: float | None) -> dict[str, Any]:
    """One noiseless generic node per name and a link between every two."""
    out: dict[str, Any] = {"nodes": {}, "links": []}
    for i, n in enumerate(nodes):
        out["nodes"][n] = {"device": "generic", "qubits": DEFAULT_QUBITS, "speed": float("inf")}
        out["nodes"][n]["seed"] = 1 + i
    for i, (a, b) in enumerate(itertools.combinations(nodes, 2)):
        link: dict[str, Any] = {"nodes": [a, b], "cycle_ns": 1000, "seed": 100 + i}
        if fidelity is None or fidelity >= 1.0:
            link["model"] = "perfect"
        else:
            link |= {"model": "depolarise", "fidelity": fidelity, "p_success": 0.5}
        out["links"].append(link)
    return out


_HARDWARE = {"generic": "generic", "nv": "nv", "trappedion": "trapped_ion"}
_NOISE = {"nonoise": None, "depolarise": "depolarise", "discretedepolarise": "depolarise"}


def from_netqasm_yaml(path: Path) -> dict[str, Any]:
    """NetQASM's ``network.yaml`` as qnodeos nodes and links:

    - ``nodes[].hardware`` Generic / NV / TrappedIon -> device generic / nv /
      trapped_ion, with as many qubits as ``qubits`` lists (NV: the electron first);
    - Generic nodes' qubit ``t1``/``t2`` (ns; 0 = none) -> ``params.kinds.qubit``;
      NV and ion nodes keep qnodeos's measured parameter sets (hardware.md);
    - ``gate_fidelity`` < 1 on a generic node -> a depolarising error of 1 - F on
      every gate (qnodeos's per-op ``error``);
    - ``links[]`` NoNoise -> perfect; Depolarise / DiscreteDepolarise with
      ``fidelity`` -> a Werner (depolarise) link of that fidelity; Bitflip is refused.
    """
    data = _yaml(path)
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected nodes: and links:")
    out: dict[str, Any] = {"nodes": {}, "links": []}
    for i, node in enumerate(data.get("nodes") or []):
        name = str(node.get("name", ""))
        hw = str(node.get("hardware", "generic")).lower()
        if hw not in _HARDWARE:
            raise ConfigError(f"{path}: nodes[{i}].hardware {hw!r}; use Generic, NV, TrappedIon")
        qubits = node.get("qubits") or [{}] * DEFAULT_QUBITS
        entry: dict[str, Any] = {
            "device": _HARDWARE[hw],
            "qubits": len(qubits),
            "speed": float("inf"),
        }
        entry["seed"] = 1 + i
        if hw == "generic":
            kind: dict[str, Any] = {}
            t1 = max(float(q.get("t1", 0) or 0) for q in qubits)
            t2 = max(float(q.get("t2", 0) or 0) for q in qubits)
            if t1 > 0:
                kind["t1_ns"] = t1
            if t2 > 0:
                kind["t2_ns"] = min(t2, 2 * t1) if t1 > 0 else t2
            fid = float(node.get("gate_fidelity", 1.0))
            if fid < 1.0:
                err = {"error": 1.0 - fid}
                kind["gates"] = {g: err for g in ("x", "y", "z", "h", "s", "t", "rx", "ry", "rz")}
            if kind:
                entry["params"] = {"kinds": {"qubit": kind}}
        out["nodes"][name] = entry
    for i, link in enumerate(data.get("links") or []):
        a, b = str(link.get("node_name1")), str(link.get("node_name2"))
        noise = str(link.get("noise_type", "NoNoise")).lower()
        if noise not in _NOISE:
            raise ConfigError(
                f"{path}: links[{i}].noise_type {link.get('noise_type')!r} is not supported "
                f"(NoNoise, Depolarise, DiscreteDepolarise)"
            )
        entry = {"nodes": [a, b], "cycle_ns": 1000, "seed": 100 + i}
        fid = float(link.get("fidelity", 1.0))
        if _NOISE[noise] is None or fid >= 1.0:
            entry["model"] = "perfect"
        else:
            entry |= {"model": "depolarise", "fidelity": fid, "p_success": 0.5}
        out["links"].append(entry)
    return out


def network_for(
    app_dir: str,
    network: str | None = None,
    *,
    fidelity: float | None = None,
    num: int = 1,
    states: bool = False,
    log_dir: str | None = None,
    given: list[str] | None = None,
    placed: list[str] | None = None,
) -> dict[str, Any]:
    """The qnodeos network (as a dict, for ``qnodeos.Network.from_dict``) that runs the
    NetQASM app folder ``app_dir``. ``given``: inputs as ``PARTY.NAME=VALUE`` (VALUE
    read as YAML), over those of the folder's ``<party>.yaml``; ``placed``: roles as
    ``PARTY=NODE``, over the folder's ``roles.yaml``."""
    folder = Path(app_dir).resolve()
    if not folder.is_dir():
        raise ConfigError(f"{app_dir} is not a directory")
    names = parties(folder)
    role = roles(folder, names) | given_roles(placed or [], names)
    nodes = sorted(set(role.values()))
    if network is not None:
        try:
            base = tomllib.loads(Path(network).read_text())
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise ConfigError(f"cannot read network file {network}: {exc}") from None
        base.pop("apps", None)
    elif (folder / "network.yaml").exists():
        base = from_netqasm_yaml(folder / "network.yaml")
    else:
        base = default_network(nodes, fidelity)
    missing = [n for n in nodes if n not in base.get("nodes", {})]
    if missing:
        raise ConfigError(
            f"the parties run on node(s) {', '.join(missing)}, which the network does not have "
            f"(its nodes: {', '.join(sorted(base.get('nodes', {})))}); map parties to nodes "
            f"in {folder / 'roles.yaml'}"
        )
    extra = given_inputs(given or [], names)
    base.setdefault("name", network_name(folder.name))
    base["apps"] = []
    for p in names:
        args: dict[str, Any] = {
            "app_dir": str(folder),
            "party": p,
            "roles": role,
            "inputs": inputs(folder, p) | extra.get(p, {}),
            # the node's qubits, shared by the parties on it
            "qubits": int(base["nodes"][role[p]].get("qubits", DEFAULT_QUBITS))
            // sum(1 for q in names if role[q] == role[p]),
            "num": num,
            "states": states,
        }
        if log_dir is not None:
            args["log_dir"] = str(Path(log_dir) / p)
        base["apps"].append({"name": p, "node": role[p], "module": "qnodeos.netqasm.runner"})
        base["apps"][-1]["args"] = args
    return base
