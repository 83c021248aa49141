from typing import ClassVar

from qnodeos.netlink.protocols import Action, Distill, DistilView, SwapAsap


class KeepOlder(SwapAsap):
    """Swap as soon as possible; distil the two newest pairs of a level and keep the
    older one (the built-in policy takes the two oldest and keeps the newer). Each
    choice is written down in ``chosen`` as (level, keep, target)."""

    chosen: ClassVar[list[tuple[int, int, int]]] = []

    def distil(self, pool: DistilView, now: float) -> list[Action]:
        out: list[Action] = []
        top = pool.top  # last-level rounds it may start now
        for level in range(pool.rounds):
            newest = [w.pair for w in pool.waiting if w.level == level][::-1]
            for target, keep in zip(newest[0::2], newest[1::2], strict=False):
                if level == pool.rounds - 1:
                    if top <= 0:
                        break
                    top -= 1
                self.chosen.append((level, keep, target))
                out.append(Distill(keep, target))
        return out
