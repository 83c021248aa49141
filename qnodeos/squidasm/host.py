"""Runs one stack's SquidASM program as a qnodeos app (the app module that
``qnodeos.squidasm.run`` puts on each stack's node), ``num_times`` in a row.

The program objects live in the process that called ``run`` (the network runs there,
on a simulated clock), in :data:`RUNS` under the run's id. Each iteration gets a fresh
connection and sockets, as on SquidASM; the program runs in a worker thread (see
``qnodeos.squidasm.stack``), its results are kept as they are (numpy arrays too). If a
program raises, the run's other programs are stopped and ``run`` raises the error.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass, field
from typing import Any

import trio
from netqasm.sdk.epr_socket import EPRSocket

from ..lang import messages as m
from ..sdk.client import ClassicalSocket as QSocket
from ..sdk.client import Node
from .program import Program, ProgramContext
from .stack import Bridge, ClassicalSocket, ClockGate, SquidConnection, stack_network_info

__all__ = ["RUNS", "Run", "drive", "main"]


@dataclass
class Run:
    """One call of ``run``: the programs by stack, their stacks' device types, what
    they returned (per iteration) and the first failure."""

    programs: dict[str, Program]
    devices: dict[str, str]
    stacks: list[str]
    results: dict[str, list[Any]] = field(default_factory=dict)
    error: tuple[str, BaseException] | None = None
    failed: trio.Event | None = None
    gate: ClockGate | None = None


RUNS: dict[str, Run] = {}


def drive(program: Program, context: ProgramContext) -> Any:
    """Run ``program.run(context)`` to its end and return what it returned. The
    waits inside it (flush, recv) have already happened when they return, so the
    generator never yields; a value it does yield came from elsewhere (NetSquid)."""
    out = program.run(context)
    if not inspect.isgenerator(out):
        return out
    try:
        item = next(out)
    except StopIteration as stop:
        return stop.value
    out.close()
    raise TypeError(
        f"program {type(program).__name__} yielded {item!r}: on qnodeos a program waits "
        f"only in `yield from` a connection's flush() or a socket's recv() (NetSquid's "
        f"event expressions are not available)"
    )


async def _channel(node: Node, peer: str) -> QSocket:
    """The session's socket to the program on ``peer`` (made in the trio thread: it
    registers an inbox the session fills)."""
    return node.socket(peer, peer)


def _iteration(bridge: Bridge, r: Run, stack: str, program: Program) -> Any:
    """One run of ``program`` (in the program's worker thread)."""
    meta = program.meta
    ids = {s: i for i, s in enumerate(r.stacks)}
    info = stack_network_info(ids)
    for peer in [*meta.epr_sockets, *meta.csockets]:
        if peer not in ids or peer == stack:
            raise ValueError(
                f"program {meta.name!r} on {stack} opens a socket with {peer!r}, which is "
                f"no other stack (stacks: {', '.join(r.stacks)})"
            )
    sockets = [
        m.NqSocket(id=i, node_id=ids[peer], node=peer, app=peer)
        for i, peer in enumerate(meta.epr_sockets)
    ]
    compiler = None
    if r.devices[stack] == "nv":
        from netqasm.sdk.transpile import NVSubroutineTranspiler

        compiler = NVSubroutineTranspiler
    conn = SquidConnection(
        bridge, stack, max_qubits=meta.max_qubits, info=info, sockets=sockets, compiler=compiler
    )
    eprs: dict[str, EPRSocket] = {}
    for i, peer in enumerate(meta.epr_sockets):
        eprs[peer] = EPRSocket(peer, i)
        eprs[peer].conn = conn
    csockets = {
        peer: ClassicalSocket(bridge, bridge.call(_channel, bridge.node, peer), stack, peer)
        for peer in meta.csockets
    }
    context = ProgramContext(
        netqasm_connection=conn, csockets=csockets, epr_sockets=eprs, app_id=conn.app_id
    )
    try:
        return drive(program, context)
    finally:
        conn.stop()


async def main(node: Node, run: str, stack: str, num_times: int) -> dict[str, Any]:
    """Run stack ``stack``'s program of run ``run`` ``num_times`` times on ``node`` (a
    session opened as the app named after the stack)."""
    r = RUNS[run]
    if r.failed is None:
        r.failed = trio.Event()
    if r.gate is None:
        r.gate = ClockGate(trio.lowlevel.current_clock())
    bridge = Bridge(node, trio.lowlevel.current_trio_token(), r.gate)
    program = r.programs[stack]
    done: list[Any] = []

    def work() -> None:
        for _ in range(num_times):
            done.append(_iteration(bridge, r, stack, program))

    failed = r.failed
    async with trio.open_nursery() as nursery:

        async def stop_if_another_fails() -> None:
            await failed.wait()
            nursery.cancel_scope.cancel()

        nursery.start_soon(stop_if_another_fails)
        r.gate.enter()
        try:
            await trio.to_thread.run_sync(work, abandon_on_cancel=True)
        except Exception as exc:
            if r.error is None:
                r.error = (stack, exc)
            failed.set()
            raise
        finally:
            r.gate.leave()
            r.results[stack] = done
        nursery.cancel_scope.cancel()
    return {"iterations": len(done)}
