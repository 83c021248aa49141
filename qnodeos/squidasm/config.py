"""SquidASM's network configuration (``squidasm.run.stack.config``) and its mapping
onto a qnodeos network.

The classes take the keyword arguments and attributes SquidASM's do, and load from a
``config.yaml`` the same way (``StackNetworkConfig.from_file``): ``stacks`` (name,
``qdevice_typ`` generic or nv, ``qdevice_cfg``), ``links`` (``typ`` perfect, depolarise
or heralded, ``cfg``) and ``clinks`` (instant or default with a ``delay``). Device and
link ``cfg`` may be objects or plain dicts (as YAML gives them); other top-level YAML
keys are anchors and are ignored.

:func:`to_network` maps a config onto a qnodeos network (a dict for
``qnodeos.Network.from_dict``), parameter by parameter:

- generic: ``num_qubits``; ``T1``/``T2`` (ns; 0 = no decay) -> the qubit kind's
  T1/T2; ``init_time``, ``single_qubit_gate_time``, ``two_qubit_gate_time``,
  ``measure_time`` -> durations; ``single_qubit_gate_depolar_prob`` -> every 1-qubit
  gate's depolarising error; ``two_qubit_gate_depolar_prob`` -> CNOT's and CZ's
  (qnodeos applies it as one two-qubit depolarising channel; NetSquid depolarises
  each of the two qubits with it).
- nv: ``num_qubits`` (electron + carbons); electron/carbon init, single-qubit and
  electron-carbon gate errors and durations, ``prob_error_0``/``prob_error_1`` ->
  readout p(0->1)/p(1->0), ``measure``, T1/T2 of electron and carbons. Carbon X/Y
  rotations get no error (SquidASM's NV model has only ``carbon_z_rot_depolar_prob``),
  nor do carbons dephase per entanglement attempt (no such parameter there).
- perfect -> a perfect link; depolarise (``fidelity``, ``prob_success``, ``t_cycle``
  ns, or ``length`` km with ``speed_of_light``) -> a Werner link; heralded (double
  click) -> qnodeos's double-click model with per-photon efficiency
  (1 - p_loss_init) 10^(-p_loss_length L/20) detector_efficiency, visibility as given
  and an attempt cycle of L / speed_of_light.
- instant clinks -> no delay; default clinks -> their ``delay`` (ns) on the
  quantum link between the two stacks.

What has no counterpart is refused with a :class:`~qnodeos.errors.ConfigError` naming
it: unknown keys, other device or link types, dark counts, ``random_bell_state``, a
classical delay between stacks without a quantum link, T2 > 2 T1.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import ConfigError

__all__ = [
    "CLinkConfig",
    "DefaultCLinkConfig",
    "DepolariseLinkConfig",
    "GenericQDeviceConfig",
    "HeraldedLinkConfig",
    "InstantCLinkConfig",
    "LinkConfig",
    "NVQDeviceConfig",
    "StackConfig",
    "StackNetworkConfig",
    "to_network",
]

IGNORED = {"dummy"}  # SquidASM's examples write `dummy: null` for "all defaults"


def _build(cls: type[Any], value: Any, where: str) -> Any:
    """``value`` (an instance of ``cls``, a dict of its fields, or None: defaults) as a
    ``cls``; unknown keys are refused by name."""
    if isinstance(value, cls):
        return value
    if value is None:
        return cls()
    if not isinstance(value, dict):
        raise ConfigError(f"{where}: expected {cls.__name__} fields, got {value!r}")
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(k for k in value if k not in known and k not in IGNORED)
    if unknown:
        raise ConfigError(
            f"{where}: unknown {cls.__name__} key(s) {', '.join(map(repr, unknown))}; "
            f"known: {', '.join(sorted(known))}"
        )
    try:
        return cls(**{k: v for k, v in value.items() if k in known})
    except TypeError as exc:
        raise ConfigError(f"{where}: {exc}") from None


def _yaml_file(path: str | Path) -> Any:
    import yaml

    try:
        return yaml.safe_load(Path(path).read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"cannot read {path}: {exc}") from None


class _FromFile:
    @classmethod
    def from_file(cls, path: str) -> Any:
        """Load from a YAML file (as SquidASM's ``from_file``)."""
        return cls.from_dict(_yaml_file(path), str(path))

    @classmethod
    def from_dict(cls, data: Any, where: str = "<config>") -> Any:
        return _build(cls, data, where)


@dataclass(kw_only=True)
class GenericQDeviceConfig(_FromFile):
    """A generic quantum device (SquidASM's defaults; times in ns)."""

    num_qubits: int = 2
    num_comm_qubits: int = 2  # not used, as in SquidASM: every generic qubit is one
    T1: float = 10_000_000_000
    T2: float = 1_000_000_000
    init_time: float = 10_000
    single_qubit_gate_time: float = 1_000
    two_qubit_gate_time: float = 100_000
    measure_time: float = 10_000
    single_qubit_gate_depolar_prob: float = 0.0
    two_qubit_gate_depolar_prob: float = 0.01

    @classmethod
    def perfect_config(cls) -> GenericQDeviceConfig:
        """No noise and no gate times."""
        return cls(
            init_time=0,
            single_qubit_gate_time=0,
            two_qubit_gate_time=0,
            measure_time=0,
            single_qubit_gate_depolar_prob=0.0,
            two_qubit_gate_depolar_prob=0.0,
        )


@dataclass(kw_only=True)
class NVQDeviceConfig(_FromFile):
    """An NV centre: electron + carbons (SquidASM's defaults; times in ns)."""

    num_qubits: int = 2
    electron_init_depolar_prob: float = 0.05
    electron_single_qubit_depolar_prob: float = 0.0
    prob_error_0: float = 0.05
    prob_error_1: float = 0.005
    carbon_init_depolar_prob: float = 0.05
    carbon_z_rot_depolar_prob: float = 0.001
    ec_gate_depolar_prob: float = 0.008
    electron_T1: float = 1_000_000_000
    electron_T2: float = 300_000_000
    carbon_T1: float = 150_000_000_000
    carbon_T2: float = 1_500_000_000
    carbon_init: float = 310_000
    carbon_rot_x: float = 500_000
    carbon_rot_y: float = 500_000
    carbon_rot_z: float = 500_000
    electron_init: float = 2_000
    electron_rot_x: float = 5
    electron_rot_y: float = 5
    electron_rot_z: float = 5
    ec_controlled_dir_x: float = 500_000
    ec_controlled_dir_y: float = 500_000
    measure: float = 3_700

    @classmethod
    def perfect_config(cls) -> NVQDeviceConfig:
        """SquidASM's defaults with every error set to 0."""
        return cls(
            electron_init_depolar_prob=0,
            electron_single_qubit_depolar_prob=0,
            prob_error_0=0,
            prob_error_1=0,
            carbon_init_depolar_prob=0,
            carbon_z_rot_depolar_prob=0,
            ec_gate_depolar_prob=0,
        )


@dataclass(kw_only=True)
class DepolariseLinkConfig(_FromFile):
    """Werner pairs of ``fidelity``, each attempt of ``t_cycle`` ns succeeding with
    ``prob_success`` (or the cycle from ``length`` km at ``speed_of_light`` km/s)."""

    fidelity: float
    prob_success: float
    t_cycle: float | None = None
    length: float | None = None
    speed_of_light: float = 200_000
    random_bell_state: bool = False


@dataclass(kw_only=True)
class HeraldedLinkConfig(_FromFile):
    """Double-click heralded entanglement through a midpoint station (lengths in km)."""

    length: float
    p_loss_init: float = 0
    p_loss_length: float = 0.25
    speed_of_light: float = 200_000
    dark_count_probability: float = 0
    detector_efficiency: float = 1.0
    visibility: float = 1.0
    num_resolving: bool = False
    emission_fidelity: float = 1.0
    emission_duration: float = 0.0
    collection_efficiency: float = 1.0


@dataclass(kw_only=True)
class InstantCLinkConfig(_FromFile):
    """Classical messages arrive at once."""


@dataclass(kw_only=True)
class DefaultCLinkConfig(_FromFile):
    """Classical messages take ``delay`` ns (or ``length`` km at ``speed_of_light``)."""

    delay: float | None = None
    length: float | None = None
    speed_of_light: float = 200_000


@dataclass(kw_only=True)
class StackConfig(_FromFile):
    """One end node ("stack"): its name and quantum device."""

    name: str
    qdevice_typ: str
    qdevice_cfg: Any = None

    @classmethod
    def perfect_generic_config(cls, name: str) -> StackConfig:
        return cls(
            name=name, qdevice_typ="generic", qdevice_cfg=GenericQDeviceConfig.perfect_config()
        )


@dataclass(kw_only=True)
class LinkConfig(_FromFile):
    """A quantum link between two stacks."""

    stack1: str
    stack2: str
    typ: str
    cfg: Any = None

    @classmethod
    def perfect_config(cls, stack1: str, stack2: str) -> LinkConfig:
        return cls(stack1=stack1, stack2=stack2, typ="perfect", cfg=None)


@dataclass(kw_only=True)
class CLinkConfig(_FromFile):
    """A classical link between two stacks."""

    stack1: str
    stack2: str
    typ: str
    cfg: Any = None

    @classmethod
    def perfect_config(cls, stack1: str, stack2: str) -> CLinkConfig:
        return cls(stack1=stack1, stack2=stack2, typ="instant", cfg=None)


@dataclass(kw_only=True)
class StackNetworkConfig(_FromFile):
    """The whole network: stacks, quantum links and (optional) classical links."""

    stacks: list[StackConfig]
    links: list[LinkConfig] = field(default_factory=list)
    clinks: list[CLinkConfig] | None = None

    @classmethod
    def from_dict(cls, data: Any, where: str = "<config>") -> StackNetworkConfig:
        if isinstance(data, cls):
            return data
        if not isinstance(data, dict) or "stacks" not in data:
            raise ConfigError(f"{where}: expected a table with stacks: (and links:, clinks:)")

        def items(key: str, kind: type[Any]) -> list[Any]:
            got = data.get(key) or []
            if not isinstance(got, list):
                raise ConfigError(f"{where}: {key} must be a list")
            return [_build(kind, v, f"{where}: {key}[{i}]") for i, v in enumerate(got)]

        clinks = items("clinks", CLinkConfig) if data.get("clinks") else None
        return cls(
            stacks=items("stacks", StackConfig), links=items("links", LinkConfig), clinks=clinks
        )


# -- the mapping onto qnodeos ----------------------------------------------------------------


def _t(ns: float) -> float:
    """A SquidASM coherence time (0: none) as qnodeos's (inf: none)."""
    return math.inf if ns == 0 else float(ns)


def _kind_times(t1: float, t2: float, where: str) -> dict[str, float]:
    t1_ns, t2_ns = _t(t1), _t(t2)
    if math.isfinite(t2_ns) and t2_ns > 2 * t1_ns:
        raise ConfigError(f"{where}: T2 = {t2} ns exceeds 2 T1 = {2 * t1} ns, which no qubit has")
    return {"t1_ns": t1_ns, "t2_ns": t2_ns}


def _generic(c: GenericQDeviceConfig, where: str) -> dict[str, Any]:
    one = {"duration_ns": float(c.single_qubit_gate_time),
           "error": float(c.single_qubit_gate_depolar_prob)}  # fmt: skip
    two = {"duration_ns": float(c.two_qubit_gate_time),
           "error": float(c.two_qubit_gate_depolar_prob)}  # fmt: skip
    kind = {
        **_kind_times(c.T1, c.T2, where),
        "init": {"duration_ns": float(c.init_time)},
        "gates": {g: dict(one) for g in ("x", "y", "z", "h", "s", "t", "rx", "ry", "rz")},
        "meas": {"duration_ns": float(c.measure_time)},
    }
    return {
        "device": "generic",
        "qubits": int(c.num_qubits),
        "params": {
            "kinds": {"qubit": kind},
            "two_qubit": {g: {"spec": two} for g in ("cnot", "cz")},
        },
    }


def _nv(c: NVQDeviceConfig, where: str) -> dict[str, Any]:
    e1 = float(c.electron_single_qubit_depolar_prob)
    rots = (("rx", c.electron_rot_x), ("ry", c.electron_rot_y), ("rz", c.electron_rot_z))
    electron = {
        **_kind_times(c.electron_T1, c.electron_T2, f"{where} (electron)"),
        "init": {"duration_ns": float(c.electron_init),
                 "error": float(c.electron_init_depolar_prob)},
        "gates": {g: {"duration_ns": float(d), "error": e1} for g, d in rots},
        "meas": {"duration_ns": float(c.measure), "p01": float(c.prob_error_0),
                 "p10": float(c.prob_error_1)},
    }  # fmt: skip
    carbon = {
        **_kind_times(c.carbon_T1, c.carbon_T2, f"{where} (carbon)"),
        "attempt_coherence": 1.0,  # SquidASM's NV model has no dephasing per attempt
        "init": {"duration_ns": float(c.carbon_init), "error": float(c.carbon_init_depolar_prob)},
        "gates": {
            "rx": {"duration_ns": float(c.carbon_rot_x), "error": 0.0},
            "ry": {"duration_ns": float(c.carbon_rot_y), "error": 0.0},
            "rz": {"duration_ns": float(c.carbon_rot_z),
                   "error": float(c.carbon_z_rot_depolar_prob)},
        },
    }  # fmt: skip
    ec = float(c.ec_gate_depolar_prob)
    two = {
        "crx": {"spec": {"duration_ns": float(c.ec_controlled_dir_x), "error": ec}},
        "cry": {"spec": {"duration_ns": float(c.ec_controlled_dir_y), "error": ec}},
    }
    kinds: dict[str, Any] = {"electron": electron}
    if c.num_qubits > 1:
        kinds["carbon"] = carbon
    else:
        two = {}
    params: dict[str, Any] = {"kinds": kinds}
    if two:
        params["two_qubit"] = two
    return {"device": "nv", "qubits": int(c.num_qubits), "params": params}


DEVICES: dict[str, tuple[type[Any], Callable[[Any, str], dict[str, Any]]]] = {
    "generic": (GenericQDeviceConfig, _generic),
    "nv": (NVQDeviceConfig, _nv),
}


def _quantum_link(lk: LinkConfig, where: str) -> dict[str, Any]:
    typ = lk.typ.lower()
    if typ == "perfect":
        if lk.cfg not in (None, {}) and not (isinstance(lk.cfg, dict) and set(lk.cfg) <= IGNORED):
            raise ConfigError(f"{where}: a perfect link takes no cfg, got {lk.cfg!r}")
        return {"model": "perfect", "cycle_ns": 1.0}
    if typ == "depolarise":
        d = _build(DepolariseLinkConfig, lk.cfg, f"{where}.cfg")
        if d.random_bell_state:
            raise ConfigError(
                f"{where}.cfg.random_bell_state: qnodeos hands out pairs corrected to Phi+"
            )
        if d.t_cycle is not None:
            cycle = float(d.t_cycle)
        elif d.length is not None:
            cycle = float(d.length) / float(d.speed_of_light) * 1e9
        else:
            raise ConfigError(f"{where}.cfg: a depolarise link needs t_cycle (or length)")
        if not 0.0 < d.prob_success <= 1.0:
            raise ConfigError(f"{where}.cfg.prob_success = {d.prob_success} not in (0, 1]")
        return {"model": "depolarise", "fidelity": float(d.fidelity),
                "p_success": float(d.prob_success), "cycle_ns": max(cycle, 1.0)}  # fmt: skip
    if typ in ("heralded", "heralded-double-click"):
        h = _build(HeraldedLinkConfig, lk.cfg, f"{where}.cfg")
        for name, value, ok in (
            ("dark_count_probability", h.dark_count_probability, 0),
            ("emission_fidelity", h.emission_fidelity, 1),
        ):
            if value != ok:
                raise ConfigError(
                    f"{where}.cfg.{name} = {value}: qnodeos's double-click model has no "
                    f"{name.replace('_', ' ')} (only {ok})"
                )
        eta = (
            (1 - h.p_loss_init)
            * 10 ** (-h.p_loss_length * h.length / 2 / 10)
            * h.detector_efficiency
            * h.collection_efficiency
        )
        cycle = h.length / h.speed_of_light * 1e9 + h.emission_duration
        return {"model": "double_click", "eta": eta, "visibility": float(h.visibility),
                "cycle_ns": max(cycle, 1.0)}  # fmt: skip
    raise ConfigError(
        f"{where}.typ: {lk.typ!r} cannot be mapped onto qnodeos (perfect, depolarise, heralded)"
    )


def _clink_delay_s(cl: CLinkConfig, where: str) -> float:
    typ = cl.typ.lower()
    if typ == "instant":
        return 0.0
    if typ == "default":
        d = _build(DefaultCLinkConfig, cl.cfg, f"{where}.cfg")
        if d.delay is not None:
            return float(d.delay) * 1e-9
        if d.length is not None:
            return float(d.length) / float(d.speed_of_light)
        return 0.0
    raise ConfigError(f"{where}.typ: clink {cl.typ!r} cannot be mapped (instant, default)")


def to_network(cfg: StackNetworkConfig, name: str = "squidasm", seed: int = 0) -> dict[str, Any]:
    """The qnodeos network (a dict for ``qnodeos.Network.from_dict``) of ``cfg``: one
    node per stack, at speed inf (simulated time), seeds ``seed`` + i."""
    cfg = StackNetworkConfig.from_dict(cfg)
    out: dict[str, Any] = {"name": name, "nodes": {}, "links": []}
    for i, st in enumerate(cfg.stacks):
        where = f"stacks[{i}] ({st.name})"
        if st.name in out["nodes"]:
            raise ConfigError(f"{where}: a second stack named {st.name!r}")
        typ = str(st.qdevice_typ).lower()
        if typ not in DEVICES:
            raise ConfigError(
                f"{where}.qdevice_typ: {st.qdevice_typ!r} cannot be mapped onto qnodeos "
                f"(generic, nv)"
            )
        cls, mapper = DEVICES[typ]
        node = mapper(_build(cls, st.qdevice_cfg, f"{where}.qdevice_cfg"), where)
        out["nodes"][st.name] = node | {"speed": math.inf, "seed": seed + 1 + i}
    names = list(out["nodes"])

    def ends(a: str, b: str, where: str) -> tuple[str, str]:
        for s in (a, b):
            if s not in out["nodes"]:
                raise ConfigError(f"{where}: no stack {s!r} (stacks: {', '.join(names)})")
        if a == b:
            raise ConfigError(f"{where}: a link needs two different stacks, got {a!r} twice")
        return a, b

    links: dict[frozenset[str], dict[str, Any]] = {}
    for i, lk in enumerate(cfg.links):
        where = f"links[{i}]"
        a, b = ends(lk.stack1, lk.stack2, where)
        if frozenset((a, b)) in links:
            raise ConfigError(f"{where}: a second link between {a} and {b}")
        entry = {"nodes": [a, b], **_quantum_link(lk, where), "seed": seed + 100 + i}
        links[frozenset((a, b))] = entry
    for i, cl in enumerate(cfg.clinks or []):
        where = f"clinks[{i}]"
        a, b = ends(cl.stack1, cl.stack2, where)
        delay = _clink_delay_s(cl, where)
        if delay > 0:
            held = links.get(frozenset((a, b)))
            if held is None:
                raise ConfigError(
                    f"{where}: a classical delay between {a} and {b} needs a quantum link "
                    f"between them on qnodeos (it carries the delay)"
                )
            held["delay_s"] = delay
    out["links"] = list(links.values())
    return out
