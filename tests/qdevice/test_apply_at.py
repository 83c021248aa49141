"""``physics.apply_at`` (which picks, per layout, one product on a view, a widened
product, a gather or a transposing move) against the way it used to apply every op
that was not at an easy position: move the axes to the front, apply, move them back.
Random states and superoperators, every one-qubit position and two-qubit positions
(both orders) at 1..12 qubits: all pairs up to 7 qubits, and beyond that every pair
among the first three and last three positions, which covers every layout apply_at
tells apart (which axis is first, next to last or last; adjacent or not; the order)."""

from __future__ import annotations

import numpy as np
import pytest

from qnodeos.qdevice.physics import Matrix, Vector, apply_at, exchanged


def reference(vec: Vector, n: int, s: Matrix, pos: tuple[int, ...]) -> Vector:
    """The old general path: bring ``pos`` to the front by a transposing copy, apply
    ``s`` there, copy back."""
    order = (*pos, *(a for a in range(n) if a not in pos))
    back = tuple(int(a) for a in np.argsort(order))
    moved = vec.reshape((4,) * n).transpose(order).reshape(s.shape[1], -1)
    out: Vector = (s @ moved).reshape((4,) * n).transpose(back).reshape(-1)
    return out


def positions(n: int) -> list[tuple[int, ...]]:
    near = sorted({p for p in (0, 1, 2, n - 3, n - 2, n - 1) if 0 <= p < n})
    pool = range(n) if n <= 7 else near
    return [(p,) for p in range(n)] + [(p, q) for p in pool for q in pool if p != q]


def check(n: int) -> None:
    rng = np.random.default_rng(n)
    vec = rng.normal(size=4**n) + 1j * rng.normal(size=4**n)
    vec /= np.linalg.norm(vec)
    for pos in positions(n):
        d = 4 ** len(pos)
        s = (rng.normal(size=(d, d)) + 1j * rng.normal(size=(d, d))) / d
        got = apply_at(vec, n, s, pos)
        assert got.shape == vec.shape
        assert np.max(np.abs(got - reference(vec, n, s, pos))) < 1e-12, (n, pos)


@pytest.mark.parametrize("n", range(1, 10))
def test_apply_at_agrees_with_moving_the_axes(n: int) -> None:
    check(n)


@pytest.mark.slow
@pytest.mark.parametrize("n", [10, 11, 12])
def test_apply_at_agrees_with_moving_the_axes_on_large_groups(n: int) -> None:
    check(n)


def test_the_state_passed_in_is_left_alone() -> None:
    rng = np.random.default_rng(1)
    for n, pos in ((3, (1,)), (5, (3,)), (6, (4,)), (4, (0, 2)), (6, (1, 4)), (6, (3, 4))):
        vec = rng.normal(size=4**n) + 0j
        before = vec.copy()
        d = 4 ** len(pos)
        apply_at(vec, n, np.eye(d, dtype=complex) * 2, pos)
        assert np.array_equal(vec, before)


def test_a_reversed_pair_is_the_exchanged_superoperator() -> None:
    rng = np.random.default_rng(2)
    vec = rng.normal(size=4**4) + 1j * rng.normal(size=4**4)
    s = rng.normal(size=(16, 16)) + 1j * rng.normal(size=(16, 16))
    assert np.allclose(apply_at(vec, 4, s, (2, 1)), apply_at(vec, 4, exchanged(s), (1, 2)))


def test_two_threads_applying_ops_do_not_share_scratch() -> None:
    """Scratch arrays are per thread: deterministic runs may run in threads of one
    process (numpy lets them interleave during BLAS calls)."""
    import threading

    from qnodeos.qdevice import physics

    seen: list[int] = []

    def grab() -> None:
        seen.append(id(physics._buffers(6)[0]))
        seen.append(id(physics._widened(np.eye(4, dtype=complex)).base))

    t = threading.Thread(target=grab)
    t.start()
    t.join()
    grab()
    grab()
    assert seen[2:4] == seen[4:6]  # one thread keeps its own
    assert seen[0] != seen[2] and seen[1] != seen[3]  # another has others
