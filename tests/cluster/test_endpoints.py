"""A node binds one address and is dialled at another: ``peer_bind``/``qpeer_bind``
beside ``peer_endpoint``/``qpeer_endpoint``; a wildcard address is refused where peers
would dial it; ``host`` names where ``--cluster`` runs a node."""

from __future__ import annotations

import pytest

from qnodeos.config.network import NodeConfig, parse_network
from qnodeos.errors import ConfigError


def node(body: str) -> NodeConfig:
    return parse_network(f'name = "x"\n[nodes.a]\n{body}\n').nodes["a"]


def test_a_node_binds_its_endpoint_unless_told_otherwise() -> None:
    n = node('peer_endpoint = "tcp://10.1.2.3:7001"\nqpeer_endpoint = "tcp://10.1.2.3:7002"')
    assert (n.bind_peer, n.bind_qpeer) == ("tcp://10.1.2.3:7001", "tcp://10.1.2.3:7002")
    assert n.host is None


def test_bind_and_advertised_addresses_are_separate() -> None:
    n = node(
        'peer_endpoint = "tcp://gw.example:31001"\npeer_bind = "tcp://0.0.0.0:7001"\n'
        'qpeer_endpoint = "tcp://gw.example:31002"\nqpeer_bind = "tcp://*:7002"\nhost = "h2"'
    )
    assert n.peer_endpoint == "tcp://gw.example:31001" and n.bind_peer == "tcp://0.0.0.0:7001"
    assert n.qpeer_endpoint == "tcp://gw.example:31002" and n.bind_qpeer == "tcp://*:7002"
    assert n.host == "h2"


@pytest.mark.parametrize("wild", ["0.0.0.0", "*", "[::]"])
def test_a_wildcard_endpoint_that_peers_would_dial_is_refused(wild: str) -> None:
    with pytest.raises(ConfigError, match=r"nodes\.a\.peer_endpoint: .* set peer_bind"):
        node(f'peer_endpoint = "tcp://{wild}:7001"')
    with pytest.raises(ConfigError, match=r"nodes\.a\.qpeer_endpoint: .* set qpeer_bind"):
        node(f'qpeer_endpoint = "tcp://{wild}:7001"')


def test_a_bind_of_another_transport_than_its_endpoint_is_refused() -> None:
    with pytest.raises(ConfigError, match=r"peer_bind: 'tcp://\*:1' needs a peer_endpoint"):
        node('peer_bind = "tcp://*:1"')  # the default endpoint is ipc
    with pytest.raises(ConfigError, match="qpeer_bind"):
        node('qpeer_endpoint = "ipc:///tmp/q.sock"\nqpeer_bind = "tcp://*:1"')
