"""Pauli frames of swapped pairs, sans-IO: which Bell state two ends share after the
repeaters between them swapped, and what each end does about it.

Conventions. Bell indices as the link layer's (``netlink.models``): 0 Phi+, 1 Phi-,
2 Psi+, 3 Psi-; the state with index ``b`` is ``(X^x Z^z on one half) Phi+`` with
``x = b >> 1`` and ``z = b & 1`` (up to a global phase), so frames compose by XOR of
the indices. Every link pair reaches the network layer as Phi+ (its link's first node
corrected it). A repeater's Bell measurement on the left half ``l`` and right half ``r``
of two such pairs is CNOT(l -> r), H(l), then measure l (``m1``) and r (``m2``); the
outer halves are then left in the Bell state of index ``swap_index(m1, m2)`` =
``2*m2 + m1``, i.e. x = m2, z = m1. Over a path, the end-to-end index is the XOR of
every swap's (``compose``). The check is numerical: tests/netlink/test_frames.py.

>>> swap_index(1, 0), swap_index(0, 1), compose([swap_index(1, 1), swap_index(0, 1)])
(1, 2, 1)
"""

from __future__ import annotations

from collections.abc import Iterable

# Bell index whose correction anticommutes with measuring in each basis: an end that
# measured a half of such a pair flips its outcome to report it in the Phi+ frame.
FLIPS = {"Z": frozenset({2, 3}), "X": frozenset({1, 3}), "Y": frozenset({1, 2})}


def swap_index(m1: int, m2: int) -> int:
    """The Bell index left on the outer halves by a swap with outcomes ``m1`` (the
    left half, measured after H) and ``m2`` (the right half)."""
    return 2 * (m2 & 1) + (m1 & 1)


def compose(indices: Iterable[int]) -> int:
    """The Bell index of a pair made by swaps whose own indices are ``indices`` (the
    link pairs themselves all being Phi+)."""
    out = 0
    for b in indices:
        out ^= b
    return out


def flip(bell: int, basis: str) -> bool:
    """Whether an outcome in ``basis`` on one half of the Bell state ``bell`` must be
    flipped to read as if the pair were Phi+ (done by one end only)."""
    return bell in FLIPS[basis]
