"""Shared helpers: build networks from TOML text and run them in-process."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator

import numpy as np
import pytest

from qnodeos.config.network import NetworkConfig, parse_network
from qnodeos.hardware.params import build
from qnodeos.hardware.specs import DeviceSpec, with_overrides
from qnodeos.qdevice.device import QuantumDevice


def device(
    kind: str = "generic", qubits: int | None = None, seed: int = 1, **params: object
) -> QuantumDevice:
    spec: DeviceSpec = (
        with_overrides(build(kind, qubits), params) if params else build(kind, qubits)
    )
    return QuantumDevice(spec, np.random.default_rng(seed))


def network(body: str, name: str = "t") -> NetworkConfig:
    return parse_network(f'name = "{name}"\n' + body)


def within(measured: float, expected: float, shots: int, sigmas: float = 4.0) -> bool:
    """Binomial agreement: |measured - expected| <= sigmas * sqrt(p(1-p)/shots)."""
    sd = max(expected * (1 - expected), 1e-4) ** 0.5 / shots**0.5
    return abs(measured - expected) <= sigmas * sd


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(1234)


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--load",
        type=int,
        default=int(os.environ.get("QNODEOS_TEST_LOAD", "0")),
        metavar="N",
        help="run the tests beside N busy-loop processes (a busy machine: real-time runs "
        "must get slower, not fail); also QNODEOS_TEST_LOAD=N",
    )


@pytest.fixture(scope="session", autouse=True)
def busy_machine(request: pytest.FixtureRequest) -> Iterator[int]:
    """``--load N``: N processes spinning for the whole session, stopped at its end."""
    n: int = request.config.getoption("--load")
    spinners = [
        subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(n)
    ]
    try:
        yield n
    finally:
        for p in spinners:
            p.send_signal(signal.SIGKILL)
            p.wait()
