"""The SquidASM-style programs and script the tests run (written after SquidASM's
documented tutorial, not copied from it): teleportation, QKD, the CHSH game and a
distributed CNOT, a ``run_simulation.py`` that runs them all on the network of the
config file it is given, and a generic and an NV ``config.yaml``. The tests write
them into a folder and run it with ``qnodeos squidasm``."""

APPLICATION = r'''"""SquidASM-style programs (after its tutorial): teleportation, QKD,
the CHSH game and a distributed CNOT, each a pair of Program classes."""

import math
import random

from netqasm.sdk import Qubit
from netqasm.sdk.classical_communication.message import StructuredMessage
from netqasm.sdk.toolbox.state_prep import set_qubit_state

from pydynaa import EventExpression  # noqa: F401 (as SquidASM programs import it)
from squidasm.sim.stack.common import LogManager
from squidasm.sim.stack.program import Program, ProgramContext, ProgramMeta
from squidasm.util import get_qubit_state, get_reference_state
from squidasm.util.routines import distributed_CNOT_control, distributed_CNOT_target


def meta(name, peer, qubits=2):
    return ProgramMeta(name=name, csockets=[peer], epr_sockets=[peer], max_qubits=qubits)


class TeleportSender(Program):
    PEER = "Bob"

    def __init__(self, phi, theta):
        self.phi, self.theta = phi, theta
        self.logger = LogManager.get_stack_logger(self.__class__.__name__)

    @property
    def meta(self):
        return meta("teleport_sender", self.PEER)

    def run(self, context: ProgramContext):
        csocket = context.csockets[self.PEER]
        epr_socket = context.epr_sockets[self.PEER]
        connection = context.connection
        q = Qubit(connection)
        set_qubit_state(q, self.phi, self.theta)
        epr = epr_socket.create_keep()[0]
        q.cnot(epr)
        q.H()
        m1 = q.measure()
        m2 = epr.measure()
        yield from connection.flush()
        m1, m2 = int(m1), int(m2)
        self.logger.info(f"corrections {m1} {m2}")
        csocket.send_structured(StructuredMessage("Corrections", f"{m1},{m2}"))
        return {"m1": m1, "m2": m2}


class TeleportReceiver(Program):
    PEER = "Alice"

    def __init__(self, phi, theta):
        self.phi, self.theta = phi, theta

    @property
    def meta(self):
        return meta("teleport_receiver", self.PEER)

    def run(self, context: ProgramContext):
        csocket = context.csockets[self.PEER]
        epr_socket = context.epr_sockets[self.PEER]
        connection = context.connection
        epr = epr_socket.recv_keep()[0]
        yield from connection.flush()
        msg = yield from csocket.recv_structured()
        m1, m2 = msg.payload.split(",")
        if int(m2) == 1:
            epr.X()
        if int(m1) == 1:
            epr.Z()
        yield from connection.flush()
        final_dm = get_qubit_state(epr, "Bob")
        original_dm = get_reference_state(self.phi, self.theta)
        fidelity = float((original_dm @ final_dm).trace().real)
        return {"final_dm": final_dm, "fidelity": fidelity}


class QkdProgram(Program):
    def __init__(self, peer, num_epr, seed, init):
        self.peer, self.num_epr, self.init = peer, num_epr, init
        self.rng = random.Random(seed)

    @property
    def meta(self):
        return ProgramMeta(name="qkd", csockets=[self.peer], epr_sockets=[self.peer],
                           max_qubits=1)

    def run(self, context: ProgramContext):
        conn = context.connection
        epr_socket = context.epr_sockets[self.peer]
        csocket = context.csockets[self.peer]
        bases, outcomes = [], []
        for _ in range(self.num_epr):
            basis = self.rng.randint(0, 1)
            q = (epr_socket.create_keep(1) if self.init else epr_socket.recv_keep(1))[0]
            if basis == 1:
                q.H()
            m = q.measure()
            yield from conn.flush()
            bases.append(basis)
            outcomes.append(int(m))
        if self.init:
            csocket.send_structured(StructuredMessage("Bases", bases))
            remote = (yield from csocket.recv_structured()).payload
        else:
            remote = (yield from csocket.recv_structured()).payload
            csocket.send_structured(StructuredMessage("Bases", bases))
        same = [i for i, (a, b) in enumerate(zip(bases, remote)) if a == b]
        return {"outcomes": outcomes, "same": same}


class ChshAlice(Program):
    PEER = "Bob"

    def __init__(self, seed):
        self.rng = random.Random(seed)

    @property
    def meta(self):
        return meta("alice_program", self.PEER)

    def run(self, context: ProgramContext):
        epr_socket = context.epr_sockets[self.PEER]
        connection = context.connection
        x = self.rng.randint(0, 1)
        epr = epr_socket.create_keep()[0]
        yield from connection.flush()
        if x == 1:
            epr.H()
        a = epr.measure()
        yield from connection.flush()
        return {"x": x, "a": int(a)}


class ChshBob(Program):
    PEER = "Alice"

    def __init__(self, seed):
        self.rng = random.Random(seed)

    @property
    def meta(self):
        return meta("bob_program", self.PEER)

    def run(self, context: ProgramContext):
        epr_socket = context.epr_sockets[self.PEER]
        connection = context.connection
        y = self.rng.randint(0, 1)
        epr = epr_socket.recv_keep()[0]
        yield from connection.flush()
        epr.rot_Y(angle=-math.pi / 4 if y == 0 else math.pi / 4)
        b = epr.measure()
        yield from connection.flush()
        return {"y": y, "b": int(b)}


class CnotController(Program):
    PEER = "Bob"

    def __init__(self, phi, theta):
        self.phi, self.theta = phi, theta

    @property
    def meta(self):
        return meta("controller", self.PEER)

    def run(self, context: ProgramContext):
        ctrl = Qubit(context.connection)
        set_qubit_state(ctrl, self.phi, self.theta)
        yield from distributed_CNOT_control(context, peer_name=self.PEER, ctrl_qubit=ctrl)
        return {"final_dm": get_qubit_state(ctrl, "Alice")}


class CnotTarget(Program):
    PEER = "Alice"

    def __init__(self, phi, theta):
        self.phi, self.theta = phi, theta

    @property
    def meta(self):
        return meta("target", self.PEER)

    def run(self, context: ProgramContext):
        target = Qubit(context.connection)
        set_qubit_state(target, self.phi, self.theta)
        yield from distributed_CNOT_target(context, peer_name=self.PEER, target_qubit=target)
        return {"final_dm": get_qubit_state(target, "Bob")}
'''

RUN_SIMULATION = r'''import json
import math
import sys

import numpy
from application import (
    ChshAlice, ChshBob, CnotController, CnotTarget, QkdProgram, TeleportReceiver,
    TeleportSender,
)

from squidasm.run.stack.config import StackNetworkConfig
from squidasm.run.stack.run import run

cfg = StackNetworkConfig.from_file(sys.argv[1])
n_chsh, n_qkd = int(sys.argv[2]), int(sys.argv[3])


def plain(x):
    if isinstance(x, numpy.ndarray):
        return [[[complex(z).real, complex(z).imag] for z in row] for row in x.tolist()]
    if isinstance(x, dict):
        return {k: plain(v) for k, v in x.items()}
    if isinstance(x, list):
        return [plain(v) for v in x]
    return x


out = {}
phi, theta = 0.7, 1.1
alice, bob = run(config=cfg, programs={"Alice": TeleportSender(phi, theta),
                                       "Bob": TeleportReceiver(phi, theta)}, num_times=3)
out["teleport"] = [alice, bob]
alice, bob = run(config=cfg, programs={"Alice": QkdProgram("Bob", n_qkd, 1, True),
                                       "Bob": QkdProgram("Alice", n_qkd, 2, False)})
out["qkd"] = [alice, bob]
alice, bob = run(config=cfg, programs={"Alice": ChshAlice(3), "Bob": ChshBob(4)},
                 num_times=n_chsh)
out["chsh"] = [alice, bob]
alice, bob = run(config=cfg, programs={"Alice": CnotController(0.0, math.pi),
                                       "Bob": CnotTarget(0.0, 0.0)}, num_times=2)
out["cnot"] = [alice, bob]
print(json.dumps(plain(out)))
'''

GENERIC_YAML = r'''stacks:
  - name: Alice
    qdevice_typ: generic
    qdevice_cfg:
      T1: 0
      T2: 0
      single_qubit_gate_depolar_prob: 0.0
      two_qubit_gate_depolar_prob: 0.0
  - name: Bob
    qdevice_typ: generic
    qdevice_cfg:
      T1: 0
      T2: 0
      two_qubit_gate_depolar_prob: 0.0
links:
  - stack1: Alice
    stack2: Bob
    typ: depolarise
    cfg:
      fidelity: 0.9
      t_cycle: 10.
      prob_success: 0.5
clinks:
  - stack1: Alice
    stack2: Bob
    typ: default
    cfg:
      delay: 1000
'''

NV_YAML = r'''nv_cfg: &nv_cfg
  num_qubits: 3
  electron_init_depolar_prob: 0
  electron_single_qubit_depolar_prob: 0
  prob_error_0: 0
  prob_error_1: 0
  carbon_init_depolar_prob: 0
  carbon_z_rot_depolar_prob: 0
  ec_gate_depolar_prob: 0
  electron_T1: 0
  electron_T2: 0
  carbon_T1: 0
  carbon_T2: 0
stacks:
  - name: Alice
    qdevice_typ: nv
    qdevice_cfg:
      <<: *nv_cfg
  - name: Bob
    qdevice_typ: nv
    qdevice_cfg:
      <<: *nv_cfg
links:
  - stack1: Alice
    stack2: Bob
    typ: depolarise
    cfg:
      fidelity: 0.9
      t_cycle: 10.
      prob_success: 0.5
'''

FILES = {
    "application.py": APPLICATION,
    "run_simulation.py": RUN_SIMULATION,
    "generic.yaml": GENERIC_YAML,
    "nv.yaml": NV_YAML,
}
