"""``measured_pairs`` makes the same ``Pair`` objects as ``Pair(...)`` does."""

from __future__ import annotations

import dataclasses

import pytest

from qnodeos.lang import messages as m
from qnodeos.sdk.epr import Pair, measured_pairs


def test_bulk_pairs_equal_pairs_made_one_by_one() -> None:
    wire = [
        m.EprPair(ent_id=("alice", "bob", 7), bell_index=3, goodness=0.9, attempts=4,
                  at_ns=1200, outcome=1, basis="X"),
        m.EprPair(ent_id=("alice", "bob", 8), bell_index=0, goodness=0.9, attempts=1,
                  at_ns=1500, outcome=0, basis="R"),
    ]  # fmt: skip
    bulk = measured_pairs(wire)
    for got, p in zip(bulk, wire, strict=True):
        fields = {f.name: getattr(p, f.name) for f in dataclasses.fields(Pair)}
        want = Pair(**{**fields, "qubit": None})  # a measured pair has no qubit
        assert got == want and hash(got) == hash(want) and repr(got) == repr(want)
        assert vars(got) == vars(want)  # every field, in the same order
        with pytest.raises(dataclasses.FrozenInstanceError):
            got.outcome = 0  # type: ignore[misc]
    assert measured_pairs([]) == []
