"""NetQASM subroutines through a node (deterministic mode): every instruction qnodeos
runs, in the text form the netqasm package parses, submitted, run and read back;
the ones it does not run, malformed input and hostile apps refused with an error
naming the problem while the node keeps serving; NetQASM and native apps side by side.

States are read with ``peek`` (simulation only) and compared with the gate matrices
of the netqasm package itself (``netqasm.util.quantum_gates``), on a noiseless device.
"""

from __future__ import annotations

import math
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import numpy as np
import pytest
import trio

from qnodeos import sdk
from qnodeos.lang.program import INT_MIN
from qnodeos.testbed.local import local_network
from tests.conftest import network

pytest.importorskip("netqasm")
from netqasm.lang.ir import GenericInstr  # noqa: E402
from netqasm.util.quantum_gates import (  # noqa: E402
    gate_to_matrix,
    get_controlled_rotation_matrix,
)

NET = """
[nodes.alice]
device = "generic"
qubits = 5
speed = inf
seed = 1
[nodes.ion]
device = "trapped_ion"
qubits = 2
speed = inf
seed = 2
[nodes.ion.params.collective.all_rx]
error = 0.0
[nodes.ion.params.collective.all_ry]
error = 0.0
[nodes.ion.params.collective.ms]
error = 0.0
[nodes.ion.params.kinds.ion]
t2_ns = inf
[nodes.ion.params.kinds.ion.gates.rz]
error = 0.0
"""


@asynccontextmanager
async def session(node: str = "alice", app: str = "nq", qubits: int = 5) -> AsyncIterator[Any]:
    async with local_network(network(NET)) as eps:
        async with sdk.connect(node, app=app, qubits=qubits, endpoint=eps[node]) as s:
            yield s


def sub(body: str) -> str:
    return "# NETQASM 1.0\n# APPID 0\n" + body.strip() + "\n"


PREP = "set Q0 0\nqalloc Q0\ninit Q0\n"


def rho_of(state: np.ndarray) -> np.ndarray:
    return np.outer(state, state.conj())


def close(rho: np.ndarray, want: np.ndarray) -> bool:
    return bool(np.allclose(rho, want, atol=1e-9))


PLUS = np.array([1, 1]) / math.sqrt(2)


async def test_classical_instructions_round_trip() -> None:
    text = sub("""
array 8 @0
set R0 7
set R1 3
add R2 R0 R1
store R2 @0[0]
sub R2 R0 R1
store R2 @0[1]
mul R2 R0 R1
store R2 @0[2]
div R2 R0 R1
store R2 @0[3]
rem R2 R0 R1
store R2 @0[4]
set R3 5
addm R2 R0 R1 R3
store R2 @0[5]
subm R2 R1 R0 R3
store R2 @0[6]
undef @0[6]
lea R4 @0
load R5 @0[2]
set R6 0
bez R6 SKIP1
set R5 -1
SKIP1:
bnz R6 SKIP2
beq R0 R0 SKIP2
set R5 -2
SKIP2:
bne R0 R1 SKIP3
set R5 -3
SKIP3:
blt R1 R0 SKIP4
set R5 -4
SKIP4:
bge R0 R1 SKIP5
set R5 -5
SKIP5:
jmp END
set R5 -6
END:
breakpoint 0 0
ret_reg R4
ret_reg R5
ret_arr @0
""")
    async with session() as s:
        values = await s.run_netqasm(text)
    assert values["R4"] == 0 and values["R5"] == 21
    assert values["@0"] == [10, 4, 21, 2, 1, 0, INT_MIN, INT_MIN]  # undef -> undefined


ONE_QUBIT = [("x", "X"), ("y", "Y"), ("z", "Z"), ("h", "H"), ("s", "S"), ("k", "K"), ("t", "T")]


@pytest.mark.parametrize("gate,name", ONE_QUBIT)
async def test_single_qubit_gates_match_netqasm_matrices(gate: str, name: str) -> None:
    async with session() as s:
        await s.run_netqasm(sub(PREP + f"h Q0\n{gate} Q0\n"))
        rho = await s.state(0)
    u = gate_to_matrix(GenericInstr[name])
    assert close(rho, rho_of(u @ PLUS))


@pytest.mark.parametrize("axis,n,d", [("x", 1, 2), ("y", 3, 3), ("z", 5, 4), ("x", 16, 3)])
async def test_rotations_match_netqasm_matrices(axis: str, n: int, d: int) -> None:
    async with session() as s:
        await s.run_netqasm(sub(PREP + f"h Q0\nrot_{axis} Q0 {n} {d}\n"))
        rho = await s.state(0)
    u = gate_to_matrix(GenericInstr[f"ROT_{axis.upper()}"], (n, d))
    assert close(rho, rho_of(u @ PLUS))


@pytest.mark.parametrize("axis", ["x", "y"])
@pytest.mark.parametrize("control", [0, 1])
async def test_nv_controlled_rotations(axis: str, control: int) -> None:
    flip = "rot_x Q0 1 0\n" if control else ""  # NV has no x: Rx(pi)
    text = sub(PREP + "set Q1 1\nqalloc Q1\ninit Q1\n" + flip + f"crot_{axis} Q0 Q1 1 1\n")
    async with session() as s:
        await s.run_netqasm(text, flavour="nv")
        rho = await s.state(1)
    u = get_controlled_rotation_matrix([1, 0, 0] if axis == "x" else [0, 1, 0], math.pi / 2)
    full = u @ np.kron(np.eye(2)[control], [1, 0])
    target = full.reshape(2, 2)[control]
    assert close(rho, rho_of(target))


async def test_two_qubit_gates_mov_swp_meas() -> None:
    text = sub("""
array 8 @0
set Q0 0
set Q1 1
qalloc Q0
qalloc Q1
init Q0
init Q1
x Q0
cnot Q0 Q1
meas Q1 M0
store M0 @0[0]
h Q1
cphase Q0 Q1
h Q1
meas Q1 M0
store M0 @0[1]
init Q1
swp Q0 Q1
meas Q0 M0
store M0 @0[2]
meas Q1 M0
store M0 @0[3]
init Q0
mov Q1 Q0
meas Q0 M0
store M0 @0[4]
meas_basis Q0 M0 0 16 0 4
store M0 @0[5]
init Q1
meas_basis_yzy Q1 M0 8 0 0 3
store M0 @0[6]
meas_basis_zxz Q1 M0 0 8 0 3
store M0 @0[7]
qfree Q0
qfree Q1
ret_arr @0
""")
    async with session() as s:
        values = await s.run_netqasm(text)
    # cnot |1>|0> -> 1; H CZ H with control |1> flips Q1 back to 0; swp moves |1> from
    # Q0 to Q1; mov moves it back into Q0
    got = values["@0"]
    assert got[:5] == [1, 0, 0, 1, 1]
    assert got[5] == 0  # XYX (0, pi, 0) on |1>: Ry(pi) -> |0>
    assert got[6] == 1  # YZY (pi, 0, 0) on |0>: Ry(pi) -> |1>
    assert got[7] == 0  # ZXZ (0, pi, 0) on |1>: Rx(pi) -> |0>


async def test_trapped_ion_flavour() -> None:
    text = sub("""
array 2 @0
set Q0 0
set Q1 1
qalloc Q0
qalloc Q1
init Q0
init Q1
rot_x_all 16 4
meas Q0 M0
store M0 @0[0]
meas Q1 M0
store M0 @0[1]
ret_arr @0
""")
    async with session("ion", qubits=2) as s:
        values = await s.run_netqasm(text, flavour="trapped_ion")
    assert values["@0"] == [1, 1]


async def test_arrays_and_registers_persist_until_fresh() -> None:
    async with session() as s:
        await s.run_netqasm(sub("array 3 @4\nset R7 9\nstore R7 @4[2]\n"), fresh=True)
        values = await s.run_netqasm(sub("load R0 @4[2]\nadd R1 R0 R7\nret_reg R1\n"))
        assert values["R1"] == 18
        with pytest.raises(sdk.BlockError, match=r"@4 was not declared"):
            await s.run_netqasm(sub("load R0 @4[2]\n"), fresh=True)


UNSUPPORTED = [
    ("trapped_ion", "init_all\n", "init_all"),
    ("trapped_ion", "set R0 0\nmeas_all R0 @0\n", "meas_all"),
    ("trapped_ion", "rot_z_all 1 1\n", "rot_z_all"),
]


@pytest.mark.parametrize("flavour,body,name", UNSUPPORTED)
async def test_unsupported_instructions_are_named(flavour: str, body: str, name: str) -> None:
    async with session() as s:
        with pytest.raises(
            sdk.BlockError, match=rf"\({name}, {flavour} flavour\) is not supported"
        ):
            await s.run_netqasm(sub(body), flavour=flavour)
        assert (await s.run_netqasm(sub("set R0 1\nret_reg R0\n")))["R0"] == 1


MALFORMED = [
    (b"\x01\x00", "binary", "vanilla", "not 4 bytes of metadata plus 7-byte commands"),
    (b"\x00" * 4 + b"\xfa" + b"\x00" * 6, "binary", "vanilla", "bad NetQASM binary"),
    (b"\x00" * 11, "binary", "superconducting", "flavour 'superconducting' unknown"),
    (b"# NETQASM 1.0\nfrobnicate R0\n", "text", "vanilla", "bad NetQASM text"),
    (b"\xff\xfe", "text", "vanilla", "bad NetQASM text"),
]


@pytest.mark.parametrize("code,form,flavour,error", MALFORMED)
async def test_malformed_netqasm_is_refused_and_node_serves_on(
    code: bytes, form: str, flavour: str, error: str
) -> None:
    async with session() as s:
        text: bytes | str = code.decode("latin-1") if form == "text" else code
        with pytest.raises(sdk.BlockError, match=error):
            await s.run_netqasm(text, flavour=flavour)
        assert (await s.run_netqasm(sub("set R0 2\nret_reg R0\n")))["R0"] == 2


RUNTIME_ERRORS = [
    ("array 70000 @0\n", "array @0 of 70000 entries"),
    ("array 2 @0\nset R0 5\nstore R0 @0[R0]\n", "index 5 out of bounds for @0"),
    ("array 2 @0\nset R0 0\nload R1 @0[R0]\n", "undefined"),
    ("ret_reg R3\n", "R3 is read before it was set"),
    ("set Q0 2000\nqalloc Q0\n", "qubit id 2000"),
    ("set R0 1\nset R1 0\ndiv R2 R0 R1\n", "div by zero"),
    ("set R0 2147483647\nadd R1 R0 R0\n", "does not fit in 32 bits"),
    ("LOOP:\njmp LOOP\n", "instruction budget"),
    ("set Q0 0\nh Q0\n", "Q0|not allocated|qubit 0"),
    (
        "set R0 0\nset R1 0\nset R2 0\nset R3 0\nset R4 0\ncreate_epr R0 R1 R2 R3 R4\n",
        "no EPR socket 0 with node 0",
    ),
]


@pytest.mark.parametrize("body,error", RUNTIME_ERRORS)
async def test_bad_subroutines_fail_alone(body: str, error: str) -> None:
    async with session() as s:
        with pytest.raises(sdk.BlockError, match=error):
            await s.run_netqasm(sub(body))
        assert (await s.run_netqasm(sub("set R0 3\nret_reg R0\n")))["R0"] == 3


async def test_hostile_netqasm_app_beside_native_app() -> None:
    """A NetQASM app that probes another app's qubit ids, declares arrays until refused
    and loops forever, while a native app on the same node keeps its qubit in |1> and
    runs blocks: the native app sees nothing of it."""
    async with local_network(network(NET)) as eps:
        async with (
            sdk.connect("alice", app="native", qubits=2, endpoint=eps["alice"]) as native,
            sdk.connect("alice", app="hostile", qubits=2, endpoint=eps["alice"]) as hostile,
        ):
            async with native.block() as b:
                q = b.qubit()
                q.x()
            refused: list[str] = []

            async def attack() -> None:
                for body in (
                    f"set Q0 {q.id}\nh Q0\n",  # the native app's id: not this app's qubit
                    f"set Q0 {q.id}\nmeas Q0 M0\nret_reg M0\n",
                    "array 65536 @0\narray 10 @1\n",
                    "LOOP:\njmp LOOP\n",
                    f"set Q0 {q.id}\nqfree Q0\n",
                ):
                    try:
                        await hostile.run_netqasm(sub(body))
                    except sdk.BlockError as exc:
                        refused.append(str(exc))

            async def work() -> list[int]:
                outs = []
                for _ in range(5):
                    async with native.block() as b:
                        r = b.qubit()
                        m = r.measure()
                    outs.append(m.value)
                return outs

            async with trio.open_nursery() as nursery:
                nursery.start_soon(attack)
                outs = await work()
            assert outs == [0] * 5
            assert len(refused) == 5, refused
            async with native.block() as b:
                m = q.measure()
            assert m.value == 1  # its |1> untouched


NV_TEXT = sub(PREP + "set Q1 1\nqalloc Q1\ninit Q1\nrot_x Q0 1 0\ncrot_y Q0 Q1 1 1\n")


@pytest.mark.parametrize("flavour", ["vanilla", "nv"])
async def test_binary_as_netqasm_encodes_it(flavour: str) -> None:
    """The same subroutine as text and as netqasm's binary encoding of it (NV ids 27-31
    mean rot_* and crot_*, vanilla 20-31 the Pauli/Clifford gates) runs the same."""
    from netqasm.lang.instr import NVFlavour, VanillaFlavour
    from netqasm.lang.parsing import parse_text_subroutine

    text = NV_TEXT if flavour == "nv" else sub(PREP + "h Q0\nk Q0\nset Q1 1\nqalloc Q1\n"
                                                      "init Q1\ncnot Q0 Q1\n")  # fmt: skip
    fl = NVFlavour() if flavour == "nv" else VanillaFlavour()
    binary = bytes(parse_text_subroutine(text, flavour=fl))
    states = []
    for code in (text, binary):
        async with session() as s:
            await s.run_netqasm(code, flavour=flavour)
            states.append(await s.state(1))
    assert close(states[0], states[1]) and not close(states[0], np.diag([1, 0]))


async def test_wrong_flavour_is_refused() -> None:
    """Vanilla's h (id 23) does not exist in the NV flavour."""
    from netqasm.lang.instr import VanillaFlavour
    from netqasm.lang.parsing import parse_text_subroutine

    binary = bytes(parse_text_subroutine(sub(PREP + "h Q0\n"), flavour=VanillaFlavour()))
    async with session() as s:
        with pytest.raises(sdk.BlockError, match=r"bad NetQASM binary \(nv flavour\)"):
            await s.run_netqasm(binary, flavour="nv")
        await s.run_netqasm(binary)  # read as vanilla, it runs


async def test_trapped_ion_rotations_and_bichromatic() -> None:
    """rot_y_all(pi/2) puts both ions in |+>, rot_z(pi/2) turns one (compared with
    netqasm's matrix); bichromatic(pi) = exp(-i pi/2 XX) takes |00> to |11>."""
    text = sub("""
set Q0 0
set Q1 1
qalloc Q0
qalloc Q1
init Q0
init Q1
rot_y_all 1 1
rot_z Q0 1 1
""")
    async with session("ion", qubits=2) as s:
        await s.run_netqasm(text, flavour="trapped_ion")
        rho = await s.state(0)
        u = gate_to_matrix(GenericInstr.ROT_Z, (1, 1))
        assert close(rho, rho_of(u @ PLUS))
        flip = sub(
            "array 2 @0\ninit Q0\ninit Q1\nbichromatic 1 0\nmeas Q0 M0\nset R0 0\n"
            "store M0 @0[R0]\nmeas Q1 M1\nset R0 1\nstore M1 @0[R0]\nret_arr @0\n"
        )
        values = await s.run_netqasm(flip, flavour="trapped_ion")
    assert values["@0"] == [1, 1]


async def test_nv_flavour_single_qubit_rotations_mov_swp() -> None:
    text = sub(PREP + "set Q1 1\nqalloc Q1\ninit Q1\nrot_y Q0 1 1\nrot_z Q0 1 2\n"
               "swp Q0 Q1\nmov Q1 Q0\n")  # fmt: skip
    async with session() as s:
        await s.run_netqasm(text, flavour="nv")
        rho0, rho1 = await s.state(0), await s.state(1)
    ry = gate_to_matrix(GenericInstr.ROT_Y, (1, 1))
    rz = gate_to_matrix(GenericInstr.ROT_Z, (1, 2))
    assert close(rho0, rho_of(rz @ ry @ np.array([1, 0])))  # swapped out and moved back
    assert close(rho1, np.diag([1.0, 0.0]))


NV_CLEAN = """
[nodes.nv]
device = "nv"
qubits = 2
speed = inf
seed = 4
starvation_s = 1000.0
[nodes.nv.params.kinds.electron]
t2_ns = inf
t1_ns = inf
init = { error = 0.0 }
meas = { p01 = 0.0, p10 = 0.0 }
[nodes.nv.params.kinds.electron.gates]
rx = { error = 0.0 }
ry = { error = 0.0 }
rz = { error = 0.0 }
[nodes.nv.params.kinds.carbon]
t2_ns = inf
t1_ns = inf
init = { error = 0.0 }
[nodes.nv.params.kinds.carbon.gates]
rx = { error = 0.0 }
ry = { error = 0.0 }
rz = { error = 0.0 }
[nodes.nv.params.two_qubit.crx.spec]
error = 0.0
[nodes.nv.params.two_qubit.cry.spec]
error = 0.0
"""


async def test_meas_basis_waiting_for_the_readout_qubit_rotates_once() -> None:
    """On NV a carbon is read out through the electron. While another app holds the
    electron, a meas_basis of a carbon waits (without spinning on the device); when it
    goes on, its rotation (Ry(pi): |0> -> |1>) is applied once, and its 7 instructions
    (the assembler adds a set) count once each."""
    async with local_network(network(NV_CLEAN)) as eps:
        async with (
            sdk.connect("nv", app="holder", qubits=1, endpoint=eps["nv"]) as holder,
            sdk.connect("nv", app="nq", qubits=1, endpoint=eps["nv"]) as nq,
        ):
            async with holder.block() as b:
                e = b.qubit()  # the electron (lowest free)
            await nq.run_netqasm(sub(PREP))  # Q0: a carbon, in |0>
            got: dict[str, object] = {}

            async def measure() -> None:
                code = sub("array 1 @0\nset Q0 0\nmeas_basis Q0 M0 0 1 0 0\nset R0 0\n"
                           "store M0 @0[R0]\nret_arr @0\n")  # fmt: skip
                got.update(await nq.run_netqasm(code))

            async with trio.open_nursery() as n:
                n.start_soon(measure)
                await trio.sleep(1.0)
                assert not got  # waiting for the electron
                async with holder.block():
                    e.free()
            assert nq.last_block is not None and nq.last_block.instructions == 7
    assert got["@0"] == [1]
