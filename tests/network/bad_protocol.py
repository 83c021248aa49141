"""Network protocols with a bug, for tests: one raises on the first link pair, one
distils a pair with itself."""

from qnodeos.netlink.protocols import Action, Distill, DistilView, Half, NetworkProtocol, View


class Raises(NetworkProtocol):
    def pair_ready(self, view: View, half: Half, now: float) -> list[Action]:
        raise ZeroDivisionError("a bug in the protocol")


class SamePair(NetworkProtocol):
    def distil(self, pool: DistilView, now: float) -> list[Action]:
        return [Distill(w.pair, w.pair) for w in pool.waiting[:1]]
