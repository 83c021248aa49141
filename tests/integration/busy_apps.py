"""Apps that keep a node busy, for ``test_busy.py``, each an OS process of its own.

    python -m tests.integration.busy_apps ROLE ENDPOINT [SECONDS]

Each prints one JSON line per event on stdout, flushed, so the test can follow it.
"""

from __future__ import annotations

import json
import sys
import time

import trio
import trio.lowlevel

from qnodeos import sdk


def say(**kw: object) -> None:
    print(json.dumps({"t": time.time(), **kw}), flush=True)


async def spinner(ep: str, seconds: float) -> None:
    """Back-to-back blocks that loop forever, each stopped by the node's instruction
    budget (about 0.5-2 s of the classical process's CPU each)."""
    async with sdk.connect("n", app="spinner", qubits=0, endpoint=ep) as node:
        end = time.time() + seconds
        n = 0
        while time.time() < end:
            try:
                await node.run("l:\njmp @l")
            except sdk.BlockError as exc:
                n += 1
                say(event="stopped", n=n, message=str(exc))
        say(event="done", blocks=n)


async def idle(ep: str, seconds: float) -> None:
    """Connects and does nothing for ``seconds`` (its SDK keeps the lease)."""
    async with sdk.connect("n", app="idle", qubits=1, endpoint=ep) as node:
        say(event="connected")
        await trio.sleep(seconds)
        async with node.block() as b:
            m = b.qubit().measure()
        say(event="done", value=m.value)


async def worker(ep: str, seconds: float) -> None:
    """One-gate blocks for ``seconds``; reports each block's latency."""
    async with sdk.connect("n", app="worker", qubits=1, endpoint=ep) as node:
        end = time.time() + seconds
        took = []
        while time.time() < end:
            t0 = time.perf_counter()
            async with node.block() as b:
                q = b.qubit()
                q.x()
                m = q.measure()
            took.append(time.perf_counter() - t0)
            assert m.value == 1
            await trio.sleep(0.01)
        say(event="done", blocks=len(took), max_s=max(took))


async def bigloop(ep: str, seconds: float) -> None:
    """Loops far bigger than one device request: 100,000 gates run; 400,000 iterations
    end with the instruction budget's error, not a lease's."""
    del seconds
    async with sdk.connect("n", app="bigloop", qubits=1, endpoint=ep) as node:
        async with node.block() as b:
            q = b.qubit()
            with b.loop(100_000):
                q.x()
            m = q.measure()
        assert node.last_block is not None
        say(event="ran", value=m.value, instructions=node.last_block.instructions)
        try:
            async with node.block() as b:
                q = b.qubit()
                with b.loop(400_000):
                    q.x()
                q.measure()
        except sdk.BlockError as exc:
            say(event="refused", code=exc.code, message=str(exc))
        say(event="done")


def _nq_text(lines: int) -> bytes:
    body = "set Q0 0\nqalloc Q0\ninit Q0\n" + "x Q0\n" * (lines - 4) + "qfree Q0\n"
    return ("# NETQASM 1.0\n# APPID 0\n" + body).encode()


async def flooder(ep: str, seconds: float) -> None:
    """A hostile app (raw socket, no SDK): oversized blocks back to back, pipelined 8
    deep without waiting for replies: NetQASM text of 16,384 lines (~8 s of netqasm's
    parser, if it were parsed), NetQASM binary of 16,384 commands, and native blocks of
    65,536 instructions (each 16 times the node's 4,096-instruction limit, or 4)."""
    import zmq

    from qnodeos.lang import codec
    from qnodeos.lang import messages as m
    from qnodeos.lang.program import Subroutine
    from qnodeos.lang.text import parse

    enc, dec = codec.app_to_node(), codec.node_to_app()
    sock = zmq.Context.instance().socket(zmq.DEALER)
    sock.connect(ep)
    sock.send(enc.encode(m.Register(app="flooder", qubits=1)))
    assert isinstance(dec.decode(sock.recv()), m.Registered)
    four_k = parse("qalloc Q0\n" + "x Q0\n" * 4095).instrs
    native = Subroutine(arrays={}, instrs=four_k * 16, labels={})
    binary = bytes(4) + b"\x00" * 7 * 16_384

    def block(n: int) -> m.AppToNode:
        if n % 3 == 0:
            return m.SubmitNetQASM(block=n, code=_nq_text(16_384), form="text")
        if n % 3 == 1:
            return m.SubmitNetQASM(block=n, code=binary, form="binary")
        return m.Submit(block=n, sub=native)

    frames = {k: enc.encode(block(k)) for k in range(3)}
    end = time.time() + seconds
    sent = answered = 0
    codes: set[str] = set()
    while time.time() < end:
        while sent - answered < 8:
            sent += 1
            data = frames[sent % 3]
            sock.send(data)
        if sock.poll(50):
            reply = dec.decode(sock.recv())
            answered += 1
            codes.add(getattr(reply, "code", type(reply).__name__))
        else:
            await trio.lowlevel.checkpoint()
    say(event="done", sent=sent, answered=answered, codes=sorted(codes))


async def worker_median(ep: str, seconds: float) -> None:
    """One-gate blocks for ``seconds``: the median latency."""
    async with sdk.connect("n", app="median", qubits=1, endpoint=ep) as node:
        end = time.time() + seconds
        took = []
        while time.time() < end:
            t0 = time.perf_counter()
            async with node.block() as b:
                q = b.qubit()
                q.x()
                q.measure()
            took.append(time.perf_counter() - t0)
            await trio.sleep(0.005)
        took.sort()
        say(event="done", blocks=len(took), median_s=took[len(took) // 2], max_s=took[-1])


ROLES = {
    "spinner": spinner,
    "idle": idle,
    "worker": worker,
    "bigloop": bigloop,
    "flooder": flooder,
    "median": worker_median,
}

if __name__ == "__main__":
    trio.run(ROLES[sys.argv[1]], sys.argv[2], float(sys.argv[3]) if len(sys.argv) > 3 else 0.0)
