"""A round's measured heralds cross between quantum processes as columns (``QMeasured``
in ``QRound``): they survive the codec, and bad columns are refused with an error that
names the problem (a peer's bad message never reaches the round)."""

from __future__ import annotations

import re

import msgspec
import pytest

from qnodeos.errors import ProtocolError
from qnodeos.lang import codec
from qnodeos.lang import messages as m

HALF = bytes(range(64))


def _round(**cols: object) -> m.QRound:
    base: dict[str, object] = {
        "seqs": [7, 8],
        "attempts": [1, 3],
        "at_ns": [10.0, 40.0],
        "bell_index": [0, 3],
        "halves": [HALF, HALF[::-1]],
    }
    base.update(cols)
    return m.QRound(
        frm="alice", key="k", heralds=[], attempts=0, at_ns=50.0, reason="", epoch_ns=0,
        measured=m.QMeasured(**base),  # type: ignore[arg-type]
    )  # fmt: skip


def test_measured_columns_survive_the_codec_and_read_as_heralds() -> None:
    c = codec.qdevice_peer()
    msg = _round()
    assert c.decode(c.encode(msg)) == msg
    assert msg.seqs() == [7, 8]
    assert msg.all_heralds() == [
        m.QHerald(7, 1, 10.0, 0, HALF),
        m.QHerald(8, 3, 40.0, 3, HALF[::-1]),
    ]


@pytest.mark.parametrize(
    ("index", "value", "words"),
    [
        (0, [7], "differ in length"),
        (4, [HALF, HALF[:63]], "$.measured"),
        (3, [0, 4], "$.measured"),
        (1, [1, -1], "$.measured"),
    ],
)
def test_bad_measured_columns_are_refused_naming_the_problem(
    index: int, value: object, words: str
) -> None:
    raw = msgspec.to_builtins(_round(), builtin_types=(bytes,))
    raw["measured"][index] = value
    data = msgspec.msgpack.encode([codec.SCHEMA_VERSION, raw])
    with pytest.raises(ProtocolError, match=re.escape(words)):
        codec.qdevice_peer().decode(data)


def test_a_round_of_more_than_4096_heralds_is_refused() -> None:
    n = 4000
    cols = {"seqs": list(range(n)), "attempts": [1] * n, "at_ns": [1.0] * n}
    big = _round(**cols, bell_index=[0] * n, halves=[HALF] * n)
    raw = msgspec.to_builtins(big, builtin_types=(bytes,))
    raw["heralds"] = [[1, 1, 0.0, 0, b"", -1, b""]] * 100
    data = msgspec.msgpack.encode([codec.SCHEMA_VERSION, raw])
    with pytest.raises(ProtocolError, match="4100 heralds in one round"):
        codec.qdevice_peer().decode(data)
