from qnodeos.netlink.protocols import Action, Discard, Half, NetworkProtocol, Swap, View, Wake


class YoungSwap(NetworkProtocol):
    """Swap only when both halves are younger than ``max_age_s``; a half that gets
    older while it waits for its partner is discarded (its link makes another)."""

    def __init__(self, max_age_s: float) -> None:
        self.max_age_s = max_age_s

    def pair_ready(self, view: View, half: Half, now: float) -> list[Action]:
        old = [h.side for h in view.held.values() if now - h.ready_s >= self.max_age_s]
        if old:
            return [Discard(side) for side in old]
        if len(view.held) == 2:
            return [Swap()]
        return [Wake(half.ready_s + self.max_age_s)]  # check it again when it is too old

    def timer(self, view: View, now: float) -> list[Action]:
        if len(view.held) == 2:
            return []  # swapping already
        return [Discard(h.side) for h in view.held.values() if now - h.ready_s >= self.max_age_s]
