"""Hostile input for every endpoint of a node, as hypothesis strategies, and a harness
that throws it at real running nodes while a legitimate app checks its results.

Used by ``tests/integration/test_fuzz.py`` (a modest number of examples in CI) and by
``bench/fuzz.py`` (100,000+ messages per endpoint, with crash, hang and memory figures).

What is generated, per endpoint (app, peer, qpeer, qdevice):
- raw bytes, in any number of frames (0 to 4), sometimes one far over the size limit;
- msgpack that is well-formed but means nothing: any values, deeply nested lists,
  truncated encodings of real messages;
- every message type the endpoint takes, with every field filled by hypothesis from
  its Python type but ignoring its bounds (huge, negative, non-finite numbers, long
  strings), and with senders claiming to be other nodes (spoofing);
- each message sent twice (replay).
"""

from __future__ import annotations

import functools
import math
import typing
from dataclasses import dataclass
from typing import Any

import msgspec
import trio
import zmq
from hypothesis import strategies as st

from qnodeos import sdk
from qnodeos.lang import messages as m
from qnodeos.lang.codec import SCHEMA_VERSION

UNIONS: dict[str, Any] = {
    "app": m.AppToNode,
    "peer": m.NodeToNode,
    "qpeer": m.QPeer,
    "qdevice": m.ToDevice,
}
ENDPOINTS = tuple(UNIONS)
_ENC = msgspec.msgpack.Encoder()
BIG = 5 * 1024 * 1024  # over the 4 MiB frame limit

_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**63), max_value=2**64 - 1),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=40),
    st.binary(max_size=64),
)
any_values = st.recursive(
    _scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=6), st.dictionaries(st.text(max_size=10), inner, max_size=6)
    ),
    max_leaves=30,
)
names = st.sampled_from(["alice", "bob", "mallory", "", "x" * 200]) | st.text(max_size=20)


def _field(t: Any) -> st.SearchStrategy[Any]:
    """Values of type ``t`` (ignoring msgspec bounds); sender names drawn to spoof."""
    if typing.get_origin(t) is typing.Annotated:
        t = typing.get_args(t)[0]
    if t is str:
        return names
    if t is float:
        return st.floats(allow_nan=True, allow_infinity=True) | st.sampled_from(
            [1e300, -1e300, 1e308, math.inf, -math.inf, math.nan, -1.0, 0.0]
        )
    if t is int:
        return st.integers(min_value=-(2**63), max_value=2**63 - 1) | st.sampled_from(
            [-1, 0, 2**62, 2**63 - 1]
        )
    return st.from_type(t)


def _make(cls: type[msgspec.Struct], **fields: Any) -> msgspec.Struct | None:
    """``cls(**fields)``, or None where the class refuses them (a ``__post_init__``
    check): such a value is left out, as the sender's own library would not make it."""
    try:
        return cls(**fields)
    except ValueError:
        return None


def message(cls: type[msgspec.Struct]) -> st.SearchStrategy[msgspec.Struct]:
    hints = typing.get_type_hints(cls, include_extras=True)
    fields = {f: _field(hints[f]) for f in cls.__struct_fields__}
    if "__post_init__" not in vars(cls):
        return st.builds(cls, **fields)
    made = st.builds(functools.partial(_make, cls), **fields)
    return made.filter(lambda v: v is not None)  # type: ignore[return-value]


for _checked in (m.MeasuredPairs, m.QMeasured):  # built inside other messages
    st.register_type_strategy(_checked, message(_checked))


def _encodable(msg: msgspec.Struct) -> bytes | None:
    try:
        return _ENC.encode((SCHEMA_VERSION, msgspec.Raw(_ENC.encode(msg))))
    except (OverflowError, TypeError, ValueError):
        return None


def typed(endpoint: str) -> st.SearchStrategy[bytes]:
    members = typing.get_args(UNIONS[endpoint])
    return (
        st.one_of(*(message(c) for c in members))
        .map(_encodable)
        .filter(lambda b: b is not None)
        .map(lambda b: b or b"")
    )


def frames(endpoint: str) -> st.SearchStrategy[list[bytes]]:
    """One multipart message for ``endpoint`` (a list of frames)."""
    one = st.one_of(
        st.binary(max_size=512),
        any_values.map(lambda v: _ENC.encode([SCHEMA_VERSION, v])),
        any_values.map(_ENC.encode),
        st.integers(min_value=1, max_value=5000).map(
            lambda n: bytes([0x92, SCHEMA_VERSION]) + b"\x91" * n + b"\x00"
        ),
        typed(endpoint),
        typed(endpoint).flatmap(
            lambda b: st.integers(min_value=0, max_value=max(len(b) - 1, 0)).map(lambda k: b[:k])
        ),
        st.integers(min_value=0, max_value=40).map(lambda i: b"x" * (BIG if i == 0 else i)),
    )
    return st.one_of(
        one.map(lambda f: [f]),  # the right frame count
        st.lists(one, min_size=0, max_size=4),  # any frame count
    )


@dataclass
class Target:
    """Raw DEALER sockets to one node's four endpoints (CURVE where keys say so)."""

    socks: dict[str, zmq.Socket[bytes]]
    sent: int = 0

    def blast(self, endpoint: str, msg: list[bytes]) -> None:
        """Send ``msg`` twice (a replay), drain whatever came back."""
        sock = self.socks[endpoint]
        for _ in range(2):
            try:
                sock.send_multipart(msg, zmq.NOBLOCK) if msg else sock.send(b"", zmq.NOBLOCK)
                self.sent += 1
            except zmq.Again:
                pass
        while True:
            try:
                sock.recv_multipart(zmq.NOBLOCK)
            except zmq.Again:
                break

    def close(self) -> None:
        for s in self.socks.values():
            s.close(linger=0)


def target(urls: dict[str, str], curves: dict[str, tuple[bytes, bytes, bytes] | None]) -> Target:
    ctx = zmq.Context.instance()
    socks = {}
    for ep, url in urls.items():
        s = ctx.socket(zmq.DEALER)
        s.setsockopt(zmq.LINGER, 0)
        s.setsockopt(zmq.SNDHWM, 10_000)
        curve = curves.get(ep)
        if curve is not None:
            s.curve_publickey, s.curve_secretkey, s.curve_serverkey = curve
        s.connect(url)
        socks[ep] = s
    return Target(socks)


async def legit_check(network: str) -> None:
    """A legitimate app on alice runs a block and takes pairs with one on bob; raises
    if anything is wrong or takes more than 10 s."""
    with trio.fail_after(10):
        async with (
            sdk.connect("alice", app="legit-a", qubits=1, network=network) as a,
            sdk.connect("bob", app="legit-b", qubits=1, network=network) as b,
        ):
            async with a.block() as blk:
                q = blk.qubit()
                q.x()
                out = q.measure()
            assert out.value == 1, "a block gave a wrong result"
            got: dict[str, list[sdk.Pair]] = {}

            async def side(name: str, node: sdk.Node, peer: str, app: str) -> None:
                epr = node.epr_socket(peer, app)
                ask = epr.create_measure if name == "a" else epr.recv_measure
                got[name] = await ask(4, bases="Z", timeout=8.0)

            async with trio.open_nursery() as nursery:
                nursery.start_soon(side, "a", a, "bob", "legit-b")
                nursery.start_soon(side, "b", b, "alice", "legit-a")
            ids = [p.ent_id for p in got["a"]]
            assert ids == [p.ent_id for p in got["b"]], "pair ids disagree"
            assert [p.outcome for p in got["a"]] == [p.outcome for p in got["b"]], "outcomes"
