"""Moving whole zmq messages without waiting, through pyzmq's Cython socket calls.

Shared by the trio adapter (``transport``) and the quantum process's blocking loop
(``qdevice.realtime``, which must not import trio). pyzmq's Python wrappers around its
Cython socket cost per message: ``send`` in ``zmq.Socket`` adds draft-socket options we
never use, ``send_multipart`` type-checks each frame in a loop and ors IntFlags per
frame, ``recv_multipart`` reads RCVMORE (getsockopt) after each frame (1.7 µs per
two-frame send against 0.3 bare; 1.8 µs per two-frame receive against 1.0 with
non-copying frames, whose ``more`` pyzmq reads in C, not by a Python getsockopt).
"""

from __future__ import annotations

from collections.abc import Sequence

import zmq

# zmq's constants as plain ints: its enum types make every ``&`` and every call that
# takes a flag a Python-level enum operation (an ``&`` with an IntFlag: 1.3 µs)
POLLIN = int(zmq.POLLIN)
POLLOUT = int(zmq.POLLOUT)
_NOBLOCK = int(zmq.NOBLOCK)
_NOBLOCK_MORE = int(zmq.NOBLOCK | zmq.SNDMORE)
_EVENTS = int(zmq.EVENTS)
_send = zmq.backend.Socket.send
_recv = zmq.backend.Socket.recv
_get = zmq.backend.Socket.get


def send_now(sock: zmq.Socket[bytes], parts: Sequence[bytes]) -> None:
    """Send ``parts`` as one message without waiting, or raise ``zmq.Again`` having
    sent nothing (zmq takes a message's later frames once it took the first). Also the
    quantum process's blocking loop sends with it."""
    n = len(parts)
    if n == 1:
        _send(sock, parts[0], _NOBLOCK)
    elif n == 2 and type(parts[0]) is bytes and type(parts[1]) is bytes:
        _send(sock, parts[0], _NOBLOCK_MORE)
        _send(sock, parts[1], _NOBLOCK)
    elif n > 2 and all(type(p) is bytes for p in parts):
        for p in parts[:-1]:
            _send(sock, p, _NOBLOCK_MORE)
        _send(sock, parts[-1], _NOBLOCK)
    else:
        # (other frames go through send_multipart, which checks every frame before it
        # sends any: one refused after the first would leave half a message, glued to
        # the next)
        sock.send_multipart(parts, _NOBLOCK)


def recv_now(sock: zmq.Socket[bytes]) -> list[zmq.Frame]:
    """The frames of the message queued on ``sock`` (non-copying: ``frame.bytes`` is the
    data), or ``zmq.Again`` if none is. Also the quantum process's loop receives so."""
    frame = _recv(sock, _NOBLOCK, False)
    frames = [frame]
    while frame.more:  # (the rest of a message comes with its first frame)
        frame = _recv(sock, _NOBLOCK, False)
        frames.append(frame)
    return frames


def events_of(sock: zmq.Socket[bytes]) -> int:
    """``sock``'s ZMQ_EVENTS (POLLIN | POLLOUT bits) as a plain int."""
    return int(_get(sock, _EVENTS))
