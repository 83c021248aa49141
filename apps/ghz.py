"""A three-node GHZ state over a chain a - b - c (links a-b and b-c).

Node b keeps one pair with each neighbour, then fuses them: a CNOT between its two
halves and a measurement of the second, whose outcome it sends to c, which applies X if
it is 1. Then a, b and c share (|000> + |111>)/sqrt(2). Each round all three measure in
Z (outcomes must agree) or in X (the product of the three outcomes' signs must be +1);
every node sends its outcomes to the collector (role "a"), which reports both.

    [[apps]]
    node = "alice"
    module = "qnodeos.apps.ghz"
    args = { role = "a", me = "ghz-a", nodes = ["alice", "bob", "charlie"], rounds = 50 }
    (and the same with role "b" on bob and "c" on charlie)

The app names are ``ghz-a``, ``ghz-b``, ``ghz-c`` unless ``names`` says otherwise.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import trio

from qnodeos import sdk

from .common import rate, to_z


async def main(
    node: str,
    *,
    role: str,
    nodes: list[str],
    rounds: int = 50,
    names: list[str] | None = None,
    me: str = "",
    timeout: float = 30.0,
) -> dict[str, Any]:
    names = names or ["ghz-a", "ghz-b", "ghz-c"]
    idx = "abc".index(role)
    me = me or names[idx]
    quota = 2 if role == "b" else 1
    async with sdk.connect(node, app=me, qubits=quota) as conn:
        outcomes: list[int] = []
        for r in range(rounds):
            conn.progress(r, rounds, "rounds")
            basis = "Z" if r % 2 == 0 else "X"
            if role == "b":
                left = conn.epr_socket(nodes[0], names[0])
                right = conn.epr_socket(nodes[2], names[2])
                got: dict[str, sdk.Pair] = {}
                async with trio.open_nursery() as n:
                    n.start_soon(_keep, got, "left", left.recv_keep, timeout)
                    n.start_soon(_keep, got, "right", right.create_keep, timeout)
                q1, q2 = got["left"].qubit, got["right"].qubit
                assert q1 is not None and q2 is not None
                async with conn.block():
                    q1.cnot(q2)
                    fuse = q2.measure()
                await conn.socket(nodes[2], names[2]).send(fuse.value)
                async with conn.block():
                    to_z(q1, basis)
                    out = q1.measure()
            else:
                peer = 1
                sock = conn.epr_socket(nodes[peer], names[peer])
                if role == "a":
                    (pair,) = await sock.create_keep(timeout=timeout)
                else:
                    (pair,) = await sock.recv_keep(timeout=timeout)
                q = pair.qubit
                assert q is not None
                flip = await conn.socket(nodes[1], names[1]).recv() if role == "c" else 0
                async with conn.block():
                    if flip:
                        q.x()
                    to_z(q, basis)
                    out = q.measure()
            outcomes.append(out.value)
        conn.progress(rounds, rounds, "rounds")
        if role != "a":
            await conn.socket(nodes[0], names[0]).send(outcomes)
            return {"role": role, "rounds": rounds}
        b = await conn.socket(nodes[1], names[1]).recv()
        c = await conn.socket(nodes[2], names[2]).recv()
        z_agree = x_even = nz = nx = 0
        for r, triple in enumerate(zip(outcomes, b, c, strict=True)):
            if r % 2 == 0:
                nz += 1
                z_agree += len(set(triple)) == 1
            else:
                nx += 1
                x_even += sum(triple) % 2 == 0
        pz, ez = rate(z_agree, nz)
        px, ex = rate(x_even, nx)
        return {
            "role": "a",
            "rounds": rounds,
            "z_agree": pz,
            "z_stderr": ez,
            "xxx": 2 * px - 1,
            "xxx_stderr": 2 * ex,
        }


async def _keep(
    got: dict[str, sdk.Pair],
    side: str,
    ask: Callable[..., Awaitable[list[sdk.Pair]]],
    timeout: float,
) -> None:
    (got[side],) = await ask(timeout=timeout)


def format_result(r: dict[str, Any]) -> str:
    if r["role"] != "a":
        return f"GHZ {r['role']}: {r['rounds']} rounds"
    return (
        f"GHZ: Z outcomes agree {r['z_agree']:.3f} ± {r['z_stderr']:.3f}, "
        f"<XXX> = {r['xxx']:.3f} ± {r['xxx_stderr']:.3f} over {r['rounds']} rounds"
    )
