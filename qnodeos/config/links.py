"""A network file's ``[[links]]``: each a heralded link between two nodes, its model
(``qnodeos.netlink.models``), over fibre or not (``qnodeos.netlink.fibre``), its
classical delay and its time bins; every key checked, a ConfigError naming it."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from qnodeos.netlink.fibre import MIDPOINT, Fibre, over_fibre
from qnodeos.netlink.models import MODELS, LinkModel
from qnodeos.netlink.schedule import TimeBins

from ..errors import ConfigError
from .fields import get as _get
from .fields import unknown as _unknown

# a link's fibre (netlink/fibre.py): its length, and what follows from it
FIBRE_KEYS = ("length_km", "attenuation_db_km", "refractive_index", "station")
LINK_KEYS = {"nodes", "model", "delay_s", "seed", "schedule", *FIBRE_KEYS}
MAX_PERIOD = 1024  # bins in a schedule's repeating pattern


@dataclass(frozen=True, kw_only=True)
class LinkConfig:
    """A quantum link: ``nodes[0]`` hosts the heralding station (in its quantum
    process), which also holds the pairs' joint state until they move."""

    nodes: tuple[str, str]
    model: LinkModel
    delay_s: float = 0.0
    seed: int | None = None
    schedule: TimeBins | None = None  # None: continuous (attempts at any time)
    # its fibre (None: the nodes side by side); ``model`` is then the link over it
    fibre: Fibre | None = None

    @property
    def name(self) -> str:
        return f"{self.nodes[0]}-{self.nodes[1]}"

    def other(self, node: str) -> str:
        return self.nodes[1] if node == self.nodes[0] else self.nodes[0]


def parse_link(i: int, t: Any, speeds: Mapping[str, float], src: str) -> LinkConfig:
    """Link table ``t``, the ``i``-th of file ``src``, between nodes of ``speeds``."""
    where = f"{src}: links[{i}]"
    if not isinstance(t, dict):
        raise ConfigError(f"{where}: expected a table")
    ends = _get(t, "nodes", list, where, None)
    if ends is None or len(ends) != 2 or not all(isinstance(n, str) for n in ends):
        raise ConfigError(f"{where}.nodes: expected two node names, got {ends!r}")
    for n in ends:
        if n not in speeds:
            raise ConfigError(f"{where}.nodes: no node named {n!r}; nodes: {', '.join(speeds)}")
    if ends[0] == ends[1]:
        raise ConfigError(f"{where}.nodes: a link needs two different nodes, got {ends!r}")
    a, b = ends
    if speeds[a] != speeds[b]:
        raise ConfigError(
            f"{where}: nodes {a!r} (speed {speeds[a]}) and {b!r} (speed {speeds[b]}) "
            f"must run at the same speed to share entangled states"
        )
    kind = _get(t, "model", str, where, "perfect")
    cls = MODELS.get(kind)
    if cls is None:
        raise ConfigError(f"{where}.model: unknown {kind!r}; known: {', '.join(MODELS)}")
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    params = {k: v for k, v in t.items() if k not in LINK_KEYS}
    fibre = _fibre(t, ends, where)
    _unknown(where, params, set(fields) | LINK_KEYS, f" for model {kind!r}")
    for k, v in params.items():
        if isinstance(v, bool) or not isinstance(v, int | float):
            raise ConfigError(f"{where}.{k}: expected a number, got {v!r}")
    missing = [
        f.name
        for f in fields.values()
        if f.name not in params
        and f.default is dataclasses.MISSING
        and f.default_factory is dataclasses.MISSING
    ]
    if missing:
        raise ConfigError(f"{where}: model {kind!r} needs {', '.join(sorted(missing))}")
    try:
        model = cls(**{k: float(v) for k, v in params.items()})
        if fibre is not None:
            model = over_fibre(model, fibre)
    except ConfigError as exc:
        raise ConfigError(f"{where}: {exc}") from None
    light = fibre.one_way_s() if fibre is not None else 0.0
    delay = float(_get(t, "delay_s", (int, float), where, light))
    if not 0.0 <= delay <= 60.0:
        raise ConfigError(f"{where}.delay_s: must be in 0..60, got {delay}")
    if delay < light:
        raise ConfigError(
            f"{where}.delay_s: {delay} s is less than light takes over its fibre "
            f"({light:.6g} s over {fibre.length_km if fibre else 0} km); leave delay_s out "
            f"to take that"
        )
    return LinkConfig(
        nodes=(ends[0], ends[1]),
        model=model,
        delay_s=delay,
        seed=_get(t, "seed", int, where, None),
        schedule=_schedule(t.get("schedule", "continuous"), model, f"{where}.schedule"),
        fibre=fibre,
    )


def _fibre(t: dict[str, Any], ends: list[str], where: str) -> Fibre | None:
    """A link's fibre: ``length_km`` (km), ``attenuation_db_km`` (dB/km),
    ``refractive_index`` and ``station`` ("midpoint" or one of its two nodes); None
    without ``length_km`` (then none of the others may be given)."""
    given = [k for k in FIBRE_KEYS if k in t]
    if "length_km" not in t:
        if given:
            raise ConfigError(f"{where}: {', '.join(given)} need(s) the fibre's length_km")
        return None
    nums = {
        k: float(_get(t, k, (int, float), where, 0.0))
        for k in ("length_km", "attenuation_db_km", "refractive_index")
        if k in t
    }
    station = _get(t, "station", str, where, MIDPOINT)
    at: dict[str, float | None] = {MIDPOINT: None, ends[0]: 0.0, ends[1]: nums["length_km"]}
    if station not in at:
        raise ConfigError(
            f"{where}.station: {station!r} is not {MIDPOINT!r} nor one of the link's nodes "
            f"({ends[0]!r}, {ends[1]!r})"
        )
    try:
        return Fibre(**nums, station_km=at[station])
    except ConfigError as exc:
        raise ConfigError(f"{where}: {exc}") from None


def _schedule(value: Any, model: LinkModel, where: str) -> TimeBins | None:
    """``schedule = "continuous"`` or ``{ bin_ns = B, period = P, bins = [i, ...] }``."""
    if value == "continuous":
        return None
    if not isinstance(value, dict):
        raise ConfigError(
            f'{where}: expected "continuous" or a table {{ bin_ns = ..., period = ..., '
            f"bins = [...] }}, got {value!r}"
        )
    _unknown(where, value, {"bin_ns", "period", "bins"})
    bin_ns = _get(value, "bin_ns", (int, float), where, None)
    period = _get(value, "period", int, where, None)
    bins = _get(value, "bins", list, where, None)
    if bin_ns is None or period is None or bins is None:
        raise ConfigError(f"{where}: needs bin_ns, period and bins")
    if not (isinstance(bin_ns, int | float) and math.isfinite(bin_ns) and bin_ns >= model.cycle_ns):
        raise ConfigError(
            f"{where}.bin_ns: {bin_ns} ns is shorter than one attempt cycle of this link "
            f"(cycle_ns = {model.cycle_ns:g}): no attempt would fit in a bin"
        )
    if not 1 <= period <= MAX_PERIOD:
        raise ConfigError(f"{where}.period: {period} not in 1..{MAX_PERIOD}")
    if not bins or any(not isinstance(b, int) or not 0 <= b < period for b in bins):
        raise ConfigError(f"{where}.bins: expected bin indices in 0..{period - 1}, got {bins!r}")
    if len(set(bins)) != len(bins):
        raise ConfigError(f"{where}.bins: {bins!r} names a bin twice")
    return TimeBins(bin_ns=float(bin_ns), period=period, bins=tuple(sorted(bins)))


def check_schedules(links: list[LinkConfig], source: str) -> None:
    """A node attempts on one link at a time: the scheduled links of a node must share
    the bin length and period and own different bins."""
    for node in {n for lk in links for n in lk.nodes}:
        mine = [(i, lk) for i, lk in enumerate(links) if node in lk.nodes and lk.schedule]
        for x, (i, a) in enumerate(mine):
            for j, b in mine[x + 1 :]:
                sa, sb = a.schedule, b.schedule
                assert sa is not None and sb is not None
                where = f"{source}: links[{j}].schedule"
                if (sa.bin_ns, sa.period) != (sb.bin_ns, sb.period):
                    raise ConfigError(
                        f"{where}: links[{i}] and links[{j}] both reach node {node!r}, so they "
                        f"must use the same bin_ns and period ({sa.describe()} vs "
                        f"{sb.describe()})"
                    )
                both = sorted(set(sa.bins) & set(sb.bins))
                if both:
                    raise ConfigError(
                        f"{where}.bins: bin(s) {both} are also links[{i}]'s, and both links "
                        f"reach node {node!r}, which attempts on one link at a time"
                    )
