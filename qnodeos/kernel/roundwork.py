"""Device work for entanglement, sans-IO: the rounds the EGPs ask for, in order, each
given the device when the kernel lends it (between blocks: a block runs without
interleaving) and its link's time bin allows.

How it works. A round needs a free communication qubit for the app: a K pair goes into
the app's qubit ``qubits[i]``, an M pair into a scratch qubit freed after measuring. If
none is free but one is held (NV: the electron), the node first moves that state into a
free storage qubit (carbon), remapping its owner's qubit id, with the move's time and
noise; if that is impossible too, the round waits, and the request ends with NORES at
its deadline. What happens right after each herald travels with the round as recipes
(``recipes.make_recipes``, lowered to native gates): for M, each end measures its half
in the pair's basis; for K, the link's first node applies the Pauli that turns the
heralded Bell state into Phi+. A round on a link with time bins waits, while blocks
may use the device, until just before its bin (``held_until_ns``).
"""

from __future__ import annotations

import logging
import math

from ..errors import ProgramError, QuotaError
from ..lang import messages as m
from ..netlink import egp as e
from ..netlink.schedule import TimeBins, lead_ns
from .delivery import PairDelivery
from .lower import Lowering
from .moves import make_room
from .outputs import Out
from .recipes import make_recipes
from .wants import Work

log = logging.getLogger("qnodeos.netstack")

SCRATCH = -1  # virtual id of the qubit M pairs are made in (measured and reused)
K_ROUND = 64  # kept pairs per round at most (one recipe, a correction, per pair's qubit)


class RoundWork(PairDelivery):
    """The network stack's device work (``NetStack`` is one)."""

    lowering: Lowering
    bins: dict[str, TimeBins]
    held_until_ns: float
    rounds: int
    moves: int

    def next_work(
        self, seq: int, now: float, device_ns: float | None = None
    ) -> Work | None:
        """The next thing for the device (``seq`` numbers its request), or None. A Work
        whose ``request`` is None needs no device: call its ``done`` at once. With
        ``device_ns`` (blocks are waiting; the device's time now), a round on a link
        whose time bin has not begun waits (the device is free meanwhile, for blocks)
        until ``lead_ns`` before the bin (the station holds it from there to the bin);
        ``held_until_ns`` is then the earliest device time one of them may go."""
        self.held_until_ns = math.inf
        for _ in range(len(self.work)):
            w = self.work.popleft()
            if w.round is None:
                if w.stale is not None and w.stale():
                    return Work(request=None, done=w.done)  # dropped: done hears None
                return w
            sched = self.bins.get(w.peer)
            room = self.links[w.peer].model.cycle_ns  # less than one attempt left: over
            if device_ns is not None and sched:
                go = sched.window(device_ns, room)[0] - lead_ns(self.egps[w.peer].speed)
                if go > device_ns + 1000:  # 1 us: wall seconds as floats are that coarse
                    self.held_until_ns = min(self.held_until_ns, go)
                    self.work.append(w)
                    continue
            status = self._start_round(w, seq, now)
            if status == "go":
                return w
            if status == "wait":
                self.work.append(w)  # waits for a qubit; others may go first
            elif isinstance(status, Work):
                self.work.appendleft(w)  # after the move that makes room for it
                return status
        return None

    def align_bins(self, epoch_ns: int, speed: float) -> None:
        """Our device's time 0 was wall time ``epoch_ns``: count the links' time bins
        in its time as the stations do in theirs (``TimeBins.aligned``)."""
        self.bins = {
            p: lk.schedule.aligned(epoch_ns, speed)
            for p, lk in self.links.items()
            if lk.schedule
        }

    def waiting(self) -> bool:
        return bool(self.work)

    def _start_round(self, w: Work, seq: int, now: float) -> str | Work:
        """'go' (w.request set, or w.done to call), 'wait', 'drop', or a Work to run
        first (a move that frees a communication qubit)."""
        r = w.round
        assert r is not None
        want = self.wants.get(r.request)
        egp = self.egps[w.peer]
        if want is None or r.key not in egp.by_round:
            return "drop"  # the request ended meanwhile
        if not want.round_phys:
            # K: a communication qubit per pair (as many as are free, up to the round's
            # pairs); M: one scratch qubit, measured and reused for every pair.
            wanted = want.msg.qubits[r.pair : r.pair + min(r.pairs, K_ROUND)]
            if want.msg.sequential:
                wanted = want.msg.qubits[:1]
                if wanted[0] in self.memory.held(want.app.app_id):
                    # the block has not freed the previous pair's qubit yet (a circuit's
                    # repeater: its swap has not; that may take longer than a round)
                    if now >= (r.expires_s if want.sink is None else want.deadline):
                        self._abort_later(w, e.Code.NORES, f"Q{wanted[0]} was never freed")
                        return "go"
                    return "wait"
            elif want.room is not None:
                # a circuit's repeater keeps as many pairs as its qubits for the side
                # allow: the rest wait until its swaps free some
                wanted = wanted[: max(0, want.room())]
                if not wanted:
                    if now >= want.deadline:
                        self._abort_later(w, e.Code.NORES, "the circuit's qubits were never freed")
                        return "go"
                    return "wait"
            virts = [SCRATCH] if want.msg.measures() else wanted
            try:
                for virt in virts:
                    phys = self.memory.alloc_comm(want.app.app_id, virt)
                    if phys is None:
                        break
                    want.round_virt.append(virt)
                    want.round_phys.append(phys)
            except (ProgramError, QuotaError) as exc:
                self._end_round(want)
                self._abort_later(w, e.Code.NORES, str(exc))
                return "go"
            if not want.round_phys:
                move = self._make_room()
                if move is not None:
                    return move
                if now >= r.expires_s:
                    self._abort_later(w, e.Code.NORES, "no free communication qubit")
                    return "go"
                return "wait"
        self.rounds += 1
        owner = self.links[w.peer].nodes[0] == self.node
        pairs = r.pairs if want.msg.measures() else len(want.round_phys)
        recipes, plan = make_recipes(self.lowering, want.msg, r, want.round_phys, pairs, owner)
        want.round_seq = seq
        w.request = m.Entangle(
            seq=seq,
            peer=w.peer,
            key=r.key,
            qubits=want.round_phys,
            max_attempts=r.max_attempts,
            expires_s=r.expires_s,
            pairs=pairs,
            recipes=recipes,
            plan=plan,
            peer_measures=want.msg.kind == "R" and not want.msg.measures(),
        )
        log.debug(
            "round %d with %r: up to %d pair(s), %d attempt(s) at most",
            seq, w.peer, pairs, r.max_attempts,
        )  # fmt: skip
        return "go"

    def _abort_later(self, w: Work, code: e.Code, text: str) -> None:
        """The round cannot run: end its request at this end (nothing for the device)."""
        r = w.round
        assert r is not None
        w.request = None

        def done(_reply: m.DeviceReply | m.EntangleDone | None, now: float) -> list[Out]:
            return self._egp(w.peer, self.egps[w.peer].abort(r.request, code, text, now), now)

        w.done = done

    def _make_room(self) -> Work | None:
        """Move a held communication qubit's state into a free storage qubit, if the
        device can (NV: electron -> carbon); the work that does it, or None."""
        ops = make_room(self.memory, self.lowering, lambda k: k.communication)
        if ops is None:
            return None
        self.moves += 1
        return Work(request=m.DeviceRequest(seq=0, ops=ops), done=_log_error)

def _log_error(reply: m.DeviceReply | m.EntangleDone | None, _now: float) -> list[Out]:
    if isinstance(reply, m.DeviceReply) and reply.error:
        log.warning("moving a qubit's state failed: %s", reply.error)
    return []
