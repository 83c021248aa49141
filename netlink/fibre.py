"""Links over fibre: photon loss and light travel time from a link's length.

How it works. A link of ``length_km`` has its heralding station somewhere on the fibre:
at the midpoint, or at one of its nodes. Each node's photon crosses its *arm* (from the
node to the station) with transmissivity ``T = 10^(-attenuation * arm / 10)``, and light
goes at ``c / refractive_index``. ``over_fibre`` turns the link model given for the
nodes side by side (length 0) into the model of the same link over its fibre:

- *success probability*, by what each model's herald needs: double click (Barrett-Kok)
  needs both photons, ``p = eta^2 T_a T_b / 2``; single click needs one photon from
  either node, ``eta -> eta (T_a + T_b) / 2`` (exact for a midpoint station; for an
  unequal split it gives the herald rate to first order in eta, with the state of a
  balanced link); "depolarise" and "perfect" scale their ``p`` by ``T_a T_b``, the
  transmissivity of the whole fibre, wherever the station is. The delivered state does
  not change (a perfect link over fibre delivers Phi+ with that ``p``).
- *attempt cycle*: a node learns whether an attempt heralded only when the photon has
  reached the station and the station's answer has come back, and attempts again only
  then (its communication qubit is entangled with the photon until then). Both nodes
  attempt in step, so each cycle is longer by the longer arm's round trip,
  ``2 max(arm) / v``: with the station at one node that is ``2 L / v``, at the midpoint
  ``L / v``. Herald times (and the pairs' timestamps) follow.
- *classical delay*: messages between the two nodes take ``L / v`` each way.

Defaults: 0.2 dB/km (telecom fibre at 1550 nm; 0.2-0.25 dB/km in
shared/reference/hardware.md) and refractive index 1.44 (about 208,000 km/s, 4.8 us/km;
the reference gives "about 200,000 km/s, 5 us per km").

>>> from qnodeos.netlink.models import Depolarise
>>> f = Fibre(length_km=10.0)
>>> round(f.transmissivity(), 3), round(f.one_way_s() * 1e6, 2)
(0.631, 48.03)
>>> m = over_fibre(Depolarise(fidelity=0.9, p_success=0.5, cycle_ns=1000), f)
>>> round(m.p_success, 4), round(m.cycle_ns)
(0.3155, 49033)
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from qnodeos.errors import ConfigError

from .models import Depolarise, DoubleClick, LinkModel, Perfect, SingleClick

C_KM_PER_S = 299_792.458  # speed of light in vacuum
ATTENUATION_DB_KM = 0.2
REFRACTIVE_INDEX = 1.44
MAX_LENGTH_KM = 100_000.0
MIDPOINT = "midpoint"


@dataclass(frozen=True, kw_only=True)
class Fibre:
    """The fibre of one link: ``length_km`` between its two nodes, the heralding
    station ``station_km`` from the link's first node (None: at the midpoint)."""

    length_km: float
    attenuation_db_km: float = ATTENUATION_DB_KM
    refractive_index: float = REFRACTIVE_INDEX
    station_km: float | None = None

    def __post_init__(self) -> None:
        for name, value, lo, hi in (
            ("length_km", self.length_km, 0.0, MAX_LENGTH_KM),
            ("attenuation_db_km", self.attenuation_db_km, 0.0, 100.0),
            ("refractive_index", self.refractive_index, 1.0, 4.0),
        ):
            if not lo <= value <= hi:  # also refuses nan
                raise ConfigError(f"{name} = {value} not in [{lo:g}, {hi:g}]")
        if self.station_km is not None and not 0.0 <= self.station_km <= self.length_km:
            raise ConfigError(f"station at {self.station_km} km, off a {self.length_km} km link")

    def arms_km(self) -> tuple[float, float]:
        """The fibre from each node (in link order) to the station."""
        at = self.length_km / 2 if self.station_km is None else self.station_km
        return at, self.length_km - at

    def transmissivity(self, km: float | None = None) -> float:
        """The share of photons that cross ``km`` of this fibre (default: all of it)."""
        km = self.length_km if km is None else km
        return float(10 ** (-self.attenuation_db_km * km / 10))

    def one_way_s(self, km: float | None = None) -> float:
        """Light's travel time over ``km`` of this fibre (default: all of it), seconds."""
        km = self.length_km if km is None else km
        return km * self.refractive_index / C_KM_PER_S

    def herald_wait_ns(self) -> float:
        """What each attempt cycle gains: the longer arm's round trip (ns)."""
        return 2 * self.one_way_s(max(self.arms_km())) * 1e9


def _double(m: DoubleClick, ta: float, tb: float, cycle: float) -> LinkModel:
    return dataclasses.replace(m, eta=m.eta * math.sqrt(ta * tb), cycle_ns=cycle)


def _single(m: SingleClick, ta: float, tb: float, cycle: float) -> LinkModel:
    return dataclasses.replace(m, eta=m.eta * (ta + tb) / 2, cycle_ns=cycle)


def _depolarise(m: Depolarise, ta: float, tb: float, cycle: float) -> LinkModel:
    return dataclasses.replace(m, p_success=m.p_success * ta * tb, cycle_ns=cycle)


def _perfect(m: Perfect, ta: float, tb: float, cycle: float) -> LinkModel:
    return Depolarise(fidelity=1.0, p_success=ta * tb, cycle_ns=cycle)


# each model's loss over its arms' transmissivities (see the module's docstring)
LOSS: dict[type[LinkModel], Callable[[Any, float, float, float], LinkModel]] = {
    DoubleClick: _double,
    SingleClick: _single,
    Depolarise: _depolarise,
    Perfect: _perfect,
}


def over_fibre(model: LinkModel, fibre: Fibre) -> LinkModel:
    """``model`` (its nodes side by side) as the same link over ``fibre`` (see the
    module's docstring); a link of length 0 keeps its model exactly."""
    if fibre.length_km == 0:
        return model
    loss = LOSS.get(type(model))
    if loss is None:
        raise ConfigError(f"link model {model.kind!r} has no fibre loss model")
    ta, tb = (fibre.transmissivity(km) for km in fibre.arms_km())
    return loss(model, ta, tb, model.cycle_ns + fibre.herald_wait_ns())
