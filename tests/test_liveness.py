"""Slow is not dead (``qnodeos.runtime.liveness``): the OS's word on a peer's process, the
threshold that adapts to the gaps seen, and timers that always make progress."""

from __future__ import annotations

import math

import pytest

from qnodeos.runtime import procinfo
from qnodeos.runtime.liveness import HUNG_S, Liveness, Look


def silent_until_down(live: Liveness, peer: str, start: float, step: float = 0.05) -> float:
    """Tick every ``step`` s from ``start`` (``peer`` silent) until it is down."""
    t = start
    while t < start + 100:
        t += step
        if peer in live.tick(t)[1]:
            return t - start
    raise AssertionError("never declared down")


@pytest.mark.parametrize(
    "state, expect",
    [("gone", 0.5), ("stopped", 1.5), ("alive", HUNG_S), (None, 1.5)],
)
def test_what_the_os_says_decides_how_long_silence_is_tolerated(
    state: str | None, expect: float
) -> None:
    looks: list[object] = []

    def look(proc: object) -> str | None:
        looks.append(proc)
        return state

    live = Liveness(["b"], interval_s=0.25, timeout_s=1.5, look=look)
    live.heard("b", 0.0)
    live.claim("b", "proc of b")
    took = silent_until_down(live, "b", 0.0)
    assert expect < took <= expect + 0.06, took
    assert set(looks) == {"proc of b"}
    if state == "alive":
        assert live.slow == 1 and live.longest_spared_s > HUNG_S - 0.1
        assert "hung" in live.verdict("b")
    if state == "gone":
        assert live.verdict("b").startswith("ended (")


def test_a_claim_is_only_looked_at_once_a_peer_has_missed_pings() -> None:
    """While a peer speaks the OS is not asked about it, except once when its claim
    comes (whether the OS can see that process at all: one on another host it cannot,
    and such a peer is pinged every interval)."""
    asked = []
    live = Liveness(["b"], interval_s=0.25, look=lambda p: asked.append(p) or "alive")
    live.heard("b", 0.0)
    live.claim("b", 1)
    for i in range(1, 10):  # b speaks every 0.1 s
        live.heard("b", i * 0.1)
        live.tick(i * 0.1)
        live.claim("b", 1)  # (every ping brings the claim again)
    assert asked == [1]


def test_the_threshold_grows_with_long_irregular_gaps() -> None:
    live = Liveness(["b"], interval_s=0.25, timeout_s=1.5)
    t = 0.0
    live.heard("b", t)
    for i in range(64):  # a loaded peer: gaps of 0.5 and 1.5 s
        t += 0.5 if i % 2 else 1.5
        live.heard("b", t)
        assert not live.tick(t)[1]
    # mean 1 s, sd 0.5 s: suspected past 1 + 5.6 * 0.5 = 3.8 s, not at 1.5 s
    assert live.threshold("b") == pytest.approx(1.0 + 5.612 * 0.5, rel=1e-3)
    assert 3.8 < silent_until_down(live, "b", t) <= 3.85
    quiet = Liveness(["c"], interval_s=0.25, timeout_s=1.5)
    for i in range(64):
        quiet.heard("c", i * 0.25)
    assert quiet.threshold("c") == 1.5  # regular pings: the configured timeout


def test_unread_messages_defer_judgement() -> None:
    live = Liveness(["b"], timeout_s=1.5)
    live.heard("b", 0.0)
    assert live.tick(2.0, judge=False) == (["b"], [])  # pings still go out
    assert live.tick(2.05)[1] == ["b"]


@pytest.mark.parametrize("interval", [0.25, 0.3e-3, 1 / 3, 0.1])
def test_a_tick_at_the_next_deadline_always_makes_progress(interval: float) -> None:
    """A loop that sleeps until ``next_deadline`` and ticks (the quantum process's; on
    a MockClock time does not move otherwise) never spins: the deadline moves on.
    Sums like ``t + interval`` can round so that ``now - t < interval``."""
    for look in (None, lambda p: "alive"):
        live = Liveness(["b", "c"], interval_s=interval, timeout_s=50 * interval, look=look)
        live.heard("b", 0.1)
        live.claim("b", 7)
        now = 0.1
        for _ in range(2000):
            nxt = live.next_deadline()
            assert nxt > now or math.isinf(nxt)
            now = nxt
            live.tick(now)
            if live.is_down("b"):
                break


def test_procinfo_tells_alive_stopped_and_gone_apart() -> None:
    import os
    import signal
    import subprocess
    import sys
    import time

    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        st = None
        for _ in range(100):  # its /proc entry, once it exists
            st = procinfo.stat(child.pid)
            if st is not None:
                break
            time.sleep(0.01)
        assert st is not None
        proc = procinfo.ProcId(pid=child.pid, start=st[1], host=procinfo.host())
        assert procinfo.look(proc) == "alive"
        os.kill(child.pid, signal.SIGSTOP)
        for _ in range(100):
            if procinfo.look(proc) == "stopped":
                break
            time.sleep(0.01)
        assert procinfo.look(proc) == "stopped"
        os.kill(child.pid, signal.SIGKILL)
        child.wait()
        assert procinfo.look(proc) == "gone"
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()


async def test_a_starved_watcher_still_finds_a_dead_peer(autojump_clock: object) -> None:
    """A process starved of a core (MockClock): every wait on a dead peer begins with
    a first tick 1.2 s late, beyond the late-tick allowance, so it reads as a pause.
    The pause must not wipe out the silence of the earlier waits: b is found."""
    import trio

    live = Liveness(["b"], interval_s=0.25, timeout_s=1.5, on_demand=True)
    live.heard("b", trio.current_time())  # then b dies
    found = None
    for _ in range(20):
        live.want(["b"], trio.current_time())
        await trio.sleep(1.2)  # starved: the wait's first tick comes late
        end = trio.current_time() + 0.3
        while found is None and trio.current_time() < end:
            await trio.sleep_until(min(live.next_deadline(), end))
            if live.tick(trio.current_time())[1]:
                found = trio.current_time()
        if found is not None:
            break
        live.want([], trio.current_time())
        await trio.sleep(0.1)
    assert found is not None and live.pauses >= 1
    # before: each late first tick restarted b's silence, and b was never found
    assert found < 10.0, found


@pytest.mark.parametrize("late", [1.2, 3.0])
def test_when_every_tick_is_late_a_dead_peer_is_found(late: float) -> None:
    """Each tick ``late`` s after the last (a starved process): the lateness beyond the
    allowance is a pause, but up to it the silence counts as on any tick."""
    live = Liveness(["b"], interval_s=0.25, timeout_s=1.5)
    live.heard("b", 0.0)
    live.tick(0.0)
    t, gone = 0.0, []
    while not gone and t < 100:
        t += late
        gone = live.tick(t)[1]
    assert gone == ["b"] and t == pytest.approx(2 * late)  # 2 s counted by then


def test_a_long_pause_leaves_a_live_peer_up() -> None:
    """Paused 60 s (SIGSTOP) right after the peer last answered: the pause does not
    count, the allowance does, and the peer is judged again only from then."""
    live = Liveness(["b"], interval_s=0.25, timeout_s=1.5)
    for i in range(9):
        live.heard("b", i * 0.25)
        live.tick(i * 0.25)
    assert live.tick(62.0) == (["b"], []) and live.pauses == 1
    live.heard("b", 62.01)  # it answers the ping
    assert live.tick(62.25)[1] == []


@pytest.mark.parametrize("look", [None, lambda proc: "alive"])
def test_a_peer_that_streams_is_pinged_only_now_and_then(look: Look | None) -> None:
    """A peer heard every 0.05 s (a streaming link) is pinged every ``quiet_every``
    intervals (the classical process's 4), not every interval: its messages are signs
    of life enough. Once it is silent, it is pinged every interval again and found
    down as before."""
    live = Liveness(["b"], interval_s=0.25, timeout_s=1.5, on_demand=True, look=look, quiet_every=4)
    live.heard("b", 0.0)
    live.claim("b", "proc of b")
    live.want(["b"], 0.0)
    pinged = [0.05 * i for i in range(201) if live.heard("b", 0.05 * i) or live.tick(0.05 * i)[0]]
    assert pinged[0] == 0.0  # asked at once when first wanted
    assert len(pinged) == 11, pinged  # 10 s: every 1 s, not every 0.25 s (41)
    t, silent_pings = 10.0, 0
    while not live.is_down("b") and t < 60:
        t += 0.05
        silent_pings += bool(live.tick(t)[0])
    if look is None:
        assert 11.5 < t <= 11.55 and silent_pings == 6  # pinged every 0.25 s from 10 s
    else:
        assert live.slow == 1 and t > 10 + HUNG_S - 0.1  # slow, not dead, as before


def test_a_peer_on_another_host_is_pinged_every_interval() -> None:
    """The OS cannot see a process on another host, so such a peer is judged by
    silence alone: pinged every interval even while it speaks, so its answer has the
    whole timeout to come back in (pings 1 s apart against a 1.5 s timeout falsely
    found a live peer down when its answers took up to 0.8 s)."""
    live = Liveness(["b"], interval_s=0.25, look=lambda proc: None, quiet_every=4)
    live.heard("b", 0.0)
    live.claim("b", "proc of b, elsewhere")
    pinged = [0.05 * i for i in range(41) if live.heard("b", 0.05 * i) or live.tick(0.05 * i)[0]]
    assert len(pinged) == 9, pinged


def test_a_peer_whose_process_is_not_known_is_pinged_every_interval() -> None:
    """Without its claim (what pings carry) the OS cannot be asked about it: a peer
    that speaks is still pinged every interval until a ping brings the claim."""
    live = Liveness(["b"], interval_s=0.25, look=lambda proc: "alive", quiet_every=4)
    live.heard("b", 0.0)
    pinged = [0.05 * i for i in range(41) if live.heard("b", 0.05 * i) or live.tick(0.05 * i)[0]]
    assert len(pinged) == 9, pinged


async def test_an_app_heartbeats_only_while_it_sends_nothing_or_hears_nothing(
    autojump_clock: object,
) -> None:
    """The app's heartbeat (every lease/4) is skipped in an interval in which it sent
    to the node and heard from it; while it is silent, or the node is, it goes as
    before, so the lease is kept and a silent node is still asked and judged."""
    import trio

    from qnodeos.lang import codec
    from qnodeos.lang import messages as m
    from qnodeos.runtime.transport import MemDealer, MemRouter
    from qnodeos.sdk.client import Node

    router = MemRouter("mem://hb-test")
    conn = Node(MemDealer("mem://hb-test"), 1, "n")
    conn._live = Liveness(["n"], interval_s=0.25, timeout_s=5.0, pings=False)
    conn._live.heard("n", trio.current_time())
    beats: list[float] = []
    answer = [True]
    dec, enc = codec.app_to_node(), codec.node_to_app()

    async def node() -> None:
        while True:
            addr, data = await router.recv()
            if isinstance(dec.decode(data), m.Heartbeat):
                beats.append(trio.current_time())
            if answer[0]:
                await router.send([addr, enc.encode(m.Alive())])

    async def app(until: float) -> None:
        while trio.current_time() < until:  # (any app message renews its lease)
            await conn._sock.send([codec.app_to_node().encode(m.EprAck(req=1, count=1))])
            await trio.sleep(0.1)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(node)
        nursery.start_soon(conn._reader)
        nursery.start_soon(conn._heartbeat)
        await app(2.0)  # sends and hears: no heartbeat
        assert beats == []
        await trio.sleep(1.0)  # silent: heartbeats every lease/4
        assert len(beats) == 4
        answer[0] = False  # the node stops answering; the app sends on
        await app(4.0)
        assert len(beats) >= 7  # heard nothing: asked every interval
        nursery.cancel_scope.cancel()
