"""Where state lives: which state groups this quantum process holds for other nodes,
which of its own qubits' groups are elsewhere, and moving groups in and out (sans-IO).

Qubits that are entangled share one density matrix (a group), and a group lives in
exactly one quantum process. Here, a slot of the register beyond the device's own
qubits stands for another node's qubit whose group is here (a *ghost*); an own qubit
whose group is in another process is *away* (with the node believed to hold it). A group
that leaves (``give``) is encoded as a ``QGroup``; one that comes (``arrive``) is checked
and installed; ``homeless`` finds groups left holding only one other node's qubits, which
go home. A qubit whose group was held by a process that died is *lost*: ops that need
its state fail, saying so; initialising it starts it over.

Custody. Identity is not permission: a node may move only state it was given. When an
own qubit's state leaves (``give``, or a kept pair's half staying in the station's
process) its owner draws a secret *custody token* for it; the token travels with the
state (a ghost keeps it) and must come back with it: a group containing one of our
qubits is taken only with that qubit's current token, and only if it holds one of our
away qubits at all (a group of other nodes' qubits alone is never pushed to us), so
nobody who never held a state can read it (see ``QDeviceServer._pull``) or push one in
its place, and ghosts here are bounded by our own qubits.
"""

from __future__ import annotations

import hmac
import secrets
from collections import OrderedDict
from collections.abc import Callable, Iterable

import numpy as np

from ..lang import messages as m
from .device import QuantumDevice
from .physics import Matrix

MAX_DROPPED = 4096  # other nodes' qubits whose group we sent was dropped, remembered
MAX_GROUP = 8  # qubits in a group that may cross processes (16 * 4**8 bytes: 1 MiB)


def new_token() -> bytes:
    """A custody token: unpredictable (never from a configured seed)."""
    return secrets.token_bytes(8)


class Groups:
    def __init__(
        self, me: str, device: QuantumDevice, token: Callable[[], bytes] = new_token
    ) -> None:
        self.me = me
        self.device = device
        self.n = device.spec.num_qubits
        self.new_token = token
        self.custody: dict[int, bytes] = {}  # own qubit away -> the token it left with
        self.tokens: dict[m.GlobalQubit, bytes] = {}  # ghost -> its owner's token
        self.away: dict[int, str] = {}  # own qubit -> node believed to hold its group
        self.ghosts: dict[m.GlobalQubit, int] = {}  # other nodes' qubits held here -> slot
        self.slot_of: dict[int, m.GlobalQubit] = {}
        self.free_slots: list[int] = []
        self.sent_to: dict[m.GlobalQubit, str] = {}  # where groups we gave away went
        self.lost: dict[int, str] = {}  # own qubits whose state died with another process
        # other nodes' qubits whose group we sent never left (dropped) -> why, oldest first
        self.dropped: OrderedDict[m.GlobalQubit, str] = OrderedDict()

    def global_id(self, slot: int) -> m.GlobalQubit:
        return (self.me, slot) if slot < self.n else self.slot_of[slot]

    def slot_here(self, gq: m.GlobalQubit) -> int | None:
        """The slot holding ``gq``'s state here (None: its group is elsewhere)."""
        node, q = gq
        if node == self.me:
            return q if 0 <= q < self.n and q not in self.away else None
        return self.ghosts.get(gq)

    def partners(self, qubits: Iterable[int]) -> list[int]:
        """Slots sharing a group with ``qubits`` (whose group may be left without any of
        our qubits by the op)."""
        group_of = self.device.reg.group_of
        return [s for q in qubits for s in group_of[q].qubits if s != q]

    def ghost(self, gq: m.GlobalQubit, token: bytes) -> int:
        """A slot for another node's qubit ``gq``, alone in |0> (an older state of it
        still here is traced out), kept with its owner's custody ``token``."""
        slot = self.ghosts.get(gq)
        if slot is not None:
            self.device.reg.reset(slot)
        else:
            slot = self.free_slots.pop() if self.free_slots else self.device.reg.add_slot()
            self.ghosts[gq], self.slot_of[slot] = slot, gq
        self.tokens[gq] = token
        self.sent_to.pop(gq, None)
        self.dropped.pop(gq, None)  # (a new state: an older one's loss no longer matters)
        return slot

    def entrust(self, q: int, holder: str, token: bytes) -> None:
        """Our qubit ``q``'s state is now in ``holder``'s keeping, with ``token``."""
        self.away[q] = holder
        self.custody[q] = token

    def drop_ghost(self, slot: int) -> Matrix:
        """Take a ghost that is alone in its group out of the register: its 2x2 state."""
        g = self.device.reg.take(slot)
        assert g.qubits == [slot]
        gq = self.slot_of.pop(slot)
        del self.ghosts[gq]
        self.tokens.pop(gq, None)
        self.free_slots.append(slot)
        return g.rho

    def homeless(self, slots: Iterable[int]) -> list[tuple[int, str]]:
        """Groups among ``slots`` that hold no qubit of ours and only qubits of one other
        node: (a slot of the group, the node it goes home to)."""
        out: list[tuple[int, str]] = []
        seen: set[int] = set()
        for s in slots:
            if s >= self.n and s not in self.slot_of:
                continue  # a slot freed when an earlier group here went away
            g = self.device.reg.group_of[s]
            if id(g) in seen or any(q < self.n for q in g.qubits):
                continue
            seen.add(id(g))
            owners = {self.slot_of[q][0] for q in g.qubits}
            if len(owners) == 1:
                out.append((g.qubits[0], owners.pop()))
        return out

    def give(self, slot: int, to: str) -> m.QGroup:
        """Take the group holding ``slot`` out, to send to node ``to`` (our qubits in it
        leave with fresh custody tokens; other nodes' with the tokens they came with)."""
        g = self.device.reg.take(slot)
        members = [self.global_id(q) for q in g.qubits]
        tokens = []
        for q, gq in zip(g.qubits, members, strict=True):
            if q < self.n:
                token = self.new_token()
                self.entrust(q, to, token)
            else:
                del self.ghosts[gq], self.slot_of[q]
                token = self.tokens.pop(gq, b"")
                self.free_slots.append(q)
            tokens.append(token)
            self.sent_to[gq] = to
        rho = np.ascontiguousarray(g.rho, dtype="<c16").tobytes()
        return m.QGroup(frm=self.me, qubits=members, rho=rho, tokens=tokens)

    def arrive(self, msg: m.QGroup) -> str | None:
        """Install a group that came to us; what is wrong with it (None: installed)."""
        k = len(msg.qubits)
        if not 1 <= k <= MAX_GROUP or len(set(msg.qubits)) != k:
            return f"{k} qubits (or repeats)"
        if len(msg.rho) != 16 * 4**k:
            return f"{len(msg.rho)} bytes of state for {k} qubits"
        if len(msg.tokens) != k:
            return f"{len(msg.tokens)} custody tokens for {k} qubits"
        ours = 0
        for (node, q), token in zip(msg.qubits, msg.tokens, strict=True):
            if node == self.me:
                if not (0 <= q < self.n and q in self.away):
                    return f"our qubit {q}, which is not away"
                if not hmac.compare_digest(token, self.custody.get(q, b"")):
                    return f"our qubit {q} without the custody token it left with"
                if len(self.device.reg.group_of[q].qubits) != 1:
                    return f"our qubit {q}, which is entangled here (internal error)"
                ours += 1
            elif (node, q) in self.ghosts:
                return f"{node}'s qubit {q}, already here"
        if not ours:
            return "none of our qubits: a group is only ever sent to one of its owners"
        rho = np.frombuffer(msg.rho, dtype="<c16").astype(complex).reshape(2**k, 2**k)
        slots: list[int] = []
        for gq, token in zip(msg.qubits, msg.tokens, strict=True):
            node, q = gq
            self.sent_to.pop(gq, None)
            self.dropped.pop(gq, None)
            if node == self.me:
                del self.away[q]
                del self.custody[q]
                slots.append(q)
            else:
                s = self.free_slots.pop() if self.free_slots else self.device.reg.add_slot()
                self.ghosts[gq], self.slot_of[s] = s, gq
                self.tokens[gq] = token
                slots.append(s)
        self.device.reg.put(slots, rho)
        return None

    def undelivered(self, msg: m.QGroup, to: str, ours_why: str, theirs_why: str) -> list[int]:
        """The group ``msg`` we gave to ``to`` was dropped, never sent: its state is
        lost. Our qubits in it are lost (ops on them fail, saying ``ours_why``); the
        other nodes' are remembered, so their pulls are told ``theirs_why``. Returns our
        qubits lost. (A member that moved on since, in a later group, is left alone.)"""
        ours: list[int] = []
        for gq in msg.qubits:
            if self.sent_to.get(gq) != to:
                continue
            del self.sent_to[gq]
            node, q = gq
            if node != self.me:
                self._remember_dropped(gq, theirs_why)
            elif self.away.get(q) == to:
                self.lose(q, ours_why)
                ours.append(q)
        return ours

    def passed_lost(self, gq: m.GlobalQubit, frm: str, why: str) -> bool:
        """Another node's qubit ``gq``, whose group we passed on to ``frm``, is lost
        there (``frm`` says so, ``why``): remembered, so its owner's pulls are told
        (True). False if we did not give it to ``frm``: only the node we gave a group
        to can say it is lost (it could have destroyed it anyway)."""
        if gq[0] == self.me or self.sent_to.get(gq) != frm:
            return False
        del self.sent_to[gq]
        self._remember_dropped(gq, why)
        return True

    def _remember_dropped(self, gq: m.GlobalQubit, why: str) -> None:
        self.dropped[gq] = why
        while len(self.dropped) > MAX_DROPPED:
            self.dropped.popitem(last=False)

    def lose(self, q: int, why: str) -> None:
        """Our qubit ``q``, away, is lost: ops on it fail, saying ``why``."""
        del self.away[q]
        self.custody.pop(q, None)
        self.lost[q] = why

    def holder_gone(self, node: str, why: str) -> None:
        """``node``'s process died: the states it held for us are lost."""
        for q, holder in list(self.away.items()):
            if holder == node:
                del self.away[q]
                self.custody.pop(q, None)
                self.lost[q] = why
