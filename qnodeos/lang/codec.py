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

SCHEMA_VERSION = 1
MAX_FRAME = 4 * 1024 * 1024
# msgspec stops at Python's recursion limit (RecursionError); none of our messages
# nests more than a handful of levels, so anything that deep is refused as malformed.
MAX_DEPTH = sys.getrecursionlimit()

T = TypeVar("T")


class _Frame(msgspec.Struct, array_like=True):
    v: int
    msg: msgspec.Raw


class Codec(Generic[T]):
    """Encoder/decoder for one direction of one conversation (a Union of message types)."""

    def __init__(self, kind: Any) -> None:
        self._enc = msgspec.msgpack.Encoder()
        self._frame = msgspec.msgpack.Decoder(_Frame)
        self._dec: msgspec.msgpack.Decoder[T] = msgspec.msgpack.Decoder(kind)

    def encode(self, msg: Any) -> bytes:
        return self._enc.encode((SCHEMA_VERSION, msgspec.Raw(self._enc.encode(msg))))

    def decode(self, data: bytes) -> T:
        if len(data) > MAX_FRAME:
            raise ProtocolError(f"frame of {len(data)} bytes exceeds limit {MAX_FRAME}")
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
        try:
            return self._dec.decode(frame.msg)
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
