"""Density-matrix state of a register, kept as independent *state groups*.

Qubits that have interacted share one density matrix (a group); qubits that have not
each have their own 2x2 matrix, so cost grows with entanglement, not register size.
Every operation is a superoperator on the vectorised (row-major) density matrix of the
qubits it touches, so a gate, its depolarising error and the idle decay before it are
composed into one matrix and applied once.

Vectorisation: for an m-qubit subsystem, vec(rho)[r * 2**m + c] = rho[r, c], hence
vec(U rho U^dagger) = (U kron conj(U)) vec(rho).

>>> reg = Register(1)
>>> reg.apply(unitary_superop(np.array([[0, 1], [1, 0]], dtype=complex)), [0])
>>> reg.density_matrix([0]).real  # X|0> = |1>
array([[0., 0.],
       [0., 1.]])
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import numpy as np
from numpy.typing import NDArray

Matrix = NDArray[np.complexfloating[Any, Any]]

_ZERO: Matrix = np.array([[1, 0], [0, 0]], dtype=complex)
_ONE: Matrix = np.array([[0, 0], [0, 1]], dtype=complex)
_MIXED: Matrix = np.array([[0.5, 0], [0, 0.5]], dtype=complex)


def unitary_superop(u: Matrix) -> Matrix:
    """Superoperator of rho -> U rho U^dagger."""
    return np.kron(u, u.conj())


def depolarise_superop(p: float, m: int = 1) -> Matrix:
    """rho -> (1-p) rho + p * I/2**m * tr(rho) on m qubits."""
    d = 2**m
    vid = np.eye(d, dtype=complex).reshape(d * d)
    out: Matrix = (1 - p) * np.eye(d * d, dtype=complex) + (p / d) * np.outer(vid, vid)
    return out


def decay_superop(dt: float, t1: float, t2: float, out: Matrix | None = None) -> Matrix:
    """Amplitude damping (T1) and dephasing (T2) for time dt: populations relax with
    e^(-dt/T1), coherences decay with e^(-dt/T2). Needs T2 <= 2*T1. Written into ``out``
    (a zeroed-pattern 4x4 buffer, reused by the device's hot path) if given."""
    gamma = 1.0 - math.exp(-dt / t1) if math.isfinite(t1) else 0.0
    coh = math.exp(-dt / t2) if math.isfinite(t2) else math.sqrt(1.0 - gamma)
    s = np.zeros((4, 4), dtype=complex) if out is None else out
    s[0, 0] = 1.0
    s[0, 3] = gamma
    s[3, 3] = 1.0 - gamma
    s[1, 1] = s[2, 2] = coh
    return s


@lru_cache(maxsize=1024)
def _permutation(n: int, pos: tuple[int, ...]) -> tuple[NDArray[np.intp], NDArray[np.intp]]:
    """Index maps that bring the (row, column) bits of qubits ``pos`` of an n-qubit vec(rho)
    to the front, and back. One fancy-index then replaces reshape/transpose chains."""
    front = [*pos, *(n + p for p in pos)]
    order = front + [a for a in range(2 * n) if a not in front]
    fwd = np.arange(1 << (2 * n)).reshape((2,) * (2 * n)).transpose(order).ravel()
    return fwd, np.argsort(fwd)


@dataclass
class Group:
    """One density matrix over ``qubits`` (first listed = most significant bit)."""

    qubits: list[int]
    rho: Matrix


class Register:
    """The state of ``n`` physical qubits as a set of groups; starts all in |0>."""

    def __init__(self, n: int) -> None:
        self.n = n
        self.group_of: list[Group] = [Group([q], _ZERO.copy()) for q in range(n)]

    def add_slot(self) -> int:
        """A new qubit slot (in |0>): holds a qubit of another node while its group is
        here."""
        self.group_of.append(Group([len(self.group_of)], _ZERO.copy()))
        return len(self.group_of) - 1

    def take(self, q: int) -> Group:
        """Remove the group holding ``q`` (to send it elsewhere); its slots are left
        alone in |0>."""
        g = self.group_of[q]
        for m in g.qubits:
            self.group_of[m] = Group([m], _ZERO.copy())
        return g

    def put(self, qubits: list[int], rho: Matrix) -> None:
        """Install a group over ``qubits``, each of which must be alone in its group
        (its old single-qubit state is dropped)."""
        for q in qubits:
            if len(self.group_of[q].qubits) != 1:
                raise ValueError(f"slot {q} is entangled; cannot place a group on it")
        g = Group(list(qubits), rho)
        for q in qubits:
            self.group_of[q] = g

    def groups(self) -> list[Group]:
        seen: dict[int, Group] = {}
        for g in self.group_of:
            seen.setdefault(id(g), g)
        return list(seen.values())

    def _merge(self, qubits: list[int]) -> Group:
        first = self.group_of[qubits[0]]
        for q in qubits[1:]:
            other = self.group_of[q]
            if other is not first:
                first.rho = np.kron(first.rho, other.rho)
                first.qubits.extend(other.qubits)
                for oq in other.qubits:
                    self.group_of[oq] = first
        return first

    def apply(self, superop: Matrix, qubits: list[int]) -> None:
        """Apply a superoperator on ``qubits`` (merging their groups if needed)."""
        g = self._merge(qubits)
        n = len(g.qubits)
        d = 1 << n
        if g.qubits == qubits:
            g.rho = (superop @ g.rho.reshape(d * d)).reshape(d, d)
            return
        fwd, inv = _permutation(n, tuple(g.qubits.index(q) for q in qubits))
        moved = g.rho.reshape(d * d)[fwd].reshape(1 << (2 * len(qubits)), -1)
        g.rho = (superop @ moved).reshape(d * d)[inv].reshape(d, d)

    def _detach(self, q: int) -> None:
        """Trace qubit q out of its group (its partners keep their reduced state)."""
        g = self.group_of[q]
        if len(g.qubits) == 1:
            return
        n = len(g.qubits)
        k = g.qubits.index(q)
        t = g.rho.reshape((2,) * (2 * n))
        g.rho = np.trace(t, axis1=k, axis2=n + k).reshape(2 ** (n - 1), 2 ** (n - 1))
        g.qubits.remove(q)

    def reset(self, q: int, mixed: bool = False) -> None:
        """Put q alone in |0> (or the maximally mixed state), tracing out its old state."""
        g = self.group_of[q]
        if len(g.qubits) == 1:
            g.rho = (_MIXED if mixed else _ZERO).copy()
            return
        self._detach(q)
        start: Matrix = _MIXED if mixed else _ZERO
        self.group_of[q] = Group([q], start.copy())

    def prob_one(self, q: int) -> float:
        g = self.group_of[q]
        n = len(g.qubits)
        if n == 1:
            return min(max(float(g.rho[1, 1].real), 0.0), 1.0)
        k = g.qubits.index(q)
        diag = np.real(np.diagonal(g.rho)).reshape(2**k, 2, 2 ** (n - k - 1))
        return float(np.clip(diag[:, 1, :].sum(), 0.0, 1.0))

    def measure(self, q: int, u: float) -> int:
        """Projective Z measurement of q using uniform sample ``u``; q ends alone in the
        post-measurement state, its former partners in their conditional state."""
        p1 = self.prob_one(q)
        outcome = 1 if u < p1 else 0
        g = self.group_of[q]
        n = len(g.qubits)
        if n == 1:
            g.rho = (_ONE if outcome else _ZERO).copy()
            return outcome
        if n > 1:
            k = g.qubits.index(q)
            t = g.rho.reshape((2,) * (2 * n))
            idx: list[int | slice] = [slice(None)] * (2 * n)
            idx[k] = idx[n + k] = outcome
            rest = t[tuple(idx)].reshape(2 ** (n - 1), 2 ** (n - 1))
            p = p1 if outcome else 1.0 - p1
            g.rho = rest / p
            g.qubits.remove(q)
        post = np.zeros((2, 2), dtype=complex)
        post[outcome, outcome] = 1.0
        self.group_of[q] = Group([q], post)
        return outcome

    def density_matrix(self, qubits: list[int]) -> Matrix:
        """Reduced density matrix of ``qubits`` in the order given (for tests, tools)."""
        groups: list[Group] = []
        for q in qubits:
            g = self.group_of[q]
            if all(g is not h for h in groups):
                groups.append(g)
        rho = np.ones((1, 1), dtype=complex)
        order: list[int] = []
        for g in groups:
            rho = np.kron(rho, g.rho)
            order.extend(g.qubits)
        n = len(order)
        t = rho.reshape((2,) * (2 * n))
        for q in [q for q in order if q not in qubits]:
            k = order.index(q)
            t = np.trace(t, axis1=k, axis2=len(order) + k)
            order.remove(q)
        n = len(order)
        perm = [order.index(q) for q in qubits]
        t = np.transpose(t, perm + [n + p for p in perm])
        return t.reshape(2**n, 2**n)
