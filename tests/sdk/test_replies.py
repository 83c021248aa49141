"""The SDK's reader-to-requester hand-off (``client._Replies``)."""

from __future__ import annotations

import trio
import trio.testing

from qnodeos.lang import messages as m
from qnodeos.sdk.client import _Replies


def _reply(i: int) -> m.NodeToApp:
    return m.ErrorReply(code="x", message=str(i))


async def test_replies_come_in_order_whether_queued_or_awaited() -> None:
    r = _Replies(4)
    r.send_nowait(_reply(1))
    r.send_nowait(_reply(2))
    assert await r.receive() == _reply(1)
    assert await r.receive() == _reply(2)
    async with trio.open_nursery() as nursery:
        got: list[m.NodeToApp] = []

        async def take() -> None:
            got.append(await r.receive())

        nursery.start_soon(take)
        await trio.testing.wait_all_tasks_blocked()
        r.send_nowait(_reply(3))  # the waiting requester gets it directly
    assert got == [_reply(3)]


async def test_a_cancelled_wait_takes_nothing(autojump_clock: object) -> None:
    r = _Replies(4)
    with trio.move_on_after(0.01) as scope:
        await r.receive()
    assert scope.cancelled_caught
    r.send_nowait(_reply(1))  # queued for the next requester, not lost
    assert await r.receive() == _reply(1)


async def test_the_reader_waits_when_the_queue_is_full() -> None:
    r = _Replies(1)
    r.send_nowait(_reply(1))
    try:
        r.send_nowait(_reply(2))
    except trio.WouldBlock:
        pass
    else:
        raise AssertionError("a full queue took another reply")
    async with trio.open_nursery() as nursery:
        nursery.start_soon(r.send, _reply(2))
        await trio.testing.wait_all_tasks_blocked()
        assert await r.receive() == _reply(1)  # makes room: the sender goes on
    assert await r.receive() == _reply(2)
