"""Which delivered pairs both apps really have: the node's half of "a pair reaches both
apps or neither" once pairs have left the link layer (sans-IO).

How it works. A herald reaches both nodes, and each node hands the pair to its app. From
then on either side can fail before the other's app has it: an app killed before it read
its pairs, a node that dies. So a node keeps, per link, every pair it handed to an app:

- until its own app *acknowledges* it (``EprAck``, sent by the SDK on receipt): if the
  app goes away first, the pair is expired at the other end (``EgpExpire``);
- until the other node *confirms* that its app acknowledged it (``EgpConfirm``): if the
  other node goes away or expires the pair first, our app is told the pair is void
  (``EprExpired``).

Every pair either ends acknowledged and confirmed at both ends, or void at both ends.
An expiry from the other end wins even over its own earlier confirmation: it confirmed
its app's pair, then voided it for want of ours (it lost contact with us meanwhile).
Confirmations or expiries about pairs this node has not handed out yet (the two nodes
process a herald at different moments) are kept until it does.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, field

import msgspec

from ..lang import messages as m
from .outputs import Out, ToApp, ToNode

EntId = tuple[str, str, int]
MAX_OPEN = 200_000  # pairs per link awaiting the other end's confirmation
MAX_EARLY = 10_000  # confirmations/expiries per link about pairs not handed out yet
EARLY_WINDOW = 8192  # how far past the last pair heralded here an early word may be


class _Held(msgspec.Struct, gc=False):
    """A pair our app holds (or was sent), awaiting the other end's confirmation. Not
    tracked by the cyclic garbage collector (its fields are numbers, bytes and a tuple
    of those: it can be in no cycle): a ledger holds up to ``MAX_OPEN`` of them per
    link, and the collector walking them all again and again cost more than making them
    (0.85 of 1.4 us per pair handed out, 200,000 pairs)."""

    app_id: int
    addr: bytes
    req: int
    ent_id: EntId
    acked: bool = False  # our app has it
    confirmed: bool = False  # the other end's app has it


@dataclass
class _Delivery:
    peer: str
    addr: bytes
    ents: list[EntId] = field(default_factory=list)  # in the order the app got them
    acked: int = 0


class Ledger:
    def __init__(self, node: str) -> None:
        self.node = node
        self.open: dict[str, OrderedDict[int, _Held]] = {}  # peer -> seq -> pair
        # every pair handed out lately, confirmed or not: the other end may still void
        # one it confirmed itself (it never had our confirmation), and its word wins
        self.handed: dict[str, OrderedDict[int, _Held]] = {}
        self.deliveries: dict[tuple[int, int], _Delivery] = {}  # (app, req) -> pairs
        self.early_confirms: dict[str, OrderedDict[int, None]] = {}
        self.early_expires: dict[str, OrderedDict[int, str]] = {}
        self.highest: dict[str, int] = {}  # peer -> highest station number heralded here
        self.gaps: dict[str, OrderedDict[int, None]] = {}  # numbers below it that did not
        self.expired_out = 0  # pairs we told the other end to expire
        self.expired_in = 0  # pairs the other end (or its absence) voided here
        self.evicted = 0

    # -- handing pairs to apps -----------------------------------------------------------
    def delivered(
        self, app_id: int, addr: bytes, req: int, peer: str, pairs: list[m.EprPair]
    ) -> None:
        """Pairs of request ``req`` were sent to the app."""
        book = self.open.setdefault(peer, OrderedDict())
        handed = self.handed.setdefault(peer, OrderedDict())
        d = self.deliveries.setdefault((app_id, req), _Delivery(peer, addr))
        early = self.early_confirms.get(peer)
        ents = [p.ent_id for p in pairs]
        d.ents += ents
        for ent in ents:
            seq = ent[2]
            held = handed[seq] = _Held(app_id, addr, req, ent)
            if early and seq in early:
                del early[seq]  # the other app has it already
                held.confirmed = True
                continue
            book[seq] = held
        while len(book) > MAX_OPEN:
            book.popitem(last=False)
            self.evicted += 1
        while len(handed) > MAX_OPEN:
            handed.popitem(last=False)

    def saw(self, peer: str, seq: int) -> None:
        """Pair ``seq`` of the link with ``peer`` heralded here. Every herald of a link
        reaches both its nodes, in order: numbers skipped are remembered (the last
        ``MAX_EARLY``), as pairs that never heralded here."""
        top = self.highest.get(peer, -1)
        gaps = self.gaps.setdefault(peer, OrderedDict())
        if seq > top:
            for skipped in range(max(top + 1, seq - MAX_EARLY), seq):
                gaps[skipped] = None
            while len(gaps) > MAX_EARLY:
                gaps.popitem(last=False)
            self.highest[peer] = seq
        else:
            gaps.pop(seq, None)

    def saw_all(self, peer: str, seqs: Sequence[int]) -> None:
        """``saw`` for each of ``seqs``, in order (at once if they follow the highest)."""
        top = self.highest.get(peer, -1)
        if seqs and seqs[0] == top + 1 and list(seqs) == list(range(top + 1, top + 1 + len(seqs))):
            self.gaps.setdefault(peer, OrderedDict())
            self.highest[peer] = seqs[-1]
            return
        for seq in seqs:
            self.saw(peer, seq)

    def may_come(self, peer: str, seq: int) -> bool:
        """Whether pair ``seq`` may still herald here: the other end may hear of a
        pair before this node does, but not of one far beyond the last it heralded."""
        return seq <= self.highest.get(peer, -1) + EARLY_WINDOW

    def void_early(self, peer: str, seq: int) -> str | None:
        """Whether the other end already expired pair ``seq`` (its reason), before this
        node handed it out: then it must not be handed out."""
        early = self.early_expires.get(peer)
        return None if early is None else early.pop(seq, None)

    def any_early(self, peer: str, seqs: Sequence[int]) -> bool:
        """Whether the other end already expired any of ``seqs`` (see ``void_early``)."""
        early = self.early_expires.get(peer)
        if not early:
            return False
        return any(seq in early for seq in seqs)

    # -- our app's acknowledgements ------------------------------------------------------
    def acked(self, app_id: int, req: int, count: int) -> list[Out]:
        """The app has the first ``count`` pairs of ``req``: confirm them to the peer,
        and tell the app which of them are settled (the other end confirmed them)."""
        d = self.deliveries.get((app_id, req))
        if d is None:
            return []
        fresh = d.ents[d.acked : count]
        d.acked = max(d.acked, min(count, len(d.ents)))
        if d.acked >= len(d.ents):
            del self.deliveries[(app_id, req)]
        if not fresh:
            return []
        handed = self.handed.get(d.peer, OrderedDict())
        settled: list[EntId] = []
        for ent in fresh:
            held = handed.get(ent[2])
            if held is not None:
                held.acked = True
                if held.confirmed:
                    settled.append(ent)
        seqs = [e[2] for e in fresh]
        out: list[Out] = [ToNode(d.peer, m.Egp(from_node=self.node, msg=m.EgpConfirm(seqs=seqs)))]
        return out + _settled({(d.addr, req): settled} if settled else {})

    def app_gone(self, app_id: int, reason: str) -> tuple[dict[str, list[int]], list[Out]]:
        """The app ended: the pairs it never acknowledged, per peer, to expire there; and
        what to tell the app itself, which may still read them from its socket (it was
        paused, say) before it learns its session ended: they are void."""
        void: dict[str, list[int]] = {}
        told: list[Out] = []
        for (a, req), d in list(self.deliveries.items()):
            if a != app_id:
                continue
            del self.deliveries[(a, req)]
            book = self.open.get(d.peer, OrderedDict())
            unacked = d.ents[d.acked :]
            for ent in unacked:
                book.pop(ent[2], None)
                void.setdefault(d.peer, []).append(ent[2])
            if unacked:
                told.append(ToApp(d.addr, m.EprExpired(req=req, ent_ids=unacked, reason=reason)))
        for books in (self.open, self.handed):  # nothing more to tell the app
            for book in books.values():
                for seq in [s for s, h in book.items() if h.app_id == app_id]:
                    del book[seq]
        return void, told

    def dropped(self, app_id: int, req: int) -> dict[str, list[int]]:
        """The app's request ``req`` went nowhere (the block that asked failed): the
        pairs it never acknowledged, per peer, to expire there."""
        d = self.deliveries.pop((app_id, req), None)
        if d is None:
            return {}
        unacked = [e[2] for e in d.ents[d.acked :]]
        for books in (self.open, self.handed):
            book = books.get(d.peer, OrderedDict())
            for seq in unacked:
                book.pop(seq, None)
        return {d.peer: unacked} if unacked else {}

    # -- the other node ------------------------------------------------------------------
    def confirmed(self, peer: str, seqs: list[int]) -> tuple[list[Out], list[int]]:
        """The other end's app has these pairs: ours may keep them whatever happens.
        Those our app acknowledged already are settled: tell it (only after its own
        acknowledgement, so that its settled pairs were confirmed to the other end).
        Also returns the pairs that never heralded here though later ones did: the
        other end cannot keep them (a herald it got was forged)."""
        book = self.open.get(peer, OrderedDict())
        handed = self.handed.get(peer, OrderedDict())
        gaps = self.gaps.get(peer, OrderedDict())
        settled: dict[tuple[bytes, int], list[EntId]] = {}
        unknown: list[int] = []
        for seq in seqs:
            held = book.pop(seq, None)
            if held is None and seq in handed:
                continue  # settled already, or confirmed on handing out
            if held is None and seq in gaps:
                unknown.append(seq)  # later pairs heralded here, this one never did
                continue
            if held is None:
                self.confirmed_early(peer, [seq])
                continue
            held.confirmed = True
            if held.acked:
                settled.setdefault((held.addr, held.req), []).append(held.ent_id)
        return _settled(settled), unknown

    def confirmed_early(self, peer: str, seqs: list[int]) -> None:
        """The other end confirmed these pairs before this node handed them out."""
        early = self.early_confirms.setdefault(peer, OrderedDict())
        for seq in seqs:
            early[seq] = None
        while len(early) > MAX_EARLY:
            early.popitem(last=False)

    def expired(self, peer: str, seqs: list[int], reason: str) -> tuple[list[Out], list[int]]:
        """The other end voided these pairs: tell our apps that have them; returns what
        to send and the seqs not handed out here (yet)."""
        book = self.open.get(peer, OrderedDict())
        handed = self.handed.get(peer, OrderedDict())
        void: dict[tuple[int, bytes, int], list[EntId]] = {}
        missing = []
        for seq in seqs:
            book.pop(seq, None)
            held = handed.pop(seq, None)
            if held is None:
                missing.append(seq)
                continue
            void.setdefault((held.app_id, held.addr, held.req), []).append(held.ent_id)
        return self._tell(void, reason), missing

    def remember_expired(self, peer: str, seqs: list[int], reason: str) -> None:
        early = self.early_expires.setdefault(peer, OrderedDict())
        for seq in seqs:
            early[seq] = reason
        while len(early) > MAX_EARLY:
            early.popitem(last=False)

    def peer_down(self, peer: str, reason: str) -> tuple[list[Out], list[int]]:
        """The other node is gone: every pair it never confirmed is void here. Returns
        what to tell our apps, and those pairs' seqs (to void at the other end too)."""
        book = self.open.pop(peer, OrderedDict())
        handed = self.handed.get(peer, OrderedDict())
        void: dict[tuple[int, bytes, int], list[EntId]] = {}
        for seq, held in book.items():
            handed.pop(seq, None)  # told now: not again if the other end voids it too
            void.setdefault((held.app_id, held.addr, held.req), []).append(held.ent_id)
        self.early_confirms.pop(peer, None)
        return self._tell(void, reason), list(book)

    def _tell(self, void: dict[tuple[int, bytes, int], list[EntId]], reason: str) -> list[Out]:
        out: list[Out] = []
        for (_app, addr, req), ids in void.items():
            self.expired_in += len(ids)
            out.append(ToApp(addr, m.EprExpired(req=req, ent_ids=ids, reason=reason)))
        return out


def _settled(settled: dict[tuple[bytes, int], list[EntId]]) -> list[Out]:
    return [
        ToApp(addr, m.EprConfirmed(req=req, ent_ids=ids)) for (addr, req), ids in settled.items()
    ]
