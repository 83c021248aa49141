"""msgpack codec for all wire messages, with a schema version and validation.

A frame is ``[version, message]`` in msgpack; the message carries its type tag. Decoding
checks the size, the nesting, the version, the tag and every field's type and bounds
(msgspec, with the constraints of ``bounds``), and raises ProtocolError naming what was
wrong, so an adapter can reply with an error instead of crashing.

>>> c = Codec(messages.AppToNode)
>>> c.decode(c.encode(messages.Stop()))
Stop()
"""

from __future__ import annotations

import sys
from typing import Any, Generic, TypeVar

import msgspec

from ..errors import ProtocolError
from . import messages
from .bounds import MAX_COUNT

SCHEMA_VERSION = 2  # 2: measured pairs as columns (EprPairs, QRound), distillation fields
MAX_FRAME = 4 * 1024 * 1024
# msgspec stops at Python's recursion limit (RecursionError); none of our messages
# nests more than a handful of levels, so anything that deep is refused as malformed.
MAX_DEPTH = sys.getrecursionlimit()

T = TypeVar("T")


class _Frame(msgspec.Struct, array_like=True):
    v: int
    msg: msgspec.Raw


_PAIR = 0x92  # msgpack: an array of two items
_ID_KEYS = ("req", "block", "seq")


def peek(data: bytes) -> tuple[str, int] | None:
    """("type", id) of a message that failed to decode, if its frame still says them
    (None if not): the id of the request (``req``), block (``block``) or classical send
    (``seq``) that the refusal answers. Never raises.

    Reads only the head of the message's map (its type tag and the scalar fields that
    come first, as every message puts its id before its bulk) and stops at the first
    container: a 500 KB block is not walked again to refuse it (msgpack cannot skip a
    container without walking it).

    >>> c = Codec(messages.AppToNode)
    >>> peek(c.encode(messages.SendMsg(to_node="a", to_app="b", seq=7, data=b"")))
    ('send', 7)
    >>> peek(b"junk") is None
    True
    """
    try:
        return _peek(data)
    except (IndexError, ValueError, UnicodeDecodeError):
        return None


def _peek(data: bytes) -> tuple[str, int] | None:
    if len(data) < 3 or data[0] != _PAIR or data[1] > 0x7F:  # [small int version, message]
        return None
    pos = 2
    head = data[pos]
    if 0x80 <= head <= 0x8F:
        entries, pos = head & 0x0F, pos + 1
    elif head == 0xDE:
        entries, pos = int.from_bytes(data[pos + 1 : pos + 3], "big"), pos + 3
    else:
        return None
    kind: str | None = None
    for _ in range(entries):
        key, pos = _scalar(data, pos)
        value, pos = _scalar(data, pos)
        if not isinstance(key, str) or value is None:
            break
        if key == "type" and isinstance(value, str):
            kind = value
        elif key in _ID_KEYS and isinstance(value, int) and 0 <= value <= MAX_COUNT:
            return (kind, value) if kind is not None else None
    return None


def _scalar(data: bytes, pos: int) -> tuple[str | int | None, int]:
    """The msgpack string or unsigned integer at ``pos`` and where the next item
    starts; (None, pos) for anything else (a container ends the peek)."""
    b = data[pos]
    if b <= 0x7F:
        return b, pos + 1
    if 0xA0 <= b <= 0xBF:
        n = b & 0x1F
        return bytes(data[pos + 1 : pos + 1 + n]).decode(), pos + 1 + n
    if b == 0xD9:
        n = data[pos + 1]
        return bytes(data[pos + 2 : pos + 2 + n]).decode(), pos + 2 + n
    if b == 0xDA:
        n = int.from_bytes(data[pos + 1 : pos + 3], "big")
        return bytes(data[pos + 3 : pos + 3 + n]).decode(), pos + 3 + n
    if 0xCC <= b <= 0xCF:
        n = 1 << (b - 0xCC)
        return int.from_bytes(data[pos + 1 : pos + 1 + n], "big"), pos + 1 + n
    return None, pos


class Codec(Generic[T]):
    """Encoder/decoder for one direction of one conversation (a Union of message types)."""

    def __init__(self, kind: Any) -> None:
        self._enc = msgspec.msgpack.Encoder()
        self._frame = msgspec.msgpack.Decoder(_Frame)
        self._dec: msgspec.msgpack.Decoder[T] = msgspec.msgpack.Decoder(kind)

    def encode(self, msg: Any) -> bytes:
        # One pass: the pair is encoded as it stands (encoding the message first and
        # wrapping it in msgspec.Raw encodes twice and copies it: 0.7 µs against 0.3
        # for a 100-byte message).
        return self._enc.encode((SCHEMA_VERSION, msg))

    def decode(self, data: bytes) -> T:
        if len(data) > MAX_FRAME:
            raise ProtocolError(f"frame of {len(data)} bytes exceeds limit {MAX_FRAME}")
        if len(data) > 2 and data[0] == _PAIR and data[1] == SCHEMA_VERSION:
            # The frame as ``encode`` writes it: the message is read in one pass (going
            # through ``_Frame`` first walks it twice, as msgspec.Raw must find its end:
            # 2 ms for a 500 KB block refused for its length).
            return self._message(memoryview(data)[2:])
        try:
            frame = self._frame.decode(data)
        except msgspec.ValidationError as exc:  # a subclass of DecodeError: test it first
            raise ProtocolError(f"not a [version, message] frame: {exc}") from None
        except msgspec.DecodeError as exc:
            raise ProtocolError(f"malformed msgpack: {exc}") from None
        except RecursionError:
            raise ProtocolError(f"msgpack nested deeper than {MAX_DEPTH} levels") from None
        if frame.v != SCHEMA_VERSION:
            raise ProtocolError(
                f"schema version {frame.v} not supported (this side speaks {SCHEMA_VERSION})"
            )
        return self._message(frame.msg)

    def _message(self, data: bytes | memoryview) -> T:
        try:
            return self._dec.decode(data)
        except (msgspec.DecodeError, msgspec.ValidationError) as exc:
            raise ProtocolError(f"invalid message: {exc}") from None
        except RecursionError:
            raise ProtocolError(f"msgpack nested deeper than {MAX_DEPTH} levels") from None


def app_to_node() -> Codec[messages.AppToNode]:
    return Codec(messages.AppToNode)


def node_to_app() -> Codec[messages.NodeToApp]:
    return Codec(messages.NodeToApp)


def to_device() -> Codec[messages.ToDevice]:
    return Codec(messages.ToDevice)


def from_device() -> Codec[messages.FromDevice]:
    return Codec(messages.FromDevice)


def node_to_node() -> Codec[messages.NodeToNode]:
    return Codec(messages.NodeToNode)


def qdevice_peer() -> Codec[messages.QPeer]:
    return Codec(messages.QPeer)
