"""Classical messages between apps on different nodes, routed by the nodes (in-process
nodes over mem:// sockets, MockClock)."""

from __future__ import annotations

import pytest
import trio

from qnodeos import sdk
from qnodeos.errors import RemoteError
from qnodeos.runtime.transport import _HUBS
from qnodeos.testbed.local import local_network, service

from ..conftest import network

TWO = "[nodes.alice]\nqubits = 1\n[nodes.bob]\nqubits = 1\n"


async def test_messages_arrive_in_order_both_ways(autojump_clock: object) -> None:
    async with local_network(network(TWO, name="m1")) as eps:

        async def bob_app() -> list[object]:
            got = []
            async with sdk.connect("bob", app="b", qubits=0, endpoint=eps["bob"]) as node:
                sock = node.socket("alice", "a")
                for _ in range(50):
                    got.append(await sock.recv())
                await sock.send({"done": len(got)})
            return got

        async with trio.open_nursery() as nursery:
            results: list[list[object]] = []

            async def run_bob() -> None:
                results.append(await bob_app())

            nursery.start_soon(run_bob)
            async with sdk.connect("alice", app="a", qubits=0, endpoint=eps["alice"]) as node:
                sock = node.socket("bob", "b")
                for i in range(50):
                    await sock.send([i, "x" * i, b"\x00\x01"])
                assert await sock.recv() == {"done": 50}
        assert results[0] == [[i, "x" * i, b"\x00\x01"] for i in range(50)]


async def test_messages_wait_for_an_app_that_has_not_connected(autojump_clock: object) -> None:
    async with local_network(network(TWO, name="m2")) as eps:
        async with sdk.connect("alice", app="a", qubits=0, endpoint=eps["alice"]) as node:
            for i in range(3):
                await node.socket("bob", "late").send(i)  # accepted by bob's node
        async with sdk.connect("bob", app="late", qubits=0, endpoint=eps["bob"]) as node:
            sock = node.socket("alice", "a")
            assert [await sock.recv() for _ in range(3)] == [0, 1, 2]


async def test_same_node_messages(autojump_clock: object) -> None:
    async with local_network(network(TWO, name="m3")) as eps:
        async with (
            sdk.connect("alice", app="x", qubits=0, endpoint=eps["alice"]) as x,
            sdk.connect("alice", app="y", qubits=0, endpoint=eps["alice"]) as y,
        ):
            await x.socket("alice", "y").send("hi")
            assert await y.socket("alice", "x").recv() == "hi"


async def test_unknown_node_is_an_error_naming_the_nodes(autojump_clock: object) -> None:
    async with local_network(network(TWO, name="m4")) as eps:
        async with sdk.connect("alice", app="a", qubits=0, endpoint=eps["alice"]) as node:
            with pytest.raises(RemoteError, match="no node named 'zed'; nodes: alice, bob") as e:
                await node.socket("zed", "b").send(1)
            assert e.value.code == "unknown_node"


async def test_a_node_that_never_acknowledges_fails_the_send(autojump_clock: object) -> None:
    async with local_network(network(TWO, name="m5")) as eps:
        _HUBS.pop("mem://m5/bob/peer")  # bob's node can no longer be reached
        async with sdk.connect("alice", app="a", qubits=0, endpoint=eps["alice"]) as node:
            start = trio.current_time()
            with pytest.raises(RemoteError, match="'bob' did not acknowledge within 5.0 s") as e:
                await node.socket("bob", "b").send(1)
            assert e.value.code == "unreachable" and 5.0 <= trio.current_time() - start < 5.2
        assert service(eps["alice"]).kernel.postbox.pending == {}


async def test_app_names_are_unique_on_a_node(autojump_clock: object) -> None:
    async with local_network(network(TWO, name="m6")) as eps:
        async with sdk.connect("alice", app="a", qubits=0, endpoint=eps["alice"]):
            with pytest.raises(RemoteError, match="an app named 'a' is already connected"):
                async with sdk.connect("alice", app="a", qubits=0, endpoint=eps["alice"]):
                    pass
        async with sdk.connect("alice", app="a", qubits=0, endpoint=eps["alice"]):
            pass  # free again once the first has gone
