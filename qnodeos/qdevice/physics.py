"""Density-matrix state of a register, kept as independent *state groups*.

Qubits that have interacted share one density matrix (a group); qubits that have not
each have their own, so cost grows with entanglement, not register size.

How this works. A group of n qubits is one flat vector of 4**n numbers in *paired*
order: qubit k of the group (first listed = most significant) contributes the base-4
digit 2*r + c, where r and c are its row and column bit of rho. Each qubit thus owns one
axis of length 4 of the (4,)*n tensor, and
  - a superoperator on qubits at adjacent positions p..p+k-1 is one matrix product on
    the view (4**p, 4**k, rest) of the vector: no copy of the state (one qubit next to
    the last is one 16 x 16 product with the last qubit's identity, which BLAS does
    faster than many 4 x 4 ones);
  - two qubits apart in the group are brought together by moving one axis next to
    the other (a copy into kept scratch space) and put back by another copy (small
    groups: one cached gather each way);
  - joining two groups is an outer product; tracing a qubit out adds two slices; its
    measurement keeps one slice.
Every operation is a superoperator on the vectorised density matrix of the qubits it
touches, so a gate, its depolarising error and the idle decay before it are composed
into one small matrix (by the device) and applied to the state once.

Superoperators come in two index orders. *Standard*: vec(rho)[r * 2**m + c] = rho[r, c]
for an m-qubit rho, hence vec(U rho U^dagger) = (U kron conj(U)) vec(rho); this is what
``unitary_superop`` builds and ``Register.apply`` takes. *Paired*: the order above,
taken by ``Register.apply_paired``; ``paired`` converts. For one qubit they coincide,
and the paired superoperator of independent channels on qubits a, b is kron(S_a, S_b).

>>> reg = Register(1)
>>> reg.apply(unitary_superop(np.array([[0, 1], [1, 0]], dtype=complex)), [0])
>>> reg.density_matrix([0]).real  # X|0> = |1>
array([[0., 0.],
       [0., 1.]])
"""

from __future__ import annotations

import math
import threading
from collections.abc import Sequence
from functools import lru_cache
from typing import Any

import numpy as np
from numpy.typing import NDArray

Matrix = NDArray[np.complexfloating[Any, Any]]
Vector = Matrix  # a group's state in paired order (1-d)

_ZERO: Vector = np.array([1, 0, 0, 0], dtype=complex)  # |0><0|, paired (= flattened)
_ONE: Vector = np.array([0, 0, 0, 1], dtype=complex)
_MIXED: Vector = np.array([0.5, 0, 0, 0.5], dtype=complex)


def unitary_superop(u: Matrix) -> Matrix:
    """Superoperator of rho -> U rho U^dagger (standard order)."""
    return np.kron(u, u.conj())


def depolarise_superop(p: float, m: int = 1) -> Matrix:
    """rho -> (1-p) rho + p * I/2**m * tr(rho) on m qubits (standard order)."""
    d = 2**m
    vid = np.eye(d, dtype=complex).reshape(d * d)
    out: Matrix = (1 - p) * np.eye(d * d, dtype=complex) + (p / d) * np.outer(vid, vid)
    return out


def decay_params(dt: float, t1: float, t2: float) -> tuple[float, float]:
    """(gamma, coherence) of amplitude damping (T1) and dephasing (T2) for time dt:
    populations relax with e^(-dt/T1), coherences decay with e^(-dt/T2). Needs
    T2 <= 2*T1."""
    gamma = 1.0 - math.exp(-dt / t1) if math.isfinite(t1) else 0.0
    coh = math.exp(-dt / t2) if math.isfinite(t2) else math.sqrt(1.0 - gamma)
    return gamma, coh


def decay_matrix(gamma: float, coh: float) -> Matrix:
    """The one-qubit superoperator of damping ``gamma`` and coherence factor ``coh``."""
    s = np.zeros((4, 4), dtype=complex)
    s[0, 0] = 1.0
    s[0, 3] = gamma
    s[3, 3] = 1.0 - gamma
    s[1, 1] = s[2, 2] = coh
    return s


def decay_superop(dt: float, t1: float, t2: float) -> Matrix:
    """Amplitude damping (T1) and dephasing (T2) for time dt (see ``decay_params``)."""
    return decay_matrix(*decay_params(dt, t1, t2))


# decay_matrix(g, c) = E00 + g*E03 + (1-g)*E33 + c*(E11 + E22): weights (1, g, 1-g, c)
_DECAY_BASIS = [np.zeros((4, 4), dtype=complex) for _ in range(4)]
_DECAY_BASIS[0][0, 0] = _DECAY_BASIS[1][0, 3] = _DECAY_BASIS[2][3, 3] = 1.0
_DECAY_BASIS[3][1, 1] = _DECAY_BASIS[3][2, 2] = 1.0


def decay_weights(gamma: float, coh: float) -> tuple[float, float, float, float]:
    """Coordinates of decay_matrix(gamma, coh) in the basis used by ``after_decay``."""
    return (1.0, gamma, 1.0 - gamma, coh)


def after_decay(s: Matrix, m: int) -> Matrix:
    """Rows ``s @ kron(B_i, B_j, ...)`` (flattened) for each m-tuple of the decay basis,
    so that ``weights @ rows`` composes s after independent decays of its m qubits
    (paired order; weights = products of each qubit's ``decay_weights``)."""
    basis = _DECAY_BASIS
    for _ in range(m - 1):
        basis = [np.kron(a, b) for a in basis for b in _DECAY_BASIS]
    return np.stack([(s @ b).reshape(-1) for b in basis])


# -- index orders --------------------------------------------------------------------------
@lru_cache(maxsize=64)
def _pairing(m: int) -> tuple[int, ...]:
    """Axis order taking a (2,)*2m tensor (row bits, then column bits) to paired order."""
    return tuple(a for k in range(m) for a in (k, m + k))


@lru_cache(maxsize=64)
def _unpairing(m: int) -> tuple[int, ...]:
    return tuple(int(a) for a in np.argsort(_pairing(m)))


def paired(s: Matrix, k: int) -> Matrix:
    """The k-qubit superoperator ``s`` (standard order) in paired order."""
    if k == 1:
        return s
    ax = _pairing(k)
    t = s.reshape((2,) * (4 * k)).transpose(*ax, *(2 * k + a for a in ax))
    return t.reshape(4**k, 4**k)


def to_paired(rho: Matrix) -> Vector:
    """A fresh paired vector holding the density matrix ``rho``."""
    n = rho.shape[0].bit_length() - 1
    t = np.asarray(rho, dtype=complex).reshape((2,) * (2 * n))
    return t.transpose(_pairing(n)).flatten()


def to_standard(vec: Vector, n: int) -> Matrix:
    """A fresh 2**n x 2**n density matrix from the paired vector ``vec``."""
    t = vec.reshape((2,) * (2 * n)).transpose(_unpairing(n))
    return t.flatten().reshape(2**n, 2**n)


@lru_cache(maxsize=64)
def _diagonal(n: int) -> NDArray[np.intp]:
    """Positions of rho's diagonal in a paired vector, in basis-state order."""
    idx = np.zeros(1, dtype=np.intp)
    for _ in range(n):
        idx = (4 * idx[:, None] + np.array([0, 3])).reshape(-1)
    return idx


@lru_cache(maxsize=1024)
def _real_of_ones(n: int, k: int) -> NDArray[np.intp]:
    """Positions, in the float64 view of an n-qubit paired vector, of the real parts of
    rho's diagonal entries where qubit k is 1."""
    return 2 * _diagonal(n).reshape(2**k, 2, -1)[:, 1, :].reshape(-1)


def _conditional(t: Vector, outcome: int, gamma: float, p: float) -> Vector:
    """The rest of a group given ``outcome`` (probability p) of the qubit whose axis is
    t's middle one, after damping it with probability gamma: slice 3 (|1><1|) keeps
    1 - gamma of itself, slice 0 (|0><0|) gains gamma of slice 3."""
    if outcome:
        out: Vector = t[:, 3] * ((1.0 - gamma) / p)
    elif gamma == 0.0:
        out = t[:, 0] / p
    elif t.size <= 1024:  # one call beats three on small groups, loses on large ones
        out = np.array((1.0 / p, gamma / p)).dot(t[:, ::3])
    else:
        out = t[:, 0] / p
        out += t[:, 3] * (gamma / p)
    return out


def sum_one(vec: Vector, n: int, k: int) -> float:
    """Sum of rho's diagonal where qubit k of the n-qubit paired ``vec`` is 1."""
    if n == 1:
        return float(vec[3].real)
    # fsum of a list: exactly rounded, and cheaper than numpy's sum at this size
    return math.fsum(vec.view(np.float64)[_real_of_ones(n, k)].tolist())


def prob_one_after(vec: Vector, n: int, k: int, gamma: float) -> float:
    """Probability that a Z measurement of qubit k of ``vec`` gives 1, after damping
    it with probability ``gamma`` (clipped to [0, 1])."""
    return min(max((1.0 - gamma) * sum_one(vec, n, k), 0.0), 1.0)


def measured_rest(vec: Vector, n: int, k: int, outcome: int, gamma: float, p1: float) -> Vector:
    """The other n - 1 qubits of ``vec`` (paired) once qubit k, damped with
    probability ``gamma``, was measured as ``outcome``; ``p1`` from ``prob_one_after``."""
    t = vec.reshape(4**k, 4, -1)
    return _conditional(t, outcome, gamma, p1 if outcome else 1.0 - p1).reshape(-1)


def exchanged(s: Matrix) -> Matrix:
    """A two-qubit paired superoperator with its qubits exchanged."""
    return s.reshape(4, 4, 4, 4).transpose(1, 0, 3, 2).reshape(16, 16)


# -- applying a superoperator to part of a group -------------------------------------------
@lru_cache(maxsize=1024)
def _axes(n: int, pos: tuple[int, ...]) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """Axis order bringing positions ``pos`` of an n-axis tensor to the front, and back."""
    order = (*pos, *(a for a in range(n) if a not in pos))
    return order, tuple(int(a) for a in np.argsort(order))


@lru_cache(maxsize=1024)
def _gather(n: int, pos: tuple[int, ...]) -> tuple[NDArray[np.intp], NDArray[np.intp]]:
    """For a small group: the paired vector's entries in the order that has the axes of
    ``pos`` in front, and the way back (index arrays of 4**n entries)."""
    order, back = _axes(n, pos)
    idx = np.arange(4**n).reshape((4,) * n).transpose(order).reshape(-1)
    return idx, np.argsort(idx)


_GATHER_UP_TO = 5  # qubits: one gather beats a transpose chain where calls cost most


def _apply_moved(vec: Vector, n: int, s: Matrix, pos: tuple[int, ...]) -> Vector:
    """Copy the axes of ``pos`` to the front, apply, copy them back."""
    if n <= _GATHER_UP_TO:
        idx, inv = _gather(n, pos)
        moved: Vector = s.dot(vec[idx].reshape(s.shape[1], -1)).reshape(-1)[inv]
        return moved
    order, back = _axes(n, pos)
    moved = vec.reshape((4,) * n).transpose(order).reshape(s.shape[1], -1)
    out: Vector = (s @ moved).reshape((4,) * n).transpose(back).reshape(-1)
    return out


def apply_at(vec: Vector, n: int, s: Matrix, pos: tuple[int, ...]) -> Vector:
    """The paired superoperator ``s`` applied to positions ``pos`` of an n-qubit paired
    vector (a new vector; ``vec`` is left alone)."""
    # ndarray.dot: the cheapest call into BLAS for the small groups that dominate
    first = pos[0]
    out: Vector
    if len(pos) == 1:  # one qubit (most ops): the fewest Python steps
        if first == 0:  # the floor: one product on a contiguous view
            out = s.dot(vec) if n == 1 else s.dot(vec.reshape(4, -1)).reshape(-1)
        elif first == n - 1:
            out = vec.reshape(-1, 4).dot(s.T).reshape(-1)
        elif first < n - 2 or first < _WIDEN_FROM:
            # one GEMM per left index: of a useful size, or (next to last, in a small
            # group) still cheaper than building the widened matrix
            out = np.matmul(s, vec.reshape(4**first, 4, -1)).reshape(-1)
        else:  # second to last: it and the last qubit's identity, as one GEMM
            out = vec.reshape(-1, 16).dot(_widened(s)).reshape(-1)
        return out
    k = len(pos)
    if k == 2 and pos[1] != first + 1:
        if n <= _GATHER_UP_TO:
            return _apply_moved(vec, n, s, pos)
        if first > pos[1]:  # reversed: exchange s's qubits
            s, first = exchanged(s), pos[1]
        if pos[0] + pos[1] != 2 * first + 1:
            return _apply_apart(vec, n, s, first, pos[0] + pos[1] - first)
    elif k > 2 and pos != tuple(range(first, first + k)):
        return _apply_moved(vec, n, s, pos)
    if first == 0:
        out = s.dot(vec) if k == n else s.dot(vec.reshape(s.shape[1], -1)).reshape(-1)
    elif first + k == n:
        out = vec.reshape(4**first, -1).dot(s.T).reshape(-1)
    else:  # one GEMM per left index (the right side of 4 or more entries)
        out = np.matmul(s, vec.reshape(4**first, s.shape[1], -1)).reshape(-1)
    return out


_WIDEN_FROM = 3  # positions (qubits before it): below, the batched GEMMs are cheaper


_SCRATCH_UP_TO = 10  # qubits: scratch kept for every group size up to this (2 x 16 MiB)


class _Scratch(threading.local):
    """Each thread's own scratch arrays (numpy lets other threads run during BLAS
    calls, so two deterministic runs in threads of one process must not share them)."""

    def __init__(self) -> None:
        self.sizes: dict[int, tuple[Vector, Vector]] = {}
        self.big: list[tuple[Vector, Vector]] = []  # and for the one larger size used last
        self.wide = np.zeros(256, dtype=complex)  # kron(s, I4).T, rebuilt in place per op
        # its non-zero entries: [j, i, b] -> row (j, b), column (i, b)
        self.wide_nonzero = np.lib.stride_tricks.as_strided(
            self.wide, shape=(4, 4, 4), strides=(64 * 16, 4 * 16, 17 * 16)
        )


_mine = _Scratch()


def _buffers(n: int) -> tuple[Vector, Vector]:
    """Two arrays of 4**n entries for intermediate results, kept: fresh ones of this
    size are new pages from the kernel, and faulting them in costs more than the
    arithmetic. Beyond ``_SCRATCH_UP_TO`` qubits only the last size is kept (at most
    twice the largest group's own state)."""
    mine = _mine
    bufs = mine.sizes.get(n)
    if bufs is None:
        if mine.big and mine.big[0][0].size == 4**n:
            return mine.big[0]
        bufs = (np.empty(4**n, dtype=complex), np.empty(4**n, dtype=complex))
        if n <= _SCRATCH_UP_TO:
            mine.sizes[n] = bufs
        else:
            mine.big[:] = [bufs]
    return bufs


def _apply_apart(vec: Vector, n: int, s: Matrix, p: int, q: int) -> Vector:
    """Two-qubit ``s`` on positions p < q - 1: p's axis moves next to q's (a copy that
    keeps runs of 4**(n-q) entries together), s applies there, p's axis moves back
    (into the one new array)."""
    left, mid, right = 4**p, 4 ** (q - p - 1), 4 ** (n - q - 1)
    near, done = _buffers(n)
    np.copyto(
        near.reshape(left, mid, 4, 4 * right),
        vec.reshape(left, 4, mid, 4 * right).transpose(0, 2, 1, 3),
    )
    if right == 1:
        np.dot(near.reshape(left * mid, 16), s.T, out=done.reshape(left * mid, 16))
    else:
        np.matmul(s, near.reshape(left * mid, 16, right), out=done.reshape(left * mid, 16, right))
    out: Vector = np.empty_like(vec)
    np.copyto(
        out.reshape(left, 4, mid, 4 * right),
        done.reshape(left, mid, 4, 4 * right).transpose(0, 2, 1, 3),
    )
    return out


def _widened(s: Matrix) -> Matrix:
    """The transpose of kron(s, I4): one-qubit ``s`` on the second to last qubit of a
    group, as a 16 x 16 matrix on the last two (a quarter of it non-zero, but one BLAS
    call over the whole state, with no copy of it). Shared: valid until the next call."""
    mine = _mine
    mine.wide_nonzero[...] = s.T[:, :, None]
    return mine.wide.reshape(16, 16)


# -- applying an op where it is cheap, leaving the group's axes reordered -----------------
_MOVE_UP_TO = 9  # qubits: moving the second to last qubit's axis to the front is cheaper
# than the widened product up to here; beyond, both are bound by memory and widening wins
_ROTATE_UP_TO = 8  # qubits: the second to last qubit moves with the last (cyclic order
# kept) up to here; beyond, alone (a cheaper copy, but its neighbours are left apart)


def _records(size: int) -> np.dtype[np.void]:
    """A dtype of ``size`` complex entries as one opaque record: numpy copies a
    transposition of records item by item, about twice as fast as of complex entries
    (the inner loop no longer runs over runs of 4 or so)."""
    return np.dtype((np.void, 16 * size))


@lru_cache(maxsize=128)
def _rotation_order(n: int, by: int = 1, reflect: bool = False) -> tuple[int, ...]:
    """The axis order of an n-axis group with its last ``by`` axes moved to the front;
    ``reflect`` (with by=1): the last axis to second place, the others reversed. Both
    keep the group's cyclic order (every cyclically adjacent pair stays adjacent)."""
    if reflect:
        return (0, *range(n - 1, 0, -1))
    return (*range(n - by, n), *range(n - by))


@lru_cache(maxsize=128)
def _rotation(
    n: int, by: int = 1, reflect: bool = False
) -> tuple[NDArray[np.intp], tuple[int, ...]]:
    """The gather into ``_rotation_order(n, by, reflect)``, and that order."""
    order = _rotation_order(n, by, reflect)
    return np.arange(4**n).reshape((4,) * n).transpose(order).reshape(-1), order


def _second_to_last(vec: Vector, n: int, s: Matrix) -> tuple[Vector, tuple[int, ...]]:
    """One-qubit ``s`` on the qubit second to last. Up to ``_ROTATE_UP_TO`` qubits the
    last two axes move to the front, so the qubit is first, where the floor's own
    product applies it, and the group's cyclic order is kept: a chain of gates stays
    adjacent, and the qubit's successor (the next gate's partner in a chain or ring) is
    right behind it (small groups: one gather; larger: one copy into kept scratch
    space, a gather's index array costing more there than the copy). Beyond, only the
    qubit's own axis moves to the front (a copy of 64-byte records, which numpy makes
    10-20 % faster than that of single entries; at 9 qubits the rotation measured 1.8-2.1
    times the floor, this 1.4-1.7): it leaves the qubit apart from both neighbours, so
    the next gate on either pays a move of its own."""
    if n <= _GATHER_UP_TO + 1:
        idx, order = _rotation(n, 2)
        out: Vector = s.dot(vec[idx].reshape(4, -1)).reshape(-1)
        return out, order
    near = _buffers(n)[0]
    if n <= _ROTATE_UP_TO:
        np.copyto(near.reshape(16, -1), vec.reshape(-1, 16).T)
        order = _rotation_order(n, 2)
    else:
        rec = _records(4)
        np.copyto(near.view(rec).reshape(4, -1), vec.view(rec).reshape(-1, 4).T)
        order = _axes(n, (n - 2,))[0]
    out = s.dot(near.reshape(4, -1)).reshape(-1)
    return out, order


def _pair_moved(
    vec: Vector, n: int, s: Matrix, pos: tuple[int, ...]
) -> tuple[Vector, tuple[int, ...]]:
    """Two-qubit ``s`` on positions not next to each other, in the order given: one
    copy brings their axes together (to the back; small groups: the front), where one
    product covers the whole state, and the result stays in that order (returned)."""
    if sorted(pos) == [0, n - 1]:  # the last axis to the front: the cyclic order is
        # kept (a ring of gates then needs one move per round, as it did before)
        if n <= _GATHER_UP_TO:  # the pair in the order given: no exchanged copy of s
            idx, turned = _rotation(n, reflect=pos[0] == 0)
            small: Vector = s.dot(vec[idx].reshape(16, -1)).reshape(-1)
            return small, turned
        near = _buffers(n)[0]
        np.copyto(near.reshape(4, -1), vec.reshape(-1, 4).T)
        wrap = s if pos[0] == n - 1 else exchanged(s)  # first on the last qubit's axis
        wrapped: Vector = wrap.dot(near.reshape(16, -1)).reshape(-1)
        return wrapped, _rotation_order(n)
    if n <= _GATHER_UP_TO:  # one gather (to the front) of a small group
        order = _axes(n, pos)[0]
        moved: Vector = s.dot(vec[_gather(n, pos)[0]].reshape(16, -1)).reshape(-1)
        return moved, order
    a, b = pos
    if a > b:  # the pair in the group's order (the copy below keeps longer runs)
        s, a, b = exchanged(s), b, a
    left, mid, right = 4**a, 4 ** (b - a - 1), 4 ** (n - b - 1)
    near = _buffers(n)[0]
    if right == 1:  # a's axis to just before b's (the last): runs of 4 entries
        rec = _records(4)
        np.copyto(
            near.view(rec).reshape(left, mid, 4),
            vec.view(rec).reshape(left, 4, mid).transpose(0, 2, 1),
        )
    else:  # both axes to the back (measured: cheaper than to the front, whose runs
        # of ``right`` entries are longer, once the copy is bound by memory)
        np.copyto(
            near.reshape(left, mid, right, 4, 4),
            vec.reshape(left, 4, mid, 4, right).transpose(0, 2, 4, 1, 3),
        )
    moved = near.reshape(-1, 16).dot(s.T).reshape(-1)
    return moved, (*(x for x in range(n) if x not in (a, b)), a, b)


def apply_moving(
    vec: Vector, n: int, s: Matrix, pos: tuple[int, ...]
) -> tuple[Vector, tuple[int, ...] | None]:
    """``apply_at``, except that where the op's axes are expensive to reach (a qubit
    second to last; two qubits apart) the result may come back with the group's axes
    reordered: (new vector, order), where ``order[i]`` is the old position of the axis
    now at position i, or None if the order is unchanged. The group's qubit list is the
    map from qubits to axes, so ``Register`` reorders it and never moves the state back.

    >>> v = to_paired(np.diag([1.0, 0, 0, 0, 0, 0, 0, 0]).astype(complex))  # |000>
    >>> x = np.array([[0, 0, 0, 1], [0, 0, 1, 0], [0, 1, 0, 0], [1, 0, 0, 0]], dtype=complex)
    >>> out, order = apply_moving(v, 3, x, (1,))  # X on the middle qubit
    >>> order, float(to_standard(out, 3)[4, 4].real)  # it now comes first: |100>
    ((1, 2, 0), 1.0)
    """
    if len(pos) == 1:
        if 0 < pos[0] == n - 2 and n <= _MOVE_UP_TO:
            return _second_to_last(vec, n, s)
    elif len(pos) == 2 and abs(pos[1] - pos[0]) != 1:
        return _pair_moved(vec, n, s, pos)
    return apply_at(vec, n, s, pos), None


class Group:
    """One density matrix over ``qubits`` (first listed = most significant bit), held
    as the paired vector ``vec``; ``rho`` reads and writes it as a matrix."""

    __slots__ = ("qubits", "vec")

    def __init__(self, qubits: list[int], vec: Vector) -> None:
        self.qubits = qubits
        self.vec = vec

    @property
    def rho(self) -> Matrix:
        return to_standard(self.vec, len(self.qubits))

    @rho.setter
    def rho(self, rho: Matrix) -> None:
        self.vec = to_paired(rho)


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
        g = Group(list(qubits), to_paired(rho))
        for q in qubits:
            self.group_of[q] = g

    def groups(self) -> list[Group]:
        seen: dict[int, Group] = {}
        for g in self.group_of:
            seen.setdefault(id(g), g)
        return list(seen.values())

    def _merge(self, qubits: Sequence[int]) -> Group:
        first = self.group_of[qubits[0]]
        for q in qubits[1:]:
            other = self.group_of[q]
            if other is not first:
                first.vec = np.multiply.outer(first.vec, other.vec).reshape(-1)
                first.qubits.extend(other.qubits)
                for oq in other.qubits:
                    self.group_of[oq] = first
        return first

    def apply(self, superop: Matrix, qubits: list[int]) -> None:
        """Apply a superoperator (standard order) on ``qubits``, merging their groups if
        needed."""
        self.apply_paired(paired(superop, len(qubits)), qubits)

    def apply_paired(self, superop: Matrix, qubits: Sequence[int]) -> None:
        """``apply`` for a superoperator already in paired order (the fast path)."""
        g = self._merge(qubits)
        members = g.qubits
        if len(qubits) == 1:
            pos: tuple[int, ...] = (members.index(qubits[0]),)
        else:
            pos = tuple([members.index(q) for q in qubits])
        g.vec, order = apply_moving(g.vec, len(members), superop, pos)
        if order is not None:
            members[:] = [members[i] for i in order]

    def precedes(self, a: int, b: int) -> bool:
        """Whether an op on (a, b) finds a first in the group it acts on: b is elsewhere,
        or after a, in a's group (merging puts a's group first)."""
        g = self.group_of[a]
        return g is not self.group_of[b] or g.qubits.index(a) < g.qubits.index(b)

    def _detach(self, q: int) -> None:
        """Trace qubit q out of its group (its partners keep their reduced state)."""
        g = self.group_of[q]
        if len(g.qubits) == 1:
            return
        t = g.vec.reshape(4 ** g.qubits.index(q), 4, -1)
        g.vec = (t[:, 0] + t[:, 3]).reshape(-1)
        g.qubits.remove(q)

    def reset(self, q: int, mixed: bool = False) -> None:
        """Put q alone in |0> (or the maximally mixed state), tracing out its old state."""
        self.prepare(q, _MIXED if mixed else _ZERO)

    def prepare(self, q: int, state: Vector) -> None:
        """Put q alone in the one-qubit ``state`` (a flattened 2x2 density matrix),
        tracing out its old state."""
        g = self.group_of[q]
        if len(g.qubits) == 1:
            g.vec = state.copy()
            return
        self._detach(q)
        self.group_of[q] = Group([q], state.copy())

    def prob_one(self, q: int) -> float:
        return min(max(self._sum_one(q), 0.0), 1.0)

    def _sum_one(self, q: int) -> float:
        """Sum of rho's diagonal where q is 1 (prob_one before clipping)."""
        g = self.group_of[q]
        return sum_one(g.vec, len(g.qubits), g.qubits.index(q))

    def measure(self, q: int, u: float, gamma: float = 0.0) -> int:
        """Projective Z measurement of q using uniform sample ``u``, after amplitude
        damping of q with probability ``gamma`` (dephasing, the rest of idle decay,
        changes neither the outcome nor the state left behind); q ends alone in the
        post-measurement state, its former partners in their conditional state."""
        g = self.group_of[q]
        n, k = len(g.qubits), g.qubits.index(q)
        p1 = prob_one_after(g.vec, n, k, gamma)
        outcome = 1 if u < p1 else 0
        if n > 1:
            g.vec = measured_rest(g.vec, n, k, outcome, gamma, p1)
            g.qubits.remove(q)
        self.group_of[q] = Group([q], (_ONE if outcome else _ZERO).copy())
        return outcome

    def density_matrix(self, qubits: list[int]) -> Matrix:
        """Reduced density matrix of ``qubits`` in the order given (for tests, tools)."""
        groups: list[Group] = []
        for q in qubits:
            g = self.group_of[q]
            if all(g is not h for h in groups):
                groups.append(g)
        vec = np.ones(1, dtype=complex)
        order: list[int] = []
        for g in groups:
            vec = np.multiply.outer(vec, g.vec).reshape(-1)
            order.extend(g.qubits)
        t = vec.reshape((4,) * len(order))
        for q in [q for q in order if q not in qubits]:
            k = order.index(q)
            t = t.take(0, axis=k) + t.take(3, axis=k)
            order.remove(q)
        perm = [order.index(q) for q in qubits]
        return to_standard(t.transpose(perm).reshape(-1), len(qubits))
