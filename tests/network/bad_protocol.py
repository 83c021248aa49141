"""A network protocol with a bug, for tests: it raises on the first link pair."""

from qnodeos.netlink.protocols import Action, Half, NetworkProtocol, View


class Raises(NetworkProtocol):
    def pair_ready(self, view: View, half: Half, now: float) -> list[Action]:
        raise ZeroDivisionError("a bug in the protocol")
