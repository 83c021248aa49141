"""From the link layer to the apps, sans-IO: what each link's EGP says, turned into
messages for the peer node, device work, and pairs or failures for the app (or its
block) that asked; pairs handed out go to the ledger until the app acknowledges them.

How it works. ``_egp`` is the bridge: an EGP's message for the peer goes out as an
``Egp`` message; a ``Round`` it asks for waits in ``work`` for the device (see
``roundwork``); ``Accepted`` matches a peer's request with the app listening for it;
``Ok`` is a pair, ``Err`` the end of a request. A round's reply from the quantum
process (``_round_done``) goes back to its EGP as the station's ``RoundEnd``; the EGP
answers with an ``Ok`` per herald. The pair's outcome (measured pairs) came in the
reply; the first node of the link flips it where its correction would have
anticommuted with the basis. Pairs are streamed to the app as they come and the rest
handed over when the request is complete; a pair that arrives when nobody here can
have it any more is expired at the other end.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Callable
from functools import partial

import msgspec
import numpy as np

from ..config.network import LinkConfig
from ..lang import messages as m
from ..netlink import egp as e
from ..netlink.station import RoundEnd
from ..runtime.timeline import Recorder
from .ledger import Ledger
from .memory import MemoryManager
from .outputs import Out, ToApp, ToDevice, ToNode
from .recipes import FLIPS
from .wants import Want, Work

log = logging.getLogger("qnodeos.netstack")

_NO_STATE = np.zeros((4, 4), dtype=complex)
_NO_FLIPS: dict[str, set[int]] = {"Z": set(), "X": set(), "Y": set()}


class PairDelivery:
    """The network stack's bridge from its EGPs to apps (``NetStack`` is one)."""

    node: str
    memory: MemoryManager
    links: dict[str, LinkConfig]
    egps: dict[str, e.EGP]
    wants: dict[tuple[str, int], Want]
    listening: dict[str, Want]
    work: deque[Work]
    ledger: Ledger
    timeline: Recorder | None
    to_block: Callable[[Want, m.NodeToApp], list[Out]]
    pairs_delivered: int
    now_s: float
    _outcomes: dict[int, list[int]]

    def _egp(self, peer: str, outs: list[e.Out], now: float) -> list[Out]:
        self.now_s = now
        out: list[Out] = []
        for o in outs:
            if isinstance(o, e.ToPeer):
                out.append(ToNode(peer, m.Egp(from_node=self.node, msg=o.msg)))
            elif isinstance(o, e.Round):
                done = partial(self._round_done, key=o.key, peer=peer)
                self.work.append(Work(request=None, done=done, round=o, peer=peer))
            elif isinstance(o.event, e.Accepted):
                spec = o.event.spec
                w = self.listening.pop(spec.purpose, None)
                if w is not None:
                    if w.msg.peer_bases:  # measure where the creator asks (else in Z)
                        w.msg = msgspec.structs.replace(
                            w.msg, chosen=spec.remote_chosen, rotations=spec.remote_rotations
                        )
                    if spec.kind == "R" and w.msg.kind == "K":  # a keeping receiver of R
                        w.msg = msgspec.structs.replace(w.msg, kind="R")
                    w.key = (spec.origin, spec.create_id)
                    self.wants[w.key] = w
            elif isinstance(o.event, e.Oks):
                out += self._oks(o.event, now)
            elif isinstance(o.event, e.Ok):
                out += self._ok(o.event, now)
            else:
                out += self._err(o.event)
        return out

    def _err(self, err: e.Err) -> list[Out]:
        w = self.wants.pop((err.origin, err.create_id), None)
        if w is None:
            return []
        out: list[Out] = []
        if w.round_seq >= 0:
            # Its round is still on the device: stop it there (the device answers with
            # the round's end, and pairs it made after all are expired at both ends).
            out.append(ToDevice(m.Abort(seq=w.round_seq)))
        self._end_round(w)
        rest = self._hand_out(w)  # the app has the others already
        log.info("EPR request of %r failed (%s): %s", w.app.name, err.code, err.message)
        msg = m.EprFailed(req=w.msg.req, code=str(err.code), message=err.message, pairs=rest)
        return out + self._tell(w, msg)

    def _tell(self, w: Want, msg: m.EprPairs | m.EprDone | m.EprFailed) -> list[Out]:
        """News of request ``w`` for its app, or for its block (or its circuit)."""
        if w.sink is not None:
            return w.sink(w, msg)
        if w.index >= 0:
            return self.to_block(w, msg)
        cols = m.MeasuredPairs.of(msg.pairs) if w.msg.measures() else None
        if cols is not None:  # the app's measured pairs go as columns
            msg = msgspec.structs.replace(msg, pairs=[], measured=cols)
        return [ToApp(w.app.addr, msg)]

    def _round_done(
        self, reply: m.DeviceReply | m.EntangleDone | None, now: float, *, key: str, peer: str
    ) -> list[Out]:
        """Pairs of round ``key`` on the link to ``peer``, and (if final) how it ended."""
        egp = self.egps[peer]
        r = egp.by_round.get(key)
        want = self.wants.get(r.key) if r is not None else None
        if not isinstance(reply, m.EntangleDone) or reply.error is not None:
            error = getattr(reply, "error", None) or "the device did not run the round"
            log.warning("entanglement round %s failed on the device: %s", key, error)
            if r is None:
                return []
            if want is not None:
                self._end_round(want)
            return self._egp(peer, egp.abort(r.key, e.Code.OTHER, error, now), now)
        if r is None:
            # its request ended while the round ran: its pairs are void at both ends
            seqs = [p.seq for p in reply.pairs]
            return [self._expire_at(peer, seqs, "its request ended meanwhile")] if seqs else []
        msg: RoundEnd | e.Heralds
        if want is not None and want.sink is None:
            # an app's (or its block's) pairs: the round's heralds travel as columns
            # (``_oks``), not as an ``Ok`` event per pair
            msg = e.Heralds(
                key=reply.key,
                seqs=[p.seq for p in reply.pairs],
                herald_attempts=[p.attempts for p in reply.pairs],
                at_ns=[p.at_ns for p in reply.pairs],
                bell_index=[p.bell_index for p in reply.pairs],
                outcomes=[p.outcomes for p in reply.pairs],
                attempts=reply.attempts,
                again=reply.again,
            )
        else:
            for p in reply.pairs:
                self._outcomes[p.seq] = p.outcomes
            pairs = reply.pairs
            msg = RoundEnd(
                key=reply.key,
                attempts=reply.attempts,
                at_ns=reply.at_ns,
                reason=reply.reason,
                again=reply.again,
                seqs=[p.seq for p in pairs],
                herald_attempts=[p.attempts for p in pairs],
                herald_ns=[p.at_ns for p in pairs],
                bell_index=[p.bell_index for p in pairs],
                rho=[_NO_STATE] * len(pairs),  # the state is in the quantum process
            )
        if want is not None and reply.final:
            want.round_seq = -1  # the device is done with it: nothing to abort
        out = self._egp(peer, egp.station_message(msg, now, final=reply.final), now)
        if want is not None:
            if reply.final:
                self._end_round(want)
            out += self._stream(want)
        return out

    def _stream(self, w: Want) -> list[Out]:
        """Hand the app the pairs made since the last time (its request goes on)."""
        if w.key not in self.wants or not w.pairs:
            return []
        return self._tell(w, m.EprPairs(req=w.msg.req, pairs=self._hand_out(w)))

    def _hand_out(self, w: Want) -> list[m.EprPair]:
        """The pairs made since the app last got some: the ledger tracks them now."""
        fresh, w.pairs = w.pairs, []
        if w.sink is not None:  # a circuit's link pairs: the network layer has them
            return fresh
        self.ledger.delivered(w.app.app_id, w.app.addr, w.msg.req, w.peer, fresh)
        if self.timeline is not None:
            for p in fresh:
                self.timeline.add(
                    kind="pair", app=w.app.name, peer=w.peer, id=p.ent_id[2], bell=p.bell_index,
                    goodness=p.goodness, attempts=p.attempts, herald_ns=p.at_ns,
                    kept=p.qubit >= 0, basis=p.basis, outcome=p.outcome,
                    **w.notes.pop(p.ent_id[2], {}),
                )  # fmt: skip
        self.pairs_delivered += len(fresh)
        return fresh

    def _ok(self, ok: e.Ok, now: float) -> list[Out]:
        """A pair is here (already corrected or measured by the quantum process)."""
        w = self.wants.get((ok.origin, ok.create_id))
        seq = ok.ent_id[2]
        outcomes = self._outcomes.pop(seq, [])
        peer = ok.ent_id[1] if ok.ent_id[0] == self.node else ok.ent_id[0]
        self.ledger.saw(peer, seq)
        if w is None or not w.round_phys:
            # Nobody here can have this pair (its request or app ended meanwhile).
            return [self._expire_at(peer, [seq], "it heralded after its request ended here")]
        voided = self.ledger.void_early(peer, seq)
        if voided is not None:  # the peer expired it before it came here: it is void
            self._end_round(w)
            outs = self.egps[peer].abort((ok.origin, ok.create_id), e.Code.EXPIRE, voided, now)
            echo = self._expire_at(peer, [seq], f"voided at {peer!r}'s word", echo=True)
            return [echo, *self._egp(peer, outs, now)]
        pair = m.EprPair(
            ent_id=ok.ent_id,
            bell_index=ok.bell_index,
            goodness=ok.goodness,
            attempts=ok.attempts,
            at_ns=int(ok.at_ns),
        )
        if not w.msg.measures():
            virt = w.keeps(ok.pair)
            w.kept.add(virt)
            pair = _with(pair, qubit=virt)
        elif w.msg.rotations:  # corrected to Phi+ before the rotations, at the first node
            pair = _with(pair, basis="R", outcome=outcomes[-1] if outcomes else -1)
        else:
            basis = w.msg.chosen[ok.pair] if w.msg.chosen else ok.basis
            owner = self.links[w.peer].nodes[0] == self.node
            flip = owner and ok.bell_index in FLIPS[basis]
            pair = _with(pair, basis=basis, outcome=outcomes[-1] ^ int(flip) if outcomes else -1)
        w.pairs.append(pair)
        w.made += 1
        return self._delivered(w) if w.made == w.msg.number else []

    def _oks(self, oks: e.Oks, now: float) -> list[Out]:
        """A round's pairs for one request (as ``_ok`` for each, in bulk: an app's or
        its block's pairs, when no pair of them was voided at the other end already)."""
        a, b = oks.ends
        peer = b if a == self.node else a
        w = self.wants.get((oks.origin, oks.create_id))
        if (
            w is None
            or not w.round_phys
            or w.sink is not None
            or self.ledger.any_early(peer, oks.seqs)
        ):
            out: list[Out] = []
            for ok, outcomes in zip(oks.oks(), oks.outcomes, strict=True):
                self._outcomes[ok.ent_id[2]] = list(outcomes)
                out += self._ok(ok, now)
            return out
        self.ledger.saw_all(peer, oks.seqs)
        g = oks.goodness
        cols = zip(oks.seqs, oks.bell_index, oks.attempts, oks.at_ns, oks.outcomes, strict=True)
        if not w.msg.measures():  # kept, each in its qubit (corrected to Phi+)
            virts = [w.keeps(oks.pair + i) for i in range(len(oks))]
            w.kept.update(virts)
            pairs = [
                m.EprPair(
                    ent_id=(a, b, seq), bell_index=bell, goodness=g, attempts=tries,
                    at_ns=int(at), qubit=virt,
                )  # fmt: skip
                for (seq, bell, tries, at, _), virt in zip(cols, virts, strict=True)
            ]
        elif w.msg.rotations:  # corrected to Phi+ before the rotations, at the first node
            pairs = [
                m.EprPair(
                    ent_id=(a, b, seq), bell_index=bell, goodness=g, attempts=tries,
                    at_ns=int(at), basis="R", outcome=res[-1] if res else -1,
                )  # fmt: skip
                for seq, bell, tries, at, res in cols
            ]
        else:
            chosen = w.msg.chosen
            bases = chosen[oks.pair : oks.pair + len(oks)] if chosen else oks.bases
            # the first node flips where its correction anticommuted with the basis
            flips = FLIPS if self.links[w.peer].nodes[0] == self.node else _NO_FLIPS
            pairs = [
                m.EprPair(
                    ent_id=(a, b, seq), bell_index=bell, goodness=g, attempts=tries,
                    at_ns=int(at), basis=basis,
                    outcome=res[-1] ^ (bell in flips[basis]) if res else -1,
                )  # fmt: skip
                for (seq, bell, tries, at, res), basis in zip(cols, bases, strict=True)
            ]
        w.pairs += pairs
        w.made += len(pairs)
        return self._delivered(w) if w.made == w.msg.number else []

    def _delivered(self, w: Want) -> list[Out]:
        log.info("%d pair(s) for %r with %r delivered", w.made, w.app.name, w.peer)
        if w.key is not None:
            self.wants.pop(w.key, None)
        self._end_round(w)
        return self._tell(w, m.EprDone(req=w.msg.req, pairs=self._hand_out(w)))


    def _expire_at(self, peer: str, seqs: list[int], reason: str, echo: bool = False) -> ToNode:
        self.ledger.expired_out += len(seqs)
        msg = m.EgpExpire(seqs=seqs, reason=reason, echo=echo)
        return ToNode(peer, m.Egp(from_node=self.node, msg=msg))

    def _end_round(self, w: Want) -> None:
        """The round is over: free what it allocated and got no pair (the scratch qubit
        of measured pairs, kept-pair qubits left empty)."""
        for virt in w.round_virt:
            if virt not in w.kept:
                self._free(w, virt)
        # ``kept`` is per round: a sequential request keeps every pair in one qubit, so
        # a qubit that got a pair in an earlier round may be this round's, left empty
        w.round_virt, w.round_phys, w.round_seq, w.kept = [], [], -1, set()

    def _void_pairs(self, w: Want) -> None:
        """Forget the pairs a request made but did not hand out (kept qubits freed)."""
        for p in w.pairs:
            if p.qubit >= 0:
                self._free(w, p.qubit)
        w.pairs = []

    def _free(self, w: Want, virt: int) -> None:
        if virt in self.memory.held(w.app.app_id):
            self.memory.release(w.app.app_id, virt)

def _with(pair: m.EprPair, **changes: int | str) -> m.EprPair:
    return msgspec.structs.replace(pair, **changes)
