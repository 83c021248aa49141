"""Bounds on every value that crosses a process boundary, as msgspec constraints.

Messages from apps, peer nodes and other quantum processes are decoded straight into
typed structs whose fields carry these constraints, so a value out of range (a
non-finite time, an absurd count, a huge string or list) is refused by the decoder with
an error naming the field, before any of our code sees it. The limits are generous for
honest use and small enough that no single message can make a node spend unbounded
time or memory.

>>> import msgspec
>>> class T(msgspec.Struct):
...     timeout: Seconds
>>> msgspec.msgpack.decode(msgspec.msgpack.encode({"timeout": 1e300}), type=T)
Traceback (most recent call last):
...
msgspec.ValidationError: Expected `float` <= 86400.0 - at `$.timeout`
"""

from __future__ import annotations

from typing import Annotated

import msgspec

MAX_SECONDS = 86_400.0  # one day: the longest timeout or duration anyone may ask for
MAX_WALL_S = 1e11  # wall-clock times (unix seconds, or a test clock) stay below this
MAX_DEVICE_NS = 1e18  # device times (ns since a device started: about 31 years)
MAX_COUNT = 1 << 40  # sequence numbers, ids, counters
MAX_NAME = 64  # node and app names
MAX_TEXT = 4096  # error messages and reasons
MAX_KEY = 256  # round keys, purposes
MAX_DATA = (1 << 20) + 1024  # one classical message's payload (1 MiB, see messaging)
MAX_LIST = 65_536  # elements of any list in a message (ops, pairs, qubits)

Seconds = Annotated[float, msgspec.Meta(ge=0.0, le=MAX_SECONDS)]
WallTime = Annotated[float, msgspec.Meta(ge=0.0, le=MAX_WALL_S)]
DeviceNs = Annotated[float, msgspec.Meta(ge=0.0, le=MAX_DEVICE_NS)]
DeviceNsInt = Annotated[int, msgspec.Meta(ge=0, le=int(MAX_DEVICE_NS))]
Epoch = Annotated[int, msgspec.Meta(ge=0, le=1 << 62)]  # wall ns (year 2116 at most)
Count = Annotated[int, msgspec.Meta(ge=0, le=MAX_COUNT)]
SignedCount = Annotated[int, msgspec.Meta(ge=-MAX_COUNT, le=MAX_COUNT)]
Probability = Annotated[float, msgspec.Meta(ge=0.0, le=1.0)]
Angle = Annotated[float, msgspec.Meta(ge=-1000.0, le=1000.0)]  # radians
Name = Annotated[str, msgspec.Meta(max_length=MAX_NAME)]
Text = Annotated[str, msgspec.Meta(max_length=MAX_TEXT)]
Key = Annotated[str, msgspec.Meta(max_length=MAX_KEY)]
Short = Annotated[str, msgspec.Meta(max_length=16)]
Data = Annotated[bytes, msgspec.Meta(max_length=MAX_DATA)]
