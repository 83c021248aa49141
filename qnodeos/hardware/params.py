"""Parameter sets for the built-in devices, each value with its source.

Sources:
  [B]  SquidASM colour-centre config, values from arXiv 2207.10579 App. A.5 (NV);
  [I]  arXiv 2207.10579 App. A.6, SquidASM trapped-ion example config (40Ca+);
  [K]  Kalb et al., PRA 97, 062330 (2018), carbon dephasing per entanglement attempt.
Durations in ns; errors are depolarising probabilities.
"""

from __future__ import annotations

import math

from ..errors import ConfigError
from .specs import INF, DeviceSpec, MeasSpec, OpSpec, QubitKind, TwoQubitGate


def generic(qubits: int = 5) -> DeviceSpec:
    """A noiseless all-to-all device with the core gate set (set noise via overrides)."""
    gates = {g: OpSpec(duration_ns=20.0) for g in ("x", "y", "z", "h", "s", "t", "rx", "ry", "rz")}
    kind = QubitKind(
        name="qubit",
        t1_ns=INF,
        t2_ns=INF,
        init=OpSpec(duration_ns=100.0),
        gates=gates,
        meas=MeasSpec(duration_ns=100.0),
        communication=True,
    )
    two = {g: TwoQubitGate(spec=OpSpec(duration_ns=100.0)) for g in ("cnot", "cz")}
    return DeviceSpec(
        name="generic", qubits=("qubit",) * qubits, kinds={"qubit": kind}, two_qubit=two
    )


def nv(carbons: int = 2) -> DeviceSpec:
    """NV centre: electron (qubit 0; communication, the only measurable qubit) + carbons."""
    electron = QubitKind(
        name="electron",
        t1_ns=3.6e12,  # [B] electron T1
        t2_ns=5e8,  # [B] electron T2
        init=OpSpec(duration_ns=2_000, error=0.01),  # [B] electron init
        gates={g: OpSpec(duration_ns=5, error=0.01) for g in ("rx", "ry", "rz")},  # [B]
        meas=MeasSpec(duration_ns=3_700, p01=0.07, p10=0.005),  # [B] readout
        communication=True,
    )
    carbon = QubitKind(
        name="carbon",
        t1_ns=3.6e13,  # [B] carbon T1
        t2_ns=1e9,  # [B] carbon T2
        init=OpSpec(duration_ns=300_000, error=0.02),  # [B] carbon init
        gates={g: OpSpec(duration_ns=20_000, error=0.002) for g in ("rx", "ry", "rz")},  # [B]
        meas=None,  # only the electron can be read out
        # [K] Kalb et al., PRA 97, 062330 (2018): each electron entanglement attempt
        # dephases stored carbons, coherence factor exp(-(dw*tau)^2/2) with
        # dw = 2pi * 77 kHz and tau = 163 ns, i.e. about 0.9969 per attempt.
        attempt_coherence=math.exp(-((2 * math.pi * 77e3 * 163e-9) ** 2) / 2),
    )
    crot = OpSpec(duration_ns=500_000, error=0.06)  # [B] electron-carbon controlled rotation
    two = {g: TwoQubitGate(spec=crot, control="electron", target="carbon") for g in ("crx", "cry")}
    return DeviceSpec(
        name="nv",
        qubits=("electron",) + ("carbon",) * carbons,
        kinds={"electron": electron, "carbon": carbon},
        two_qubit=two,
    )


def trapped_ion(ions: int = 2) -> DeviceSpec:
    """Trapped 40Ca+ ions: individually addressed init, Z rotation and readout; X/Y
    rotations and the Molmer-Sorensen gate act on every ion at once."""
    ion = QubitKind(
        name="ion",
        t1_ns=INF,  # [I] T1 not modelled
        t2_ns=8.5e7,  # [I] T2 = 85 ms
        init=OpSpec(duration_ns=36_000),  # [I] init 36 us
        gates={"rz": OpSpec(duration_ns=26_600, error=0.02)},  # [I] 1q gate 26.6 us, 0.02
        meas=MeasSpec(duration_ns=1_500_000),  # [I] measurement 1.5 ms
        communication=True,
    )
    collective = {
        "all_rx": OpSpec(duration_ns=26_600, error=0.02),  # [I] per ion
        "all_ry": OpSpec(duration_ns=26_600, error=0.02),  # [I] per ion
        "ms": OpSpec(duration_ns=107_000, error=0.1),  # [I] two-qubit MS gate, per pair
    }
    return DeviceSpec(
        name="trapped_ion", qubits=("ion",) * ions, kinds={"ion": ion}, collective=collective
    )


DEVICES = {"generic": generic, "nv": nv, "trapped_ion": trapped_ion}


def build(kind: str, num_qubits: int | None = None) -> DeviceSpec:
    """The built-in device ``kind`` with ``num_qubits`` physical qubits in all."""
    if kind not in DEVICES:
        raise ConfigError(f"unknown device {kind!r}; known: {', '.join(DEVICES)}")
    if num_qubits is None:
        return DEVICES[kind]()
    if not 1 <= num_qubits <= 16:
        raise ConfigError(f"device {kind}: qubits = {num_qubits} not in 1..16")
    if kind == "nv":
        return nv(carbons=num_qubits - 1)
    return DEVICES[kind](num_qubits)
