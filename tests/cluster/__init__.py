"""Tests of runs and sweeps on clusters."""

from ..integration.helpers import werner_pair


def chsh_pair(name: str) -> str:
    """A Werner pair (fidelity 0.9) running a 32-round seeded CHSH game, 8 per batch."""
    return (
        werner_pair(name, 0.9)
        + """
[[apps]]
node = "alice"
name = "a"
module = "qnodeos.apps.chsh"
args = { role = "alice", me = "a", peer_node = "bob", peer = "b", rounds = 32, batch = 8, \
seed = 4 }
[[apps]]
node = "bob"
name = "b"
module = "qnodeos.apps.chsh"
args = { role = "bob", me = "b", peer_node = "alice", peer = "a", batch = 8, seed = 5 }
"""
    )
