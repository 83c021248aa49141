"""A kernel (or quantum process) that raises ends a deterministic run at once, naming the
exception (``NodeFailure``), instead of being logged and survived: the half-updated
kernel would leave apps waiting while the mock clock jumps on forever (a test reverting
two distillation fixes hung so). Real processes keep logging and going on."""

from __future__ import annotations

import re
from typing import Any

import pytest
import trio

import qnodeos
from qnodeos import sdk
from qnodeos.errors import NodeFailure
from qnodeos.facade.api import first_node_failure
from qnodeos.kernel.core import Kernel
from qnodeos.qdevice.server import QDeviceServer
from qnodeos.testbed.local import service
from tests.conftest import network
from tests.network.test_e2e_local import both, chain_text, running


async def test_a_kernel_exception_ends_a_local_network_at_once(
    autojump_clock: object, monkeypatch: pytest.MonkeyPatch
) -> None:
    """n1's kernel raises on the first message from its peer: the network ends with
    NodeFailure naming n1, the handler and the exception, in no simulated time to
    speak of, though both apps would wait a simulated hour (before, the exception was
    logged, the apps timed out after it and the test failed on EprError, not this)."""

    async def side(me: str, other: str, create: bool) -> Any:
        async with sdk.connect(me, app="app", qubits=1) as conn:
            epr = conn.epr_socket(other, "app")
            if create:
                return await epr.create_measure(5, bases="Z", timeout=3600.0)
            return await epr.recv_measure(5, timeout=3600.0)

    began = trio.current_time()
    with pytest.raises(BaseException) as caught:  # noqa: PT011 (the group is unwrapped below)
        async with running(network(chain_text([0.9]), name="kernel-fails"), monkeypatch) as eps:
            kernel = service(eps["n1"]).kernel

            def peer_message(*args: object) -> list[object]:
                raise RuntimeError("boom (test)")

            monkeypatch.setattr(kernel, "peer_message", peer_message)
            await both(lambda: side("n0", "n1", True), lambda: side("n1", "n0", False))
    failure = first_node_failure(caught.value)
    assert failure is not None, repr(caught.value)
    assert str(failure) == "node 'n1': kernel failed in peer_message: RuntimeError: boom (test)"
    assert isinstance(failure.__cause__, RuntimeError)
    assert trio.current_time() - began < 5.0


def test_network_run_raises_the_kernel_failure_itself(monkeypatch: pytest.MonkeyPatch) -> None:
    """``Network.run(deterministic=True)`` raises the NodeFailure as itself (not in
    trio's nested exception groups), with the kernel's exception as its cause."""
    real = Kernel.peer_message

    def peer_message(self: Kernel, *args: Any) -> Any:
        if self.node == "bob":
            raise ValueError("bad state (test)")
        return real(self, *args)

    monkeypatch.setattr(Kernel, "peer_message", peer_message)
    with pytest.raises(NodeFailure, match=re.escape(
        "node 'bob': kernel failed in peer_message: ValueError: bad state (test)"
    )) as caught:  # fmt: skip
        qnodeos.Network.shipped("default").run(deterministic=True)
    assert isinstance(caught.value.__cause__, ValueError)


def test_a_quantum_process_exception_ends_the_run_naming_the_node(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The in-process quantum process's exception (which ended the run before, but as
    a bare exception inside trio's groups) is a NodeFailure naming its node."""
    real = QDeviceServer.handle

    def handle(self: QDeviceServer, *args: Any) -> Any:
        if self.cfg.name == "alice":
            raise RuntimeError("device bug (test)")
        return real(self, *args)

    monkeypatch.setattr(QDeviceServer, "handle", handle)
    with pytest.raises(NodeFailure, match=re.escape(
        "node 'alice': quantum process failed: RuntimeError: device bug (test)"
    )):  # fmt: skip
        qnodeos.Network.shipped("default").run(deterministic=True)
