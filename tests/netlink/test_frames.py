"""The network layer's pure parts: routing (same path both ways, fewest hops) and the
Pauli frame of swapped pairs, checked numerically on state vectors (exact: no sampling)."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from qnodeos.netlink.frames import FLIPS, compose, flip, swap_index
from qnodeos.netlink.models import BELL_VECTORS, CORRECTION
from qnodeos.netlink.routing import shortest_path

H = np.array([[1, 1], [1, -1]], dtype=complex) / np.sqrt(2)
PAULI = {
    "x": np.array([[0, 1], [1, 0]], dtype=complex),
    "y": np.array([[0, -1j], [1j, 0]], dtype=complex),
    "z": np.diag([1, -1]).astype(complex),
}


def on(op: np.ndarray, q: int, n: int) -> np.ndarray:
    mats = [op if i == q else np.eye(2) for i in range(n)]
    out = mats[0]
    for m in mats[1:]:
        out = np.kron(out, m)
    return out


def cnot(c: int, t: int, n: int) -> np.ndarray:
    dim = 2**n
    out = np.zeros((dim, dim), dtype=complex)
    for i in range(dim):
        bits = [(i >> (n - 1 - k)) & 1 for k in range(n)]
        if bits[c]:
            bits[t] ^= 1
        j = sum(b << (n - 1 - k) for k, b in enumerate(bits))
        out[j, i] = 1
    return out


def swap(state: np.ndarray, n: int, left: int, m1: int, m2: int) -> np.ndarray:
    """Bell-measure qubits ``left`` and ``left + 1`` of ``state`` (CNOT, H, measure),
    post-selected on (m1, m2); the normalised state of the other qubits."""
    r = left + 1
    psi = on(H, left, n) @ cnot(left, r, n) @ state
    psi = psi.reshape([2] * n)
    idx: list[int | slice] = [slice(None)] * n
    idx[left], idx[r] = m1, m2
    rest = psi[tuple(idx)].reshape(-1)
    p = np.vdot(rest, rest).real
    assert p == pytest.approx(0.25)  # every outcome is equally likely
    return rest / np.sqrt(p)


def overlap(psi: np.ndarray, bell: int) -> float:
    return float(abs(np.vdot(BELL_VECTORS[bell], psi)) ** 2)


@pytest.mark.parametrize("b1,b2,m1,m2", list(itertools.product(range(4), range(4), (0, 1), (0, 1))))
def test_one_swap_leaves_the_composed_bell_state(b1: int, b2: int, m1: int, m2: int) -> None:
    state = np.kron(BELL_VECTORS[b1], BELL_VECTORS[b2])  # (a, l) (r, c)
    out = swap(state, 4, 1, m1, m2)
    want = compose([b1, b2, swap_index(m1, m2)])
    assert overlap(out, want) == pytest.approx(1.0)
    # the receiving end's correction (CORRECTION, on its half) makes it Phi+
    fix = np.eye(2, dtype=complex)
    for g in CORRECTION[want]:
        fix = PAULI[g] @ fix
    assert overlap(np.kron(np.eye(2), fix) @ out, 0) == pytest.approx(1.0)


@pytest.mark.parametrize("ms", list(itertools.product((0, 1), repeat=4)))
def test_two_swaps_compose_by_xor(ms: tuple[int, int, int, int]) -> None:
    """a-l1 r1-l2 r2-c: the repeater at l2/r2 swaps first, then the one at l1/r1."""
    phi = BELL_VECTORS[0]
    state = np.kron(np.kron(phi, phi), phi)  # qubits a l1 r1 l2 r2 c
    after = swap(state, 6, 3, ms[2], ms[3])  # a l1 r1 c
    out = swap(after, 4, 1, ms[0], ms[1])  # a c
    want = compose([swap_index(ms[0], ms[1]), swap_index(ms[2], ms[3])])
    assert overlap(out, want) == pytest.approx(1.0)


@pytest.mark.parametrize("bell", range(4))
@pytest.mark.parametrize("basis", "XYZ")
def test_flipping_one_end_reads_as_phi_plus(bell: int, basis: str) -> None:
    """Outcomes of both halves measured in one basis: their parity for Bell state
    ``bell``, flipped (by one end) when ``flip`` says, equals Phi+'s."""
    rot = {"Z": np.eye(2), "X": H, "Y": H @ np.diag([1, -1j])}[basis]
    def parity(b: int) -> float:  # <(-1)^(o1 + o2)>
        psi = np.kron(rot, rot) @ BELL_VECTORS[b]
        probs = np.abs(psi) ** 2
        return float(probs[0] - probs[1] - probs[2] + probs[3])
    sign = -1 if flip(bell, basis) else 1
    assert sign * parity(bell) == pytest.approx(parity(0))
    assert FLIPS[basis] == {b for b in range(4) if parity(b) != pytest.approx(parity(0))}


def test_routing_is_shortest_and_symmetric() -> None:
    chain = [(f"n{i}", f"n{i + 1}") for i in range(5)]
    assert shortest_path(chain, "n0", "n5") == [f"n{i}" for i in range(6)]
    assert shortest_path(chain, "n5", "n0") == [f"n{i}" for i in range(5, -1, -1)]
    # two equal-length routes: both directions take the same one
    diamond = [("a", "b"), ("a", "c"), ("b", "d"), ("c", "d")]
    assert shortest_path(diamond, "a", "d") == shortest_path(diamond, "d", "a")[::-1]
    assert shortest_path(diamond, "a", "a") == ["a"]
    assert shortest_path([("a", "b")], "a", "c") is None
