"""The fair intake of app messages (kernel/intake.py): one app's backlog or costly
messages delay it alone, and no app takes more than its share for long."""

from __future__ import annotations

import math

from qnodeos.kernel.intake import MIN_WAIT_S, Intake


def test_a_backlogged_costly_app_does_not_delay_another() -> None:
    q = Intake(share=1.0)
    now = 0.0
    for i in range(8):
        assert q.put(b"flood", [b"flood", b"%d" % i], None, now)
    served = []
    for step in range(6):  # each flood message costs 2 ms; the worker's arrives at step 3
        if step == 3:
            assert q.put(b"worker", [b"worker", b"w"], None, now)
        item = q.take(now)
        assert item is not None
        served.append(item[0])
        q.charge(item[0], 0.002 if item[0] == b"flood" else 0.0001, now)
        now += 0.002
    # a newcomer starts level with the flood: at most one more flood message first
    assert served.index(b"worker") <= 4 and served.count(b"worker") == 1


def test_caps_per_connection_and_in_all() -> None:
    q = Intake(per_app=3, total=5)
    assert [q.put(b"a", [b"a", b"x"], None, 0.0) for _ in range(4)] == [True] * 3 + [False]
    assert [q.put(b"b", [b"b", b"x"], None, 0.0) for _ in range(3)] == [True, True, False]
    assert len(q) == 5
    q.take()
    assert q.put(b"c", [b"c", b"x"], None, 0.0)


def test_an_app_over_its_share_waits_until_its_usage_decays() -> None:
    q = Intake(share=0.25, half_life_s=1.0)
    q.put(b"a", [b"a", b"1"], None, 0.0)
    q.charge(b"a", 2.0, 0.0)  # far over what a quarter of a core sustains
    assert q.take(0.0) is None
    wait = q.wait(0.0)
    assert wait == math.log(2.0 / q.limit) / math.log(2)  # half-lives until at the limit
    assert q.take(wait + 1e-6) is not None
    assert q.wait(10.0) == math.inf  # nothing queued


def test_usage_a_hair_over_the_limit_waits_long_enough_to_get_under_it() -> None:
    """At a late clock time, the decay to the limit may take less than the clock's
    resolution: the wait is at least MIN_WAIT_S, so serving resumes after it (a
    deterministic run's clock moves only by waits; it used to spin at one time)."""
    q = Intake(share=0.25, half_life_s=1.0)
    now = 2.4
    q.put(b"a", [b"a", b"1"], None, now)
    q.used[b"a"] = (math.nextafter(q.limit, math.inf), now)
    assert q.take(now) is None
    wait = q.wait(now)
    assert wait >= MIN_WAIT_S and now + wait > now
    assert q.take(now + wait) is not None


def test_pass_through_only_when_nothing_waits_and_within_the_share() -> None:
    """A message may skip the queue exactly when put-then-take would have served it."""
    q = Intake(half_life_s=1.0, share=0.25)
    assert q.pass_through(b"a", now=0.0)  # nothing waits, nothing used
    q.charge(b"a", 10.0, now=0.0)  # far over its share
    assert not q.pass_through(b"a", now=0.0)
    assert q.put(b"a", [b"a", b"m"], None, now=0.0) and q.take(now=0.0) is None  # (agrees)
    assert not q.pass_through(b"b", now=0.0)  # something waits: the queue decides
    q2 = Intake()
    q2.put(b"b", [b"b", b"m"], None, now=0.0)
    assert not q2.pass_through(b"c", now=0.0)
    assert q2.take(now=0.0) is not None and q2.pass_through(b"c", now=0.0)
