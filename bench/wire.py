"""CPU per message round trip between two processes: our trio adapter (``ZSocket``) and
codec against plain synchronous pyzmq (issue #25).

    python bench/wire.py [--trips 20000] [--runs 3] [--mode sync trio-raw trio]
    python bench/wire.py --inproc [--burst 1|16]

A client in this process sends a ~100-byte message to an echo server in another process
(DEALER -> ROUTER over ipc) and waits for the reply, ``--trips`` times. Modes:

- ``sync``: both ends plain blocking pyzmq, raw bytes (the floor of zmq-trio.md);
- ``trio-raw``: both ends ``ZSocket`` under trio, raw bytes (the adapter's cost);
- ``trio``: both ends ``ZSocket`` and the codec: the client encodes an app's ``SendMsg``,
  the server decodes it and answers an encoded ``SendDone``, which the client decodes
  (what every hop of a node pays, without the node's logic).

``--inproc``: both ends ``ZSocket``s in this one process and trio run, over inproc://
(no zmq I/O thread, no other process): the adapter's own CPU per round trip (two sends
and two receives, each receive waiting when ``--burst`` is 1; ``--burst 16``: 16
requests, then their 16 replies).

Prints, per mode and run, CPU µs per round trip (utime + stime from /proc) of the client
and of the server, and of that the zmq I/O threads' share ("ZMQbg/IO"), with the load
average. Runs alternate modes, so the machine's drift hits each alike.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import trio
import zmq

sys.path.insert(0, str(Path(__file__).parent))
from block_cpu import zmq_io_s  # noqa: E402
from cpu import cpu_s, own_cpu  # noqa: E402

from qnodeos.lang import codec  # noqa: E402
from qnodeos.lang import messages as m  # noqa: E402
from qnodeos.runtime.transport import ZSocket, bind_router, connect_dealer  # noqa: E402

RAW = b"x" * 100
MSG = m.SendMsg(to_node="bob", to_app="teleport", seq=12345, data=b"d" * 48)


def serve_sync(ep: str) -> None:
    s = zmq.Context.instance().socket(zmq.ROUTER)
    s.bind(ep)
    print("READY", flush=True)
    while True:
        s.send_multipart(s.recv_multipart())


async def serve_trio(ep: str, with_codec: bool) -> None:
    sock = bind_router(ep)
    dec, enc = codec.app_to_node(), codec.node_to_app()
    print("READY", flush=True)
    while True:
        ident, data = await sock.recv()
        if with_codec:
            msg = dec.decode(data)
            assert isinstance(msg, m.SendMsg)
            data = enc.encode(m.SendDone(seq=msg.seq))
        await sock.send([ident, data])


def client_sync(ep: str, n: int) -> None:
    s = zmq.Context.instance().socket(zmq.DEALER)
    s.connect(ep)
    for _ in range(n):
        s.send(RAW)
        s.recv()
    s.close(linger=0)


async def client_trio(ep: str, n: int, with_codec: bool) -> None:
    sock = connect_dealer(ep)
    enc, dec = codec.app_to_node(), codec.node_to_app()
    try:
        for _ in range(n):
            if with_codec:
                await sock.send([enc.encode(MSG)])
                reply = dec.decode((await sock.recv())[0])
                assert isinstance(reply, m.SendDone)
            else:
                await sock.send([RAW])
                await sock.recv()
    finally:
        sock.close()


async def inproc(n: int, burst: int) -> float:
    """CPU µs per round trip, both ends in this process (see ``--inproc``)."""
    ctx = zmq.Context.instance()
    ep = f"inproc://wire-{os.getpid()}-{n}-{burst}"
    router = ZSocket(ctx.socket(zmq.ROUTER))
    router.sock.bind(ep)
    dealer = ZSocket(ctx.socket(zmq.DEALER))
    dealer.sock.connect(ep)

    async def echo() -> None:
        while True:
            await router.send(await router.recv())

    try:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(echo)
            for size in (500, n):  # (a warm-up, then the measured run)
                t0 = time.process_time()
                for _ in range(size // burst):
                    for _ in range(burst):
                        await dealer.send([RAW])
                    for _ in range(burst):
                        await dealer.recv()
                took = time.process_time() - t0
            nursery.cancel_scope.cancel()
    finally:
        router.close()
        dealer.close()
    return took / (n // burst * burst) * 1e6


def client(mode: str, ep: str, n: int) -> None:
    if mode == "sync":
        client_sync(ep, n)
    else:
        trio.run(client_trio, ep, n, mode == "trio")


def one(mode: str, n: int) -> tuple[float, float, float, float]:
    """(client, server, client zmq I/O, server zmq I/O) CPU µs per round trip."""
    with tempfile.TemporaryDirectory(prefix="qnw-") as d:
        ep = f"ipc://{d}/echo"
        server = subprocess.Popen(
            [sys.executable, __file__, "--serve", mode, ep], stdout=subprocess.PIPE, text=True
        )
        assert server.stdout is not None
        try:
            if "READY" not in server.stdout.readline():
                raise SystemExit("the echo server did not start")
            client(mode, ep, 500)  # warm up
            s0, io_s0, io_c0, c0 = (
                cpu_s(server.pid),
                zmq_io_s(server.pid),
                zmq_io_s(os.getpid()),
                own_cpu(),
            )
            client(mode, ep, n)
            c1, s1 = own_cpu(), cpu_s(server.pid)
            io_s1, io_c1 = zmq_io_s(server.pid), zmq_io_s(os.getpid())
        finally:
            server.terminate()
            server.wait()
    k = 1e6 / n
    return (c1 - c0) * k, (s1 - s0) * k, (io_c1 - io_c0) * k, (io_s1 - io_s0) * k


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--trips", type=int, default=20000)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--mode", nargs="+", default=["sync", "trio-raw", "trio"])
    ap.add_argument("--inproc", action="store_true", help="the adapter alone, one process")
    ap.add_argument("--burst", type=int, default=1)
    ap.add_argument("--serve", nargs=2, metavar=("MODE", "ENDPOINT"), help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.serve:
        mode, ep = a.serve
        if mode == "sync":
            serve_sync(ep)
        else:
            trio.run(serve_trio, ep, mode == "trio")
        return
    if a.inproc:
        for i in range(a.runs):
            us = trio.run(inproc, a.trips, a.burst)
            load = os.getloadavg()[0]
            tag = f"run {i + 1} inproc, burst {a.burst}"
            print(f"{tag}: CPU us/round trip {us:.2f} (load {load:.2f})")
        return
    for i in range(a.runs):
        for mode in a.mode:
            c, s, ioc, ios = one(mode, a.trips)
            load = os.getloadavg()[0]
            print(
                f"run {i + 1} {mode:8}: CPU us/round trip client={c:.1f} server={s:.1f} "
                f"total={c + s:.1f}; zmq I/O client={ioc:.1f} server={ios:.1f} "
                f"(load {load:.2f})",
                flush=True,
            )


if __name__ == "__main__":
    main()
