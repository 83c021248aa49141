"""What the sans-IO kernel asks its adapter to do: send to an app, to the quantum
process, to another node, or resume a paused block after letting other work run."""

from __future__ import annotations

from dataclasses import dataclass

from ..lang import messages as m


@dataclass(frozen=True)
class ToApp:
    addr: bytes
    msg: m.NodeToApp


@dataclass(frozen=True)
class ToDevice:
    msg: m.ToDevice


@dataclass(frozen=True)
class ToNode:
    node: str
    msg: m.NodeToNode


@dataclass(frozen=True)
class Resume:
    """The running block paused after a slice; call ``Kernel.resume()`` after letting
    other work run."""


Out = ToApp | ToDevice | ToNode | Resume
