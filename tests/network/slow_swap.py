"""A network protocol for tests: it holds both halves ``delay_s`` before swapping (a
repeater slowed down), so the next link round waits long for its qubit."""

from qnodeos.netlink.protocols import Action, Half, NetworkProtocol, Swap, View, Wake


class SlowSwap(NetworkProtocol):
    def __init__(self, delay_s: float) -> None:
        self.delay_s = delay_s

    def pair_ready(self, view: View, half: Half, now: float) -> list[Action]:
        return [Wake(now + self.delay_s)] if len(view.held) == 2 else []

    def timer(self, view: View, now: float) -> list[Action]:
        return [Swap()] if len(view.held) == 2 else []
