"""No pair is ever kept by one side only, on every failure path (deterministic mode).

An app that dies (silent: its lease runs out) before acknowledging its pairs has them
expired at the other end; a request still collecting pairs ends with EXPIRE; a node
that stops tells the other one at once. The survivor's final list of entanglement ids
(received minus expired) equals what the dead app acknowledged.
"""

from __future__ import annotations

import trio

from qnodeos import sdk
from qnodeos.lang import codec
from qnodeos.lang import messages as m
from qnodeos.runtime.transport import MemDealer
from qnodeos.testbed.local import local_network, service
from tests.conftest import network

TWO = """
[nodes.alice]
device = "generic"
qubits = 2
speed = 1.0
seed = 1
[nodes.bob]
device = "generic"
qubits = 2
speed = 1.0
seed = 2
[[links]]
nodes = ["alice", "bob"]
model = "depolarise"
fidelity = 0.9
p_success = {p}
cycle_ns = 10000
seed = 9
"""


class Victim:
    """A raw app on bob that asks for measured pairs and then goes silent, as if killed:
    it never reads, acknowledges or heartbeats again."""

    def __init__(self, ep: str) -> None:
        self.sock = MemDealer(ep)
        self.enc = codec.app_to_node()

    async def start(self, number: int) -> None:
        await self.sock.send([self.enc.encode(m.Register(app="victim", qubits=1))])
        await self.sock.recv()
        req = m.EprRequest(
            req=1, remote_node="alice", remote_app="survivor", role="recv", kind="M",
            number=number, bases="Z", timeout_s=60.0,
        )  # fmt: skip
        await self.sock.send([self.enc.encode(req)])


async def survive(ep: str, number: int) -> tuple[list[sdk.Pair], str, float, sdk.Node]:
    """The survivor on alice: its pairs, how its request ended, and when."""
    async with sdk.connect("alice", app="survivor", qubits=1, endpoint=ep) as node:
        epr = node.epr_socket("bob", "victim")
        try:
            got = await epr.create_measure(number, bases="Z", timeout=60.0)
            ended = "ok"
        except sdk.EprError as exc:
            got, ended = exc.pairs, exc.code
        when = trio.current_time()
        await trio.sleep(2.0)  # expiries may come after the request ended
        return got, ended, when, node


async def test_an_app_killed_after_its_pairs_came_has_them_expired_at_the_other_end(
    autojump_clock: object,
) -> None:
    async with local_network(network(TWO.format(p=0.5))) as eps:
        victim = Victim(eps["bob"])
        await victim.start(10)
        got, ended, _, node = await survive(eps["alice"], 10)
        # the request completed at both nodes, but the victim never acknowledged it
        assert ended == "ok" and len(got) == 10
        assert set(node.expired) == {p.ent_id for p in got}  # all ten void: 0 one-sided
        assert "ended before it received them" in next(iter(node.expired.values()))
        led = service(eps["bob"]).kernel.net.ledger
        assert led.expired_out == 10 and led.open.get("alice", {}) == {}


async def test_an_app_killed_mid_request_ends_the_other_request_without_its_pairs(
    autojump_clock: object,
) -> None:
    async with local_network(network(TWO.format(p=0.002))) as eps:  # ~5 ms per pair
        victim = Victim(eps["bob"])
        await victim.start(1000)
        start = trio.current_time()
        got, ended, when, node = await survive(eps["alice"], 1000)
        assert ended in ("EXPIRE", "OTHER")
        assert {p.ent_id for p in got} <= set(node.expired)  # every pair made meanwhile
        assert when - start < 1.0 + 0.5  # the victim's lease, then at once


async def test_acknowledged_pairs_survive_their_app(autojump_clock: object) -> None:
    async with local_network(network(TWO.format(p=0.5))) as eps:

        async def leaver() -> list[sdk.Pair]:
            async with sdk.connect("bob", app="victim", qubits=1, endpoint=eps["bob"]) as n:
                return await n.epr_socket("alice", "survivor").recv_measure(10, bases="Z")

        async with trio.open_nursery() as nursery:
            theirs: list[list[sdk.Pair]] = []

            async def run_leaver() -> None:
                theirs.append(await leaver())

            nursery.start_soon(run_leaver)
            got, ended, _, node = await survive(eps["alice"], 10)
        assert ended == "ok" and node.expired == {}
        assert [p.ent_id for p in got] == [p.ent_id for p in theirs[0]]
        assert all(p.outcome == q.outcome for p, q in zip(got, theirs[0], strict=True))
        for ep in eps.values():  # both ledgers emptied by acks and confirmations
            led = service(ep).kernel.net.ledger
            assert all(not book for book in led.open.values()) and led.deliveries == {}


async def test_a_node_that_stops_tells_the_other_at_once(autojump_clock: object) -> None:
    async with local_network(network(TWO.format(p=0.002))) as eps:
        # bob says goodbye on alice's peer endpoint, as a stopping node does
        to_alice = MemDealer(service(eps["alice"]).cfg.peer_endpoint)

        async def stop_bob_soon() -> None:
            await trio.sleep(0.3)
            bye = m.NodeBye(from_node="bob", reason="maintenance")
            await to_alice.send([codec.node_to_node().encode(bye)])

        async def recv_side() -> None:
            async with sdk.connect("bob", app="victim", qubits=1, endpoint=eps["bob"]) as n:
                try:
                    await n.epr_socket("alice", "survivor").recv_measure(1000, bases="Z")
                except sdk.EprError:
                    pass

        async with trio.open_nursery() as nursery:
            nursery.start_soon(recv_side)
            nursery.start_soon(stop_bob_soon)
            t0 = trio.current_time()
            got, ended, when, node = await survive(eps["alice"], 1000)
            nursery.cancel_scope.cancel()
        assert ended == "OTHER" and {p.ent_id for p in got} <= set(node.expired)
        assert when - t0 < 0.3 + 0.01  # at once, not after a timeout


async def test_a_request_to_a_node_known_to_be_down_fails_at_once(autojump_clock: object) -> None:
    """After alice learned that bob stopped, a new request for pairs with bob fails at
    once, naming why, not at its maximum time (bob is not there to accept it)."""
    async with local_network(network(TWO.format(p=0.5))) as eps:
        to_alice = MemDealer(service(eps["alice"]).cfg.peer_endpoint)
        bye = m.NodeBye(from_node="bob", reason="maintenance")
        await to_alice.send([codec.node_to_node().encode(bye)])
        await trio.sleep(0.01)
        async with sdk.connect("alice", app="late", qubits=1, endpoint=eps["alice"]) as n:
            t0 = trio.current_time()
            try:
                await n.epr_socket("bob", "b").create_measure(1, timeout=30)
            except sdk.EprError as exc:
                assert exc.code == "OTHER" and "maintenance" in str(exc), exc
                assert "ask again once it is back" in str(exc)
            else:
                raise AssertionError("pairs with a node that stopped")
            assert trio.current_time() - t0 < 0.1
