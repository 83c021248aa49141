"""Heralded-entanglement link models: per-attempt success probability, the two-qubit
state a herald delivers, and sampling of when the first success happens.

A model is data plus closed forms. ``sample(rng)`` draws the number of attempts until
the first herald from the geometric distribution (never attempt by attempt), which
Bell state was heralded, and the delivered density matrix (qubit order: node A, B).

Conventions: Bell states indexed as in NetQASM, 0 = Phi+, 1 = Phi-, 2 = Psi+, 3 = Psi-.
In the emission models the *bright* state |1> emits a photon; eta is the total
probability that an emitted photon is detected; V is the two-photon visibility;
``dark_count`` is the probability of a dark count in one detector in one window.

Single click (one photon, e.g. Humphreys et al. 2018): each node prepares
sqrt(1-alpha)|0> + sqrt(alpha)|1>; one click heralds Psi+/- (by detector), with
  P(one node bright, photon seen)  = 2 alpha (1-alpha) eta      -> Psi, coherence V
  P(both bright, >= 1 photon seen) = alpha^2 (2 eta - eta^2)    -> |11>
  P(dark count, no photon seen)    = 2 d * P(nothing seen)      -> no-detection mixture
so p ~= 2 alpha eta and F = alpha-weighted (1+V)/2 ~= 1 - alpha for V = 1, small eta.

Double click (Barrett & Kok 2005): both nodes in (|0>+|1>)/sqrt2, one click in each of
two rounds with a spin flip between: p = eta^2 / 2, F = (1 + V)/2 (Psi+ if the same
detector clicked twice, Psi- if not). Dark counts, which matter at order d/eta, are not
modelled here.

>>> m = SingleClick(alpha=0.1, eta=1e-3, cycle_ns=5000)
>>> round(m.expected_fidelity(), 3), round(m.success_probability() / (2 * 0.1 * 1e-3), 3)
(0.9, 1.0)
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from dataclasses import dataclass
from functools import cached_property
from typing import Any, ClassVar

import numpy as np
from numpy.typing import NDArray

from qnodeos.errors import ConfigError

Matrix = NDArray[np.complexfloating[Any, Any]]

PHI_PLUS, PHI_MINUS, PSI_PLUS, PSI_MINUS = 0, 1, 2, 3
_S = 1 / math.sqrt(2)
BELL_VECTORS = {
    PHI_PLUS: np.array([_S, 0, 0, _S], dtype=complex),
    PHI_MINUS: np.array([_S, 0, 0, -_S], dtype=complex),
    PSI_PLUS: np.array([0, _S, _S, 0], dtype=complex),
    PSI_MINUS: np.array([0, _S, -_S, 0], dtype=complex),
}


# The Pauli the link's first node applies to its half to turn Bell state ``index`` into
# Phi+ (the kernel's correction of a kept pair), as a core gate name and a matrix.
CORRECTION = {PHI_PLUS: (), PHI_MINUS: ("z",), PSI_PLUS: ("x",), PSI_MINUS: ("y",)}
_PAULI = {
    PHI_PLUS: np.eye(2, dtype=complex),
    PHI_MINUS: np.diag([1, -1]).astype(complex),
    PSI_PLUS: np.array([[0, 1], [1, 0]], dtype=complex),
    PSI_MINUS: np.array([[0, -1j], [1j, 0]], dtype=complex),
}


def corrected(index: int, rho: Matrix) -> Matrix:
    """A pair heralded as Bell state ``index`` after the first node's correction to
    Phi+ (``CORRECTION``; qubit order: the link's nodes)."""
    c = np.kron(_PAULI[index], np.eye(2))
    out: Matrix = c @ rho @ c.conj().T
    return out


def bell(index: int) -> Matrix:
    """Density matrix of Bell state ``index``."""
    v = BELL_VECTORS[index]
    out: Matrix = np.outer(v, v.conj())
    return out


def fidelity_to(rho: Matrix, index: int) -> float:
    """<B|rho|B> for Bell state ``index``."""
    v = BELL_VECTORS[index]
    return float(np.real(v.conj() @ rho @ v))


def werner(f: float, index: int = PHI_PLUS) -> Matrix:
    """Werner state of fidelity ``f`` to Bell state ``index``."""
    b = bell(index)
    out: Matrix = f * b + (1 - f) / 3 * (np.eye(4) - b)
    return out


def _psi_with_visibility(sign: int, v: float) -> Matrix:
    rho = np.zeros((4, 4), dtype=complex)
    rho[1, 1] = rho[2, 2] = 0.5
    rho[1, 2] = rho[2, 1] = sign * v / 2
    return rho


def _diag(p00: float, p01: float, p10: float, p11: float) -> Matrix:
    out: Matrix = np.diag([p00, p01, p10, p11]).astype(complex)
    return out


def _frozen(rho: Matrix) -> Matrix:
    """``rho``, read-only: one array a model hands out with every herald of its kind
    (so a round's pairs that got the same state are seen to share it)."""
    rho.flags.writeable = False
    return rho


@dataclass(frozen=True)
class Herald:
    """One successful entanglement generation."""

    attempts: int
    bell_index: int
    rho: Matrix


def _check(name: str, value: float, lo: float, hi: float) -> None:
    if not (lo <= value <= hi) or math.isnan(value):
        raise ConfigError(f"link parameter {name} = {value} not in [{lo}, {hi}]")


@dataclass(frozen=True, kw_only=True)
class LinkModel(ABC):
    """Base of all models: ``cycle_ns`` is the duration of one attempt (device ns)."""

    kind: ClassVar[str]
    cycle_ns: float

    def __post_init__(self) -> None:
        _check("cycle_ns", self.cycle_ns, 1e-3, 1e15)

    @abstractmethod
    def success_probability(self) -> float:
        """Probability that one attempt heralds a pair."""

    @abstractmethod
    def expected_fidelity(self) -> float:
        """Mean fidelity of a delivered pair to the Bell state heralded with it."""

    @abstractmethod
    def _outcome(self, rng: np.random.Generator) -> tuple[int, Matrix]:
        """Draw (Bell index, delivered state) for one herald."""

    @abstractmethod
    def outcomes(self) -> list[tuple[float, int, Matrix]]:
        """Every (probability, Bell index, state) a herald can deliver: the distribution
        ``sample`` draws from."""

    def delivered(self) -> Matrix:
        """The mean state of a pair after the first node's correction to Phi+ (as the
        node delivers kept pairs): every outcome of ``outcomes``, weighted. Its fidelity
        to Phi+ is ``expected_fidelity()``."""
        out: Matrix = np.zeros((4, 4), dtype=complex)
        for p, index, rho in self.outcomes():
            out += p * corrected(index, rho)
        return out

    @cached_property
    def _p_success(self) -> float:
        """``success_probability()``, once (the model is frozen; stations sample it
        for every pair)."""
        return self.success_probability()

    def sample(self, rng: np.random.Generator) -> Herald:
        """Attempts until the first herald (geometric), its Bell index and state."""
        attempts = int(rng.geometric(self._p_success))
        index, rho = self._outcome(rng)
        return Herald(attempts=attempts, bell_index=index, rho=rho)

    def sample_many(
        self, rng: np.random.Generator, k: int
    ) -> tuple[list[int], list[int], list[Matrix]]:
        """``k`` heralds as columns (attempts, Bell indices, states): the same draws from
        ``rng``, in the same order, as ``k`` calls of ``sample``."""
        p = self._p_success
        attempts: list[int] = []
        index: list[int] = []
        rho: list[Matrix] = []
        for _ in range(k):
            attempts.append(int(rng.geometric(p)))
            i, r = self._outcome(rng)
            index.append(i)
            rho.append(r)
        return attempts, index, rho

    def rate_hz(self) -> float:
        """Mean heralds per second of device time: p / cycle."""
        return self.success_probability() / (self.cycle_ns * 1e-9)


def _only_attempts(
    rng: np.random.Generator, p: float, k: int, rho: Matrix
) -> tuple[list[int], list[int], list[Matrix]]:
    """``sample_many`` of a model whose herald is always ``rho`` as Phi+ (its outcome
    draws nothing): the attempts in one call (numpy draws them one by one, in order)."""
    return rng.geometric(p, size=k).tolist(), [PHI_PLUS] * k, [rho] * k


@dataclass(frozen=True, kw_only=True)
class Perfect(LinkModel):
    """Always Phi+, on the first attempt."""

    kind: ClassVar[str] = "perfect"

    def success_probability(self) -> float:
        return 1.0

    def expected_fidelity(self) -> float:
        return 1.0

    @cached_property
    def _state(self) -> Matrix:
        return _frozen(bell(PHI_PLUS))

    def _outcome(self, rng: np.random.Generator) -> tuple[int, Matrix]:
        return PHI_PLUS, self._state

    def outcomes(self) -> list[tuple[float, int, Matrix]]:
        return [(1.0, PHI_PLUS, bell(PHI_PLUS))]

    def sample_many(
        self, rng: np.random.Generator, k: int
    ) -> tuple[list[int], list[int], list[Matrix]]:
        return _only_attempts(rng, self._p_success, k, self._state)


@dataclass(frozen=True, kw_only=True)
class Depolarise(LinkModel):
    """A Werner state of ``fidelity`` to Phi+, with ``p_success`` per attempt."""

    kind: ClassVar[str] = "depolarise"
    fidelity: float
    p_success: float

    def __post_init__(self) -> None:
        super().__post_init__()
        _check("fidelity", self.fidelity, 0.25, 1.0)
        _check("p_success", self.p_success, 1e-12, 1.0)

    def success_probability(self) -> float:
        return self.p_success

    def expected_fidelity(self) -> float:
        return self.fidelity

    @cached_property
    def _state(self) -> Matrix:
        return _frozen(werner(self.fidelity))

    def _outcome(self, rng: np.random.Generator) -> tuple[int, Matrix]:
        return PHI_PLUS, self._state

    def outcomes(self) -> list[tuple[float, int, Matrix]]:
        return [(1.0, PHI_PLUS, werner(self.fidelity))]

    def sample_many(
        self, rng: np.random.Generator, k: int
    ) -> tuple[list[int], list[int], list[Matrix]]:
        return _only_attempts(rng, self._p_success, k, self._state)


@dataclass(frozen=True, kw_only=True)
class SingleClick(LinkModel):
    """Single-photon (single-click) heralding; see the module docstring."""

    kind: ClassVar[str] = "single_click"
    alpha: float
    eta: float
    visibility: float = 1.0
    dark_count: float = 0.0

    def __post_init__(self) -> None:
        super().__post_init__()
        _check("alpha", self.alpha, 1e-9, 0.5)
        _check("eta", self.eta, 1e-12, 1.0)
        _check("visibility", self.visibility, 0.0, 1.0)
        _check("dark_count", self.dark_count, 0.0, 0.1)

    def _weights(self) -> tuple[float, float, float]:
        a, e, d = self.alpha, self.eta, self.dark_count
        w_psi = 2 * a * (1 - a) * e
        w_11 = a * a * (2 * e - e * e)
        nothing = (1 - a) ** 2 + 2 * a * (1 - a) * (1 - e) + a * a * (1 - e) ** 2
        return w_psi, w_11, 2 * d * nothing

    def _dark_state(self) -> Matrix:
        a, e = self.alpha, self.eta
        w = [(1 - a) ** 2, a * (1 - a) * (1 - e), a * (1 - a) * (1 - e), a * a * (1 - e) ** 2]
        total = sum(w)
        return _diag(*(x / total for x in w))

    def success_probability(self) -> float:
        return sum(self._weights())

    def expected_fidelity(self) -> float:
        w_psi, w_11, w_dark = self._weights()
        dark = fidelity_to(self._dark_state(), PSI_PLUS) * w_dark
        return (w_psi * (1 + self.visibility) / 2 + dark) / (w_psi + w_11 + w_dark)

    @cached_property
    def _states(self) -> tuple[tuple[float, float, float], dict[int, tuple[Matrix, ...]]]:
        """The weights, and per Bell index its states: heralded, |11>, dark count."""
        both = _frozen(_diag(0, 0, 0, 1))
        dark = _frozen(self._dark_state())
        return self._weights(), {
            index: (_frozen(_psi_with_visibility(sign, self.visibility)), both, dark)
            for index, sign in ((PSI_PLUS, 1), (PSI_MINUS, -1))
        }

    def _outcome(self, rng: np.random.Generator) -> tuple[int, Matrix]:
        index = PSI_PLUS if rng.random() < 0.5 else PSI_MINUS
        (w_psi, w_11, w_dark), states = self._states
        u = rng.random() * (w_psi + w_11 + w_dark)
        if u < w_psi:
            return index, states[index][0]
        if u < w_psi + w_11:
            return index, states[index][1]
        return index, states[index][2]

    def outcomes(self) -> list[tuple[float, int, Matrix]]:
        w_psi, w_11, w_dark = self._weights()
        total = w_psi + w_11 + w_dark
        out = []
        for index, sign in ((PSI_PLUS, 1), (PSI_MINUS, -1)):
            out += [
                (0.5 * w_psi / total, index, _psi_with_visibility(sign, self.visibility)),
                (0.5 * w_11 / total, index, _diag(0, 0, 0, 1)),
                (0.5 * w_dark / total, index, self._dark_state()),
            ]
        return out


@dataclass(frozen=True, kw_only=True)
class DoubleClick(LinkModel):
    """Two-photon (Barrett-Kok) heralding; see the module docstring."""

    kind: ClassVar[str] = "double_click"
    eta: float
    visibility: float = 1.0

    def __post_init__(self) -> None:
        super().__post_init__()
        _check("eta", self.eta, 1e-12, 1.0)
        _check("visibility", self.visibility, 0.0, 1.0)

    def success_probability(self) -> float:
        return self.eta**2 / 2

    def expected_fidelity(self) -> float:
        return (1 + self.visibility) / 2

    @cached_property
    def _states(self) -> dict[int, Matrix]:
        return {
            index: _frozen(_psi_with_visibility(sign, self.visibility))
            for index, sign in ((PSI_PLUS, 1), (PSI_MINUS, -1))
        }

    def _outcome(self, rng: np.random.Generator) -> tuple[int, Matrix]:
        index = PSI_PLUS if rng.random() < 0.5 else PSI_MINUS
        return index, self._states[index]

    def outcomes(self) -> list[tuple[float, int, Matrix]]:
        return [
            (0.5, PSI_PLUS, _psi_with_visibility(1, self.visibility)),
            (0.5, PSI_MINUS, _psi_with_visibility(-1, self.visibility)),
        ]


MODELS: dict[str, type[LinkModel]] = {
    m.kind: m for m in (Perfect, Depolarise, SingleClick, DoubleClick)
}
