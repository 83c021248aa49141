"""Setting up zmq sockets, shared by the trio adapter (``transport``) and the quantum
process's blocking loop: options every socket gets, and binding that names the
network-file key when an endpoint is taken. No event loop here.
"""

from __future__ import annotations

import zmq

from .lang.codec import MAX_FRAME

# No frame we accept is larger than the codec's limit; zmq drops a peer that sends one
# (before it fills our memory) instead of handing it to us.
MAX_MSG_BYTES = MAX_FRAME + 4096


def configure(sock: zmq.Socket[bytes], *, linger_ms: int = 1000) -> None:
    """Options every qnodeos zmq socket gets: bounded inbound messages, a linger."""
    sock.setsockopt(zmq.LINGER, linger_ms)
    sock.setsockopt(zmq.MAXMSGSIZE, MAX_MSG_BYTES)
