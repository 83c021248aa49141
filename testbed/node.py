"""A node's entry point: start node NAME of a network file as its two OS processes.

``run_node`` is what ``qnodeos node NAME`` runs, in the command's process or in one the
launcher forked (``node_command``, which also logs and exits as the command would):
it preloads what both processes need, forks the quantum process (before starting trio,
so the child starts with everything imported: see ``qnodeos.runtime.forking``), then
runs the classical process (``node_main``) until a signal or its quantum process's
exit, and stops the quantum process on the way out. Once the node serves its apps it
prints one line starting with ``READY``, which the launcher and ``qnodeos up`` wait
for. ``qdevice_main`` is the quantum process alone (``qnodeos qdevice NAME``).

The command line (``qnodeos.facade.cli``), the launcher and ``qnodeos up``
(``qnodeos.testbed.launcher``, ``forks``, ``up``) all start nodes through here.
"""

from __future__ import annotations

import secrets
import signal
import sys
from functools import partial

import trio

from ..config.defaults import network_or_default as network
from ..runtime import procinfo
from ..runtime.command import configure_logging, guarded
from ..runtime.forking import Child, fork

READY = "READY"
TOKEN_ENV = "QNODEOS_QDEVICE_TOKEN"


async def _until_signal(scope: trio.CancelScope) -> None:
    with trio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:
        async for _ in signals:
            scope.cancel()
            return


async def _stop_child(child: Child) -> None:
    """Closing its lifeline ends the quantum process's loop; signals only if that fails."""
    child.close_lifeline()
    for then in (child.terminate, child.kill):
        with trio.move_on_after(2):
            await child.wait()
            return
        then()


def fork_qdevice(name: str, path: str | None, token: str) -> Child:
    """Fork node ``name``'s quantum process from this (preloaded) classical process,
    before ``trio.run``; it stops when its lifeline closes, so it never outlives us."""
    title = f"{sys.executable} -m qnodeos qdevice {name}"
    if path:
        title += f" --network {path}"
    return fork(partial(_qdevice_child, name, path, token), title=title)


def _qdevice_child(name: str, path: str | None, token: str, lifeline: int) -> int:
    return guarded(lambda: qdevice_main(name, path, lifeline, token))


async def node_main(name: str, path: str | None, qdevice: Child, token: str) -> int:
    """The classical process of node ``name``; ``qdevice`` is its quantum process,
    already forked, which serves only whoever presents ``token``."""
    from ..kernel.service import NodeService

    net = network(path)
    cfg = net.node(name)
    lost: list[int] = []
    try:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(_until_signal, nursery.cancel_scope)
            delays = {n: net.delay(name, n) for n in net.nodes if n != name}
            svc = NodeService(
                cfg,
                cfg.peers_of(net),
                links=net.links_of(name),
                topology=net.topology(),
                protocol=net.protocol,
                protocol_args=net.protocol_args,
                delays=delays,
                token=token,
                look=procinfo.look,
                offload=True,
            )

            async def watch() -> None:
                lost.append(await qdevice.wait())
                svc.stop_reason = f"its quantum process exited ({_exit_text(qdevice.returncode)})"
                print(f"qnodeos: node {name} stops: {svc.stop_reason}", file=sys.stderr, flush=True)
                nursery.cancel_scope.cancel()

            nursery.start_soon(watch)
            with trio.fail_after(30):
                await nursery.start(svc.serve)
            print(
                f"{READY} node {name}: {cfg.device.name} device with {cfg.device.num_qubits} "
                f"qubits; apps connect at {cfg.app_endpoint}",
                flush=True,
            )
    finally:
        with trio.CancelScope(shield=True):
            await _stop_child(qdevice)
    return 1 if lost else 0


def _exit_text(code: int | None) -> str:
    if code is not None and code < 0:
        try:
            return f"killed by {signal.Signals(-code).name}"
        except ValueError:
            pass
    return f"code {code}"


def qdevice_main(name: str, path: str | None, stop_fd: int | None, token: str) -> int:
    """Serve node ``name``'s device until ``stop_fd`` reaches end-of-file (or SIGTERM)."""
    from ..qdevice.realtime import serve_forever
    from ..runtime.allocator import needs_room, roomy_heap

    net = network(path)
    cfg = net.node(name)
    if needs_room(cfg.device.num_qubits):
        roomy_heap()  # states of 7-10 qubits from the heap, not fresh mappings
    links = net.links_of(name)
    serve_forever(
        cfg,
        stop_fd,
        links=links,
        # any quantum process may have to send a state group to any other
        peers={n: c.qpeer_endpoint for n, c in net.nodes.items() if n != name and net.links},
        delays={n: net.delay(name, n) for n in net.nodes if n != name},
        token=token,
    )
    return 0


def preload_node() -> None:
    """Do once, in the process that forks a node's processes, what both would do
    first: import their modules and numpy's random module (loaded on first use
    otherwise: ~9 ms in each process), and build msgspec's decoder for each message
    union (~5 ms in all, then cached), so every forked child starts with them."""
    import numpy.random  # noqa: F401

    import qnodeos.kernel.service  # noqa: F401
    import qnodeos.qdevice.realtime  # noqa: F401

    from ..lang import codec

    for make in (
        codec.app_to_node,
        codec.node_to_app,
        codec.to_device,
        codec.from_device,
        codec.node_to_node,
        codec.qdevice_peer,
    ):
        make()


def run_node(name: str, path: str | None) -> int:
    """``qnodeos node NAME``: fork the quantum process, then run the classical one."""
    network(path).node(name)  # a bad file or name fails here, before any fork
    preload_node()  # so the quantum process starts with it done
    token = secrets.token_hex(16)  # the quantum process serves only who knows it
    qdevice = fork_qdevice(name, path, token)
    return trio.run(node_main, name, path, qdevice, token)


def node_command(name: str, path: str | None) -> int:
    """``qnodeos node NAME --network PATH`` in a process of its own (the launcher forks
    it): it logs, and exits, as that command does."""
    configure_logging()
    return guarded(lambda: run_node(name, path))
