"""Issue 21.4: a forged EXPIRE (or a forged herald) from the linked peer must not
leave a pair at one end only, and both requests end by their deadlines.

Before: bob voided pairs 1, 4 and 5 at a forged word from "alice", whose app kept
them (one-sided pairs). Now the node that voids pairs at the peer's word names them
back (an echo, not answered again), expiries far beyond the last pair heralded are
ignored, and a confirmation of a pair that never heralded here is answered with an
expiry, so a forged herald at the other end is voided there too.
"""

from __future__ import annotations

from collections import OrderedDict

import trio

from qnodeos import sdk
from qnodeos.kernel.ledger import Ledger
from qnodeos.lang import codec
from qnodeos.lang import messages as m
from qnodeos.runtime.transport import MemDealer
from qnodeos.testbed.local import local_network, service
from tests.conftest import network
from tests.netlink.test_no_one_sided_pairs import TWO

Result = tuple[str, float, set[tuple[str, str, int]], set[tuple[str, str, int]]]


async def test_a_forged_expiry_ends_with_both_ends_agreeing(autojump_clock: object) -> None:
    async with local_network(network(TWO.format(p=0.002))) as eps:
        to_bob = MemDealer(service(eps["bob"]).cfg.peer_endpoint)
        res: dict[str, Result] = {}

        async def side(node: str, peer: str, app: str, other: str, role: str) -> None:
            async with sdk.connect(node, app=app, qubits=1, endpoint=eps[node]) as n:
                epr = n.epr_socket(peer, other)
                t0 = trio.current_time()
                try:
                    if role == "create":
                        got = await epr.create_measure(60, bases="Z", timeout=5.0)
                    else:
                        got = await epr.recv_measure(60, bases="Z", timeout=5.0)
                    ended = "ok"
                except sdk.EprError as exc:
                    got, ended = exc.pairs, exc.code
                took = trio.current_time() - t0
                await trio.sleep(3.0)  # expiries and echoes settle
                res[node] = (ended, took, {p.ent_id for p in got}, set(n.expired))

        async def forge() -> None:
            await trio.sleep(0.05)
            handed = sorted(service(eps["bob"]).kernel.net.ledger.handed.get("alice", {}))
            assert len(handed) >= 5, handed
            first = handed[0]
            # pairs bob handed out, one not heralded yet, and one far in the future
            seqs = [first, first + 3, first + 4, handed[-1] + 15, first + 10**6]
            forged = m.Egp(from_node="alice", msg=m.EgpExpire(seqs=seqs, reason="forged"))
            await to_bob.send([codec.node_to_node().encode(forged)])

        async with trio.open_nursery() as nursery:
            nursery.start_soon(side, "alice", "bob", "a", "b", "create")
            nursery.start_soon(side, "bob", "alice", "b", "a", "recv")
            nursery.start_soon(forge)
        kept = {k: got - expired for k, (_, _, got, expired) in res.items()}
        assert kept["alice"] == kept["bob"]  # 0 one-sided pairs
        # bob voided three it had handed out; alice voided those and the one that
        # heralded at bob after the forged word (bob never handed it out)
        assert len(res["bob"][3]) == 3 and res["bob"][3] < res["alice"][3]
        for ended, took, _, _ in res.values():
            assert took <= 5.0 + 0.01, (ended, took)  # by its deadline
        assert service(eps["bob"]).kernel.net.ignored >= 1  # the far-future one


def test_a_confirmation_of_a_pair_that_never_heralded_here_is_answered_void() -> None:
    led = Ledger("bob")
    for seq in (1, 2, 5):  # 3 and 4 never heralded at bob (a forged herald at alice)
        led.saw("alice", seq)
    led.saw("alice", 4)  # ... 4 came late after all
    outs, unknown = led.confirmed("alice", [2, 3, 4, 9])
    assert unknown == [3]  # 2, 4 heralded here; 9 may still come
    assert led.early_confirms["alice"] == OrderedDict({2: None, 4: None, 9: None})
    assert led.may_come("alice", 5 + 8192) and not led.may_come("alice", 6 + 8192)


async def test_a_request_the_link_layer_lost_still_ends_by_its_deadline(
    autojump_clock: object,
) -> None:
    """Whatever the link layer's state, an app's request ends by its deadline (plus
    the half second a round may run past it): here alice's EGP forgets the request."""
    async with local_network(network(TWO.format(p=0.0001))) as eps:
        net = service(eps["alice"]).kernel.net

        async def forget() -> None:
            await trio.sleep(0.2)
            assert net.egps["bob"].requests
            net.egps["bob"].requests.clear()

        async def bob() -> None:
            async with sdk.connect("bob", app="b", qubits=1, endpoint=eps["bob"]) as n:
                try:
                    await n.epr_socket("alice", "a").recv_measure(10_000, timeout=2.0)
                except sdk.EprError:
                    pass

        with trio.fail_after(10):  # before: it never ended
            async with trio.open_nursery() as nursery:
                nursery.start_soon(bob)
                nursery.start_soon(forget)
                await alice(eps["alice"])
        assert net.wants == {}


async def alice(ep: str) -> None:
    async with sdk.connect("alice", app="a", qubits=1, endpoint=ep) as n:
        t0 = trio.current_time()
        try:
            await n.epr_socket("bob", "b").create_measure(10_000, timeout=2.0)
        except sdk.EprError as exc:
            assert exc.code == "TIMEOUT" and "within its timeout of 2 s" in str(exc)
        else:
            raise AssertionError("10,000 pairs at p = 1e-4 in 2 s")
        assert trio.current_time() - t0 <= 2.0 + 0.5 + 0.3  # + one timer tick
