"""``physics.apply_moving``: ``apply_at``, except that the group's axes may come back
reordered (the order returned is the map, and ``Register`` keeps it in the group's qubit
list). Its result, read through that order, must be ``apply_at``'s at every layout; and
the moves it makes must keep neighbours next to each other where the layout allows, so
a chain of gates does not pay a move at almost every gate."""

from __future__ import annotations

import numpy as np
import pytest

from qnodeos.qdevice import physics
from qnodeos.qdevice.physics import Register, apply_at, apply_moving

from .test_apply_at import positions


def in_old_order(out: physics.Vector, n: int, order: tuple[int, ...] | None) -> physics.Vector:
    """``out`` (axes in ``order``: axis i holds old axis order[i]) back in the old order."""
    if order is None:
        return out
    back = tuple(int(a) for a in np.argsort(order))
    moved: physics.Vector = out.reshape((4,) * n).transpose(back).reshape(-1)
    return moved


def check(n: int) -> None:
    rng = np.random.default_rng(100 + n)
    vec = rng.normal(size=4**n) + 1j * rng.normal(size=4**n)
    vec /= np.linalg.norm(vec)
    before = vec.copy()
    for pos in positions(n):
        d = 4 ** len(pos)
        s = (rng.normal(size=(d, d)) + 1j * rng.normal(size=(d, d))) / d
        out, order = apply_moving(vec, n, s, pos)
        if order is not None:
            assert sorted(order) == list(range(n)), (n, pos, order)
        got = in_old_order(out, n, order)
        assert np.max(np.abs(got - apply_at(vec, n, s, pos))) < 1e-12, (n, pos)
        assert np.array_equal(vec, before)  # the state passed in is left alone


@pytest.mark.parametrize("n", range(1, 10))
def test_apply_moving_is_apply_at_read_through_its_order(n: int) -> None:
    check(n)


@pytest.mark.slow
@pytest.mark.parametrize("n", [10, 11])
def test_apply_moving_is_apply_at_read_through_its_order_on_large_groups(n: int) -> None:
    check(n)


def cyclic(order: tuple[int, ...]) -> bool:
    """Whether every pair of axes next to each other (the last and first too) before
    is next to each other (cyclically) in ``order``."""
    n = len(order)
    at = {axis: i for i, axis in enumerate(order)}
    return all((at[(a + 1) % n] - at[a]) % n in (1, n - 1) for a in range(n))


@pytest.mark.parametrize("n", range(3, 9))
def test_the_qubit_next_to_the_last_keeps_the_cyclic_order(n: int) -> None:
    vec = np.zeros(4**n, dtype=complex)
    vec[0] = 1.0
    _, order = apply_moving(vec, n, np.eye(4, dtype=complex), (n - 2,))
    assert order is not None and cyclic(order), order


@pytest.mark.parametrize("n", range(3, 10))
def test_the_wrap_pair_keeps_the_cyclic_order(n: int) -> None:
    vec = np.zeros(4**n, dtype=complex)
    vec[0] = 1.0
    for pos in ((0, n - 1), (n - 1, 0)):
        _, order = apply_moving(vec, n, np.eye(16, dtype=complex), pos)
        assert order is not None and cyclic(order), (pos, order)


@pytest.mark.parametrize("n", [4, 5, 6, 7, 8])
def test_a_chain_of_gates_round_a_ring_moves_the_state_at_most_twice_a_round(
    n: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A one-qubit gate then a two-qubit gate to the next qubit, round a ring, on one
    group: the qubit next to the last and the wrap pair are each met about once per
    round; no other gate may find its qubits apart."""
    moves = 0

    def counting(
        vec: physics.Vector, n: int, s: physics.Matrix, pos: tuple[int, ...]
    ) -> tuple[physics.Vector, tuple[int, ...] | None]:
        nonlocal moves
        out, order = apply_moving(vec, n, s, pos)
        moves += order is not None
        return out, order

    reg = Register(n)
    for q in range(1, n):
        reg.apply_paired(np.eye(16, dtype=complex), [q - 1, q])
    monkeypatch.setattr(physics, "apply_moving", counting)
    rounds = 3
    for _ in range(rounds):
        for q in range(n):
            reg.apply_paired(np.eye(4, dtype=complex), [q])
            reg.apply_paired(np.eye(16, dtype=complex), [q, (q + 1) % n])
    assert moves <= 2 * rounds, moves
    assert len(reg.group_of[0].qubits) == n
