"""``squidasm.util`` on qnodeos: network configs for two nodes and complete graphs,
and reading states in simulation (``get_qubit_state``, ``get_reference_state``)."""

from __future__ import annotations

import itertools
from typing import Any

import numpy as np
from numpy.typing import NDArray

from ..netqasm.sim_states import qubit_from
from .config import (
    CLinkConfig,
    DefaultCLinkConfig,
    DepolariseLinkConfig,
    GenericQDeviceConfig,
    LinkConfig,
    StackConfig,
    StackNetworkConfig,
)
from .stack import SquidConnection

__all__ = [
    "create_complete_graph_network",
    "create_two_node_network",
    "get_qubit_state",
    "get_reference_state",
]


def create_two_node_network(
    node_names: list[str] | None = None,
    link_noise: float = 0,
    qdevice_noise: float = 0,
    clink_delay: float = 0.0,
    link_delay: float = 0.0,
) -> StackNetworkConfig:
    """Two generic stacks (default Alice and Bob): a depolarising link of fidelity
    1 - 3/4 ``link_noise`` that always succeeds in ``link_delay`` ns, gates with
    depolarising probability ``qdevice_noise``, classical delay ``clink_delay`` ns."""
    names = ["Alice", "Bob"] if node_names is None else list(node_names)
    if len(names) != 2:
        raise ValueError(f"create_two_node_network takes two node names, got {names!r}")
    dev = GenericQDeviceConfig.perfect_config()
    dev.single_qubit_gate_depolar_prob = qdevice_noise
    dev.two_qubit_gate_depolar_prob = qdevice_noise
    link = DepolariseLinkConfig(
        fidelity=1 - link_noise * 3 / 4, t_cycle=link_delay, prob_success=1
    )
    return StackNetworkConfig(
        stacks=[StackConfig(name=n, qdevice_typ="generic", qdevice_cfg=dev) for n in names],
        links=[LinkConfig(stack1=names[0], stack2=names[1], typ="depolarise", cfg=link)],
        clinks=[
            CLinkConfig(
                stack1=names[0], stack2=names[1], typ="default",
                cfg=DefaultCLinkConfig(delay=clink_delay),
            )
        ],
    )  # fmt: skip


def create_complete_graph_network(
    node_names: list[str],
    link_typ: str,
    link_cfg: Any,
    clink_typ: str = "instant",
    clink_cfg: Any = None,
    qdevice_typ: str = "generic",
    qdevice_cfg: Any = None,
) -> StackNetworkConfig:
    """A link and a classical link between every two of ``node_names``."""
    if not node_names:
        raise ValueError("create_complete_graph_network needs at least one node name")
    dev = GenericQDeviceConfig.perfect_config() if qdevice_cfg is None else qdevice_cfg
    net = StackNetworkConfig(
        stacks=[StackConfig(name=n, qdevice_typ=qdevice_typ, qdevice_cfg=dev) for n in node_names],
        links=[],
        clinks=[],
    )
    assert net.clinks is not None
    for a, b in itertools.combinations(node_names, 2):
        net.links.append(LinkConfig(stack1=a, stack2=b, typ=link_typ, cfg=link_cfg))
        net.clinks.append(CLinkConfig(stack1=a, stack2=b, typ=clink_typ, cfg=clink_cfg))
    return net


def get_qubit_state(q: Any, node_name: str | None = None, full_state: bool = False) -> Any:
    """The density matrix of the program's qubit ``q`` now (simulation only; flush
    first): its own 2x2 state, or with ``full_state`` the joint state of every qubit
    it shares a state with (ordered by node name, then physical qubit)."""
    conn = getattr(q, "_conn", None)
    if not isinstance(conn, SquidConnection):
        raise TypeError(f"get_qubit_state takes a qubit of a running program, not {q!r}")
    bridge = conn._bridge
    return bridge.call(bridge.node.state, int(q.qubit_id), bool(full_state))


def get_reference_state(phi: float, theta: float) -> NDArray[np.complex128]:
    """The density matrix of cos(theta/2)|0> + e^(i phi) sin(theta/2)|1>."""
    return qubit_from(phi, theta).dm
