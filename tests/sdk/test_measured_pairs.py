"""Measured pairs as columns (``MeasuredPairs``, as a node sends an app's measured
pairs): validated on the way in, and made into the same ``Pair`` objects as
``Pair(...)`` makes."""

from __future__ import annotations

import dataclasses

import msgspec
import pytest

from qnodeos.errors import ProtocolError
from qnodeos.lang import codec
from qnodeos.lang import messages as m
from qnodeos.sdk.epr import Pair, measured_pairs

WIRE = [
    m.EprPair(ent_id=("alice", "bob", 7), bell_index=3, goodness=0.9, attempts=4,
              at_ns=1200, outcome=1, basis="X"),
    m.EprPair(ent_id=("alice", "bob", 8), bell_index=0, goodness=0.9, attempts=1,
              at_ns=1500, outcome=0, basis="R"),
]  # fmt: skip


def test_columns_say_what_the_pairs_say_and_make_the_same_pairs() -> None:
    cols = m.MeasuredPairs.of(WIRE)
    assert cols is not None and cols.ent_ids() == [p.ent_id for p in WIRE]
    c = codec.node_to_app()
    msg = m.EprDone(req=3, pairs=[], measured=cols)
    assert c.decode(c.encode(msg)) == msg
    for got, p in zip(measured_pairs(cols), WIRE, strict=True):
        fields = {f.name: getattr(p, f.name) for f in dataclasses.fields(Pair)}
        want = Pair(**{**fields, "qubit": None})  # a measured pair has no qubit
        assert got == want and hash(got) == hash(want) and repr(got) == repr(want)
        assert vars(got) == vars(want)  # every field, in the same order
        with pytest.raises(dataclasses.FrozenInstanceError):
            got.outcome = 0  # type: ignore[misc]


def test_only_measured_pairs_of_one_link_become_columns() -> None:
    kept = msgspec.structs.replace(WIRE[0], qubit=2, outcome=-1, basis="")
    other = msgspec.structs.replace(WIRE[1], ent_id=("alice", "carol", 9))
    assert m.MeasuredPairs.of([]) is None
    assert m.MeasuredPairs.of([WIRE[0], kept]) is None
    assert m.MeasuredPairs.of([WIRE[0], other]) is None


@pytest.mark.parametrize(
    "change, words",
    [
        ({"outcomes": [1]}, "differ in length"),
        ({"bases": "XQ"}, "$.measured"),
        ({"bell_index": [4, 0]}, "$.measured"),
    ],
)
def test_bad_columns_are_refused_naming_the_problem(change: dict[str, object], words: str) -> None:
    cols = m.MeasuredPairs.of(WIRE)
    assert cols is not None
    raw = msgspec.to_builtins(m.EprPairs(req=1, pairs=[], measured=cols))
    fields = [f.name for f in msgspec.structs.fields(m.MeasuredPairs)]
    for k, v in change.items():
        raw["measured"][fields.index(k)] = v
    data = msgspec.msgpack.encode([codec.SCHEMA_VERSION, raw])
    with pytest.raises(ProtocolError, match=__import__("re").escape(words)):
        codec.node_to_app().decode(data)
