"""Instruction set: text and codec round trips for every instruction; validation."""

from __future__ import annotations

import msgspec
import pytest

from qnodeos.errors import ParseError, ProgramError, ProtocolError
from qnodeos.lang import codec
from qnodeos.lang import messages as m
from qnodeos.lang.program import OPCODES, Subroutine, validate
from qnodeos.lang.text import dumps, parse

SAMPLE_OPERAND = {
    "R": "R3",
    "V": "R2",
    "F": "0.25",
    "Q": "Q1",
    "E": "arr[R1]",
    "L": "@top",
    "T": "arr",
    "S": "0",
}
SAMPLE_ALT = {
    **{"R": "R15", "V": "-7", "F": "3", "Q": "Q0", "E": "arr[2]", "L": "@end", "T": "R0"},
    "S": "0",
}


def program_for(op: str, sample: dict[str, str]) -> str:
    qubits = iter(range(5))
    args = " ".join(f"Q{next(qubits)}" if k == "Q" else sample[k] for k in OPCODES[op])
    request = "request bob b create M 4 bases=XZ out=arr\n" if "S" in OPCODES[op] else ""
    text = f"array arr 4\n{request}top:\n{op} {args}\nend:\n"
    return text.replace(f"{op} \n", f"{op}\n")


@pytest.mark.parametrize("op", sorted(OPCODES))
@pytest.mark.parametrize("sample", [SAMPLE_OPERAND, SAMPLE_ALT], ids=["a", "b"])
def test_every_instruction_round_trips(op: str, sample: dict[str, str]) -> None:
    text = program_for(op, sample)
    sub = parse(text)
    assert dumps(sub) == text
    c = codec.app_to_node()
    msg = m.Submit(block=1, sub=sub)
    assert c.decode(c.encode(msg)) == msg


MESSAGES = [
    m.Register(app="a", qubits=2, priority=3),
    m.Submit(block=4, sub=parse("qalloc Q0\nret R0"), deadline_s=0.5),
    m.Heartbeat(),
    m.Stop(),
    m.Registered(app_id=1, node="alice", device="nv", native_gates=["rx"], lease_s=1.0),
    m.BlockDone(block=1, values={"R0": 1, "m0": [0, 1]}, instructions=5, device_ns=10),
    m.BlockFailed(block=1, code="device", message="no", held=[0, 2]),
    m.Alive(),
    m.Stopped(reason="bye"),
    m.ErrorReply(code="x", message="y"),
    m.DeviceRequest(seq=3, ops=[m.PhysOp("rx", (0,), 1.5), m.PhysOp("wait", (), 10.0)]),
    m.Ping(seq=1),
    m.DeviceReply(seq=3, outcomes=[-1, 1], error=None, now_ns=5),
    m.Pong(seq=1, device="nv", num_qubits=3),
]
CODECS = [codec.app_to_node(), codec.node_to_app(), codec.to_device(), codec.from_device()]


@pytest.mark.parametrize("msg", MESSAGES, ids=lambda x: type(x).__name__)
def test_every_message_round_trips(msg: object) -> None:
    decoded = []
    for c in CODECS:
        try:
            decoded.append(c.decode(c.encode(msg)))
        except ProtocolError:
            pass
    assert decoded and all(d == msg for d in decoded)


@pytest.mark.parametrize(
    "data, words",
    [
        (b"\xc1", "malformed msgpack"),
        (msgspec.msgpack.encode([9, {"type": "stop"}]), "schema version 9"),
        # a peer of the last schema (measured pairs one struct each): refused, by name
        (msgspec.msgpack.encode([1, {"type": "stop"}]), "schema version 1 not supported"),
        (msgspec.msgpack.encode([2, {"type": "launch"}]), "Invalid value 'launch'"),
        (msgspec.msgpack.encode([2, {"type": "register", "app": 3, "qubits": 1}]), "$.app"),
        (msgspec.msgpack.encode({"v": 1}), "not a [version, message] frame"),
        (
            msgspec.msgpack.encode(
                [
                    2,
                    {
                        "type": "submit",
                        "block": 1,
                        "sub": {"arrays": {}, "labels": {}, "instrs": [["h", [["Z", 0]]]]},
                    },
                ]
            ),
            "invalid message",
        ),
    ],
)
def test_bad_frames_name_the_problem(data: bytes, words: str) -> None:
    with pytest.raises(ProtocolError, match=__import__("re").escape(words)):
        codec.app_to_node().decode(data)


def _frame(msg: object) -> bytes:
    return msgspec.msgpack.encode([2, msg])


DEEP = b"\x91" * 5000 + b"\x00"  # a list in a list in a list ... 5000 levels, 5 kB


@pytest.mark.parametrize(
    "kind, data, words",
    [
        # nesting: as the whole message, and inside a field (read in one pass, the
        # message's type refuses it at its first level; a frame written otherwise is
        # walked first, and refused for its depth)
        ("app", b"\x92\x02" + DEEP, "Expected `object`, got `array`"),
        ("app", b"\x92\x02\x81\xa4type" + DEEP, "got `array` - at `$.type`"),
        ("peer", b"\x92\x02" + DEEP, "Expected `object`, got `array`"),
        ("app", b"\x92\xcc\x02" + DEEP, "nested deeper than"),
        ("peer", b"\xdc\x00\x02\x02" + DEEP, "nested deeper than"),
        # time fields: non-finite and absurd numbers
        ("app", _frame({"type": "epr", "req": 1, "remote_node": "b", "remote_app": "x",
                        "role": "create", "timeout_s": 1e300}), "$.timeout_s"),
        ("app", _frame({"type": "epr", "req": 1, "remote_node": "b", "remote_app": "x",
                        "role": "create", "timeout_s": float("nan")}), "$.timeout_s"),
        ("app", _frame({"type": "submit", "block": 1, "deadline_s": float("inf"),
                        "sub": {"arrays": {}, "instrs": [], "labels": {}}}), "$.deadline_s"),
        ("app", _frame({"type": "register", "app": "a" * 65, "qubits": 1}), "$.app"),
        ("app", _frame({"type": "register", "app": "a", "qubits": 10**9}), "$.qubits"),
        ("dev", _frame({"type": "ent", "seq": 1, "peer": "b", "key": "k", "qubit": 0,
                        "max_attempts": 1, "expires_s": 1e308}), "$.expires_s"),
        ("dev", _frame({"type": "dreq", "seq": 1, "ops": [["wait", [], float("inf")]]}),
         "$.ops[0]"),
        ("qpeer", _frame({"type": "q_att", "frm": "a", "key": "k", "qubit": 0,
                          "start_ns": float("nan"), "max_attempts": 1, "expires_s": 1.0,
                          "epoch_ns": 0}), "$.start_ns"),
        ("qpeer", _frame({"type": "q_att", "frm": "a", "key": "k", "qubit": 0,
                          "start_ns": 0.0, "max_attempts": 1, "expires_s": 1e300,
                          "epoch_ns": 0}), "$.expires_s"),
        ("peer", _frame({"type": "egp", "from_node": "a", "msg": {
            "type": "egp_req", "origin": "a", "create_id": 1, "purpose": "p", "kind": "M",
            "number": 1, "min_fidelity": 0.5, "deadline_s": float("inf"), "bases": "Z",
            "queue": None}}), "deadline_s"),
    ],
)
def test_deep_nesting_and_unbounded_numbers_are_refused(kind: str, data: bytes, words: str) -> None:
    decoder = {
        "app": codec.app_to_node(),
        "peer": codec.node_to_node(),
        "dev": codec.to_device(),
        "qpeer": codec.qdevice_peer(),
    }[kind]
    with pytest.raises(ProtocolError, match=__import__("re").escape(words)):
        decoder.decode(data)


@pytest.mark.parametrize(
    "text, words",
    [
        ("frobnicate Q0", "unknown instruction 'frobnicate'"),
        ("set R16 1", "register R16 out of range"),
        ("h Q0 Q1", "takes 1 operands, got 2"),
        ("array a 2\nstore 1 a[2]", "index 2 out of bounds"),
        ("jmp @nowhere", "label 'nowhere' is not defined"),
        ("load R0 b[0]", "array 'b' is not declared"),
        ("cnot Q1 Q1", "the same qubit appears twice"),
        ("rx Q0 R1", "expected Flt/Imm, got Reg"),
        ("set R0 99999999999999999999", "does not fit in 64 bits"),
        ("rx Q0 1e999", "angle inf is not finite"),
    ],
)
def test_validation_names_the_problem(text: str, words: str) -> None:
    with pytest.raises(ParseError, match=__import__("re").escape(words)):
        parse(text)


def test_oversized_subroutine_is_refused() -> None:
    sub = parse("set R0 1\n" * 10)
    with pytest.raises(ProgramError, match="10 instructions; limit is 5"):
        validate(sub, max_instrs=5)


def test_comments_and_blank_lines_are_ignored() -> None:
    assert parse("# hi\n\nset R0 1  # one\n") == Subroutine(
        arrays={}, instrs=parse("set R0 1").instrs, labels={}
    )
