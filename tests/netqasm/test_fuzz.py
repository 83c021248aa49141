"""Random NetQASM through a node (deterministic mode, seeded): binaries built from the
flavour's real instruction ids with random operand bytes (biased to small values, so
many reach the interpreter: registers, addresses, qubit ids, EPR arguments), and random
text. Every one ends as a result or a BlockError naming a problem; none kills the node,
hangs it or touches the native app beside it, whose qubit stays in |1>."""

from __future__ import annotations

import random

import pytest

from qnodeos import sdk
from qnodeos.testbed.local import local_network
from tests.conftest import network

pytest.importorskip("netqasm")
from netqasm.lang.instr import NVFlavour, TrappedIonFlavour, VanillaFlavour  # noqa: E402

NET = """
[nodes.alice]
device = "generic"
qubits = 4
speed = inf
seed = 1
budget = 5000
[nodes.bob]
device = "generic"
qubits = 2
speed = inf
seed = 2
[[links]]
nodes = ["alice", "bob"]
model = "perfect"
cycle_ns = 1000
seed = 3
"""
FLAVOURS = {"vanilla": VanillaFlavour(), "nv": NVFlavour(), "trapped_ion": TrappedIonFlavour()}
WORDS = ["set", "array", "qalloc", "init", "meas", "store", "load", "jmp", "R0", "Q1", "M0",
         "@0[R1]", "@1", "1", "-1", "99999999999", "C0", "h", "create_epr", "wait_all",
         "@0[R0:R1]", "ret_arr", "// x", "LOOP:", "# NETQASM 1.0"]  # fmt: skip


PRELUDE = """# NETQASM 1.0
# APPID 0
set R0 0
set R1 1
set R2 2
set Q0 0
set Q1 1
set M0 0
array R2 @0
array R2 @1
qalloc Q0
init Q0
"""


def program(rng: random.Random, flavour: str) -> bytes:
    """A valid prelude (registers set, arrays declared, a qubit allocated), then random
    commands: real ids, operand bytes mostly 0-3 (registers R0-R3, small addresses)."""
    from netqasm.lang.parsing import parse_text_subroutine

    ids = sorted(FLAVOURS[flavour].id_map)
    out = bytearray(bytes(parse_text_subroutine(PRELUDE, flavour=FLAVOURS[flavour])))
    for _ in range(rng.randint(1, 8)):
        out.append(rng.choice(ids))
        out += bytes(rng.choice((0, 0, 0, 0, 1, 2, 3, 17, 33)) if rng.random() < 0.95
                     else rng.randrange(256) for _ in range(6))  # fmt: skip
    if rng.random() < 0.05:
        out += bytes(rng.randrange(256) for _ in range(rng.randint(1, 6)))  # torn
    return bytes(out)


def text(rng: random.Random) -> str:
    lines = [" ".join(rng.choice(WORDS) for _ in range(rng.randint(1, 4))) for _ in range(8)]
    return "# NETQASM 1.0\n# APPID 0\n" + "\n".join(lines) + "\n"


async def test_random_netqasm_never_harms_the_node() -> None:
    rng = random.Random(2026)
    outcomes = {"done": 0, "refused": 0, "ran": 0}  # ran: refused while running
    async with local_network(network(NET)) as eps:
        async with (
            sdk.connect("alice", app="native", qubits=1, endpoint=eps["alice"]) as native,
            sdk.connect("alice", app="fuzz", qubits=3, endpoint=eps["alice"]) as fuzz,
        ):
            async with native.block() as b:
                q = b.qubit()
                q.x()
            for i in range(2000):
                flavour = rng.choice(list(FLAVOURS))
                code: bytes | str = program(rng, flavour) if i % 4 else text(rng)
                await fuzz.run_netqasm(b"", stop=True)  # the last one's qubits go
                try:
                    await fuzz.run_netqasm(code, flavour=flavour, fresh=rng.random() < 0.2)
                    outcomes["done"] += 1
                except sdk.BlockError as exc:
                    assert exc.code in ("invalid", "program", "device", "quota", "epr"), exc
                    assert str(exc).strip()
                    outcomes["refused"] += 1
                    outcomes["ran"] += exc.code != "invalid"
            ok = await fuzz.run_netqasm("# NETQASM 1.0\nset R0 5\nret_reg R0\n", fresh=True)
            assert ok["R0"] == 5
            async with native.block() as b:
                m = q.measure()
            assert m.value == 1
    assert outcomes["done"] > 30 and outcomes["ran"] > 200, outcomes
