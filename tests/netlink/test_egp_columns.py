"""An EGP given a round's heralds as columns (``Heralds``, as a node's quantum process
reports them) says in one ``Oks`` exactly what it says in an ``Ok`` per herald of the
same round as a ``RoundEnd``."""

from __future__ import annotations

import numpy as np

from qnodeos.lang.messages import EgpAccept
from qnodeos.netlink.egp import EGP, Create, Err, Heralds, Ok, Oks, Out, Round, ToLocal
from qnodeos.netlink.models import Depolarise, Perfect
from qnodeos.netlink.station import Rejected, RoundEnd

from .test_egp import Link, oks


class ColumnsEGP(EGP):
    """Hands every ``RoundEnd`` on as ``Heralds``; each ``Oks`` out as its ``Ok``s."""

    batches = 0

    def station_message(
        self, msg: RoundEnd | Heralds | Rejected, now: float, *, final: bool = True
    ) -> list[Out]:
        if isinstance(msg, RoundEnd):
            msg = columns(msg)
        out: list[Out] = []
        for o in super().station_message(msg, now, final=final):
            if isinstance(o, ToLocal) and isinstance(o.event, Oks):
                ColumnsEGP.batches += 1
                out += [ToLocal(ok) for ok in o.event.oks()]
            else:
                out.append(o)
        return out


def columns(msg: RoundEnd) -> Heralds:
    hs = msg.heralds
    return Heralds(
        key=msg.key,
        seqs=[h.seq for h in hs],
        herald_attempts=[h.attempts for h in hs],
        at_ns=[h.at_ns for h in hs],
        bell_index=[h.bell_index for h in hs],
        outcomes=[[h.seq % 2] for h in hs],
        attempts=msg.attempts,
        again=msg.again,
    )


def events(model: Depolarise | Perfect, batch: bool, kind: str, n: int) -> list[list[object]]:
    link = Link(model, seed=5)
    if batch:
        link.egp = {
            name: ColumnsEGP(node=name, peer=peer, model=model, rng=np.random.default_rng(5 + i))
            for i, (name, peer) in enumerate([("alice", "bob"), ("bob", "alice")])
        }
    link.listen("bob", "p", kind, n)
    link.create("alice", Create(remote="bob", purpose="p", type=kind, number=n, bases="XZ"))
    return [link.events["alice"], link.events["bob"]]


def test_columns_give_the_same_events_as_one_ok_per_herald() -> None:
    ColumnsEGP.batches = 0
    for model, kind, n in [
        (Depolarise(fidelity=0.85, p_success=0.1, cycle_ns=1000), "M", 40),
        (Perfect(cycle_ns=100), "M", 300),
        (Depolarise(fidelity=0.85, p_success=0.2, cycle_ns=1000), "K", 5),
    ]:
        plain, batched = events(model, False, kind, n), events(model, True, kind, n)
        assert batched == plain
        assert len(oks(plain[0])) == n and not [e for e in plain[0] if isinstance(e, Err)]
    assert ColumnsEGP.batches > 0


def round_started(n: int) -> tuple[EGP, str]:
    """alice's EGP with an accepted M request for ``n`` pairs, its first round asked."""
    egp = EGP(node="alice", peer="bob", model=Perfect(cycle_ns=100), rng=np.random.default_rng(1))
    cid, _ = egp.create(Create(remote="bob", purpose="p", type="M", number=n), 0.0)
    (r,) = egp.peer_message(EgpAccept(origin="alice", create_id=cid, queue=1), 0.0)
    assert isinstance(r, Round)
    return egp, r.key


def test_heralds_past_the_last_pair_are_not_pairs_and_attempts_carry_over() -> None:
    egp, key = round_started(3)
    first = egp.station_message(
        Heralds(key=key, seqs=[], herald_attempts=[], at_ns=[], bell_index=[], outcomes=[],
                attempts=7),
        0.0,
    )  # fmt: skip
    (again,) = first  # the next round
    assert isinstance(again, Round)
    key = again.key
    out = egp.station_message(
        Heralds(key=key, seqs=[4, 5, 6, 7], herald_attempts=[2, 1, 1, 1],
                at_ns=[1.0, 2.0, 3.0, 4.0], bell_index=[0, 1, 2, 3], outcomes=[[0]] * 4),
        0.0,
    )  # fmt: skip
    (batch,) = [o.event for o in out if isinstance(o, ToLocal)]
    assert isinstance(batch, Oks) and list(batch.seqs) == [4, 5, 6] and len(batch) == 3
    assert list(batch.attempts) == [9, 1, 1]  # the round in vain counts for the first
    assert [o.pair for o in batch.oks()] == [0, 1, 2]
    assert all(isinstance(o, Ok) for o in batch.oks())
    assert egp.requests == {} and egp.by_round == {}

