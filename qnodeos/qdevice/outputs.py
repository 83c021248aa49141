"""What the quantum process's sans-IO parts ask their adapter to send, and when."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ToKernel:
    """Send ``frames`` to the classical process when device time reaches ``due_ns``.
    ``tag``: the request it answers, if it may be withdrawn (``Cancel``)."""

    frames: list[bytes]
    due_ns: float
    tag: int | None = None


@dataclass(frozen=True)
class Cancel:
    """Withdraw the reply tagged ``tag`` if it has not been sent yet."""

    tag: int


@dataclass(frozen=True)
class ToPeer:
    """Send ``data`` to the quantum process of node ``node``."""

    node: str
    data: bytes


Out = ToKernel | ToPeer | Cancel
