"""Distillation policies of one's own, for tests/network/test_distill_link.py (named in
its network files by import path)."""

from __future__ import annotations

from typing import ClassVar

from qnodeos.netlink.protocols import Action, Distill, DistilView, SwapAsap


class KeepOlder(SwapAsap):
    """At each level, distil the two newest pairs and keep the older one (the built-in
    policy takes the two oldest and keeps the newer). Every choice is written down in
    ``chosen`` as (level, keep, target)."""

    chosen: ClassVar[list[tuple[int, int, int]]] = []

    def distil(self, pool: DistilView, now: float) -> list[Action]:
        out: list[Action] = []
        top = pool.top
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


class SamePair(SwapAsap):
    """A wrong policy: distils a pair with itself."""

    def distil(self, pool: DistilView, now: float) -> list[Action]:
        return [Distill(w.pair, w.pair) for w in pool.waiting[:1]]
