"""One root for every error qnodeos raises, split by meaning.

``LocalError`` means *you* (the caller, an app, a config file) asked for something
invalid; fix the input and retry. ``RemoteError`` means the other side (node, device,
peer) reported a failure or broke the protocol; the caller usually gives up on that
exchange. Every message names the offending value.
"""

from __future__ import annotations


class QNodeOSError(Exception):
    """Root of all qnodeos errors."""


class LocalError(QNodeOSError):
    """The caller's input was invalid; nothing was changed. Fix the input and retry."""


class ParseError(LocalError):
    """Text form of a subroutine could not be parsed; the message names line and token."""


class ProgramError(LocalError):
    """A subroutine is ill-formed or failed while running (bad register, array bounds,
    unallocated qubit, budget exceeded). The block is aborted; the app may submit another."""


class DeviceError(LocalError):
    """The device cannot do the requested operation (topology, gate set, measurability).
    The operation had no effect on the device state."""


class ConfigError(LocalError):
    """A network file or device parameter is invalid; the message names the key."""


class QuotaError(LocalError):
    """An app asked for more qubits than its quota or than the device has free."""


class RemoteError(QNodeOSError):
    """The node (or a peer) reported an error or broke the protocol. ``code`` is a short
    machine-readable reason; the message is the node's explanation."""

    def __init__(self, message: str, code: str = "remote") -> None:
        super().__init__(message)
        self.code = code


class ConnectionClosed(RemoteError):
    """The other side went away (node stopped, app disconnected, lease expired)."""

    def __init__(self, message: str) -> None:
        super().__init__(message, code="closed")


class ProtocolError(QNodeOSError):
    """A message from another process was malformed, of an unknown type, of the wrong
    schema version, or failed validation. The receiver replies with an error and a
    counter goes up; the sender should fix what it sends."""


class NodeFailure(QNodeOSError):
    """A node's kernel or quantum process raised (a bug, not bad input) where it was
    told to stop at the first failure rather than log it and go on: deterministic mode,
    where a node left half-updated would otherwise let the run wait on simulated time
    forever. The message names the node, the part that failed and the exception
    (chained as ``__cause__``); nothing can be done but fix the bug."""
