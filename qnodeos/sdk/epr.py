"""EPR sockets: entangled pairs between two apps on two nodes, made by the nodes' link
layer. Both apps open a socket naming each other; one creates, the other receives.

>>> async def sender(node):                                       # doctest: +SKIP
...     epr = node.epr_socket("bob", "receiver")
...     (pair,) = await epr.create_keep()        # pair.qubit is a Qubit, in Phi+
...     outcomes = await epr.create_measure(100, bases="XZ")
...     async with aclosing(epr.stream_measure("create", 100_000)) as chunks:
...         async for pairs in chunks:            # as the link makes them
...             print(len(pairs), "more")
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import msgspec

from ..errors import LocalError, RemoteError
from ..lang import messages as m
from .builder import Qubit, QubitIds


class EprError(RemoteError):
    """The link layer could not deliver; ``code`` is its error code (UNSUPP, NOTIME,
    NORES, TIMEOUT, REJECTED, OTHER, EXPIRE). ``pairs`` were delivered before it
    failed (their qubits are the app's)."""

    def __init__(self, message: str, code: str, pairs: list[Pair]) -> None:
        super().__init__(message, code)
        self.pairs = pairs


@dataclass(frozen=True)
class Pair:
    """One delivered pair. Kept ("K"): ``qubit`` holds this end's half, in Phi+ (up to
    noise). Measured ("M"): ``outcome`` in ``basis``; with Phi+, outcomes in the same
    basis agree for X and Z and are opposite for Y."""

    ent_id: tuple[str, str, int]
    bell_index: int  # as heralded, before the node's correction to Phi+
    goodness: float  # the link's fidelity estimate
    attempts: int
    at_ns: int
    qubit: Qubit | None = None
    outcome: int = -1
    basis: str = ""


def measured_pairs(cols: m.MeasuredPairs) -> list[Pair]:
    """Measured pairs (no qubit) as ``Pair`` objects, equal to ``Pair(...)`` of their
    fields, made in bulk from the columns the node sends: a frozen dataclass's
    ``__init__`` sets each field through ``object.__setattr__`` (2.2 us for a Pair);
    filling the new object's ``__dict__`` makes the same object in under half that."""
    new = object.__new__
    a, b = cols.nodes
    out: list[Pair] = []
    for seq, bell, good, tries, at, outcome, basis in zip(
        cols.seqs, cols.bell_index, cols.goodness, cols.attempts, cols.at_ns, cols.outcomes,
        cols.bases, strict=True,
    ):  # fmt: skip
        pair = new(Pair)
        pair.__dict__.update(
            ent_id=(a, b, seq), bell_index=bell, goodness=good, attempts=tries, at_ns=at,
            qubit=None, outcome=outcome, basis=basis,
        )  # fmt: skip
        out.append(pair)
    return out


@dataclass(frozen=True)
class SessionLink:
    """What an EPR socket uses of its session (``Node.epr_socket`` hands it one): the
    app's qubit ids (a kept pair takes one), request numbers, and the session's two ways
    to have a request's pairs: all at once (``collect``) or in chunks (``stream``)."""

    ids: QubitIds
    next_req: Callable[[], int]
    collect: Callable[[m.EprRequest], Awaitable[list[Pair]]]
    stream: Callable[[m.EprRequest], AsyncGenerator[list[Pair], None]]


class EprSocket:
    """Pairs with app ``app`` on node ``node`` (open one with ``Node.epr_socket``)."""

    def __init__(self, node: str, app: str, link: SessionLink) -> None:
        self._link = link
        self.node = node
        self.app = app

    async def create_keep(
        self,
        number: int = 1,
        *,
        min_fidelity: float = 0.0,
        timeout: float = 30.0,
        distill: str = "",
        rounds: int = 0,
        target_fidelity: float = 0.0,
    ) -> list[Pair]:
        """``number`` pairs kept: each ``Pair.qubit`` is this end's half, in Phi+ (up
        to noise); with ``min_fidelity`` the link must promise at least that. Raises
        EprError (with the pairs made) if they do not all come within ``timeout``.
        ``distill``: as in ``create_measure``; the pairs that survive are kept."""
        opts = {"distill": distill, "rounds": rounds, "target_fidelity": target_fidelity}
        return await self._keep("create", number, min_fidelity, timeout, opts if distill else {})

    async def recv_keep(self, number: int = 1, *, timeout: float = 30.0) -> list[Pair]:
        """The other end of ``create_keep``: ``number`` pairs, each half kept."""
        return await self._keep("recv", number, 0.0, timeout)

    async def create_measure(
        self,
        number: int = 1,
        *,
        bases: str = "Z",
        min_fidelity: float = 0.0,
        timeout: float = 30.0,
        distill: str = "",
        rounds: int = 0,
        target_fidelity: float = 0.0,
        policy: str = "",
    ) -> list[Pair]:
        """``number`` pairs measured at once, each end in a basis drawn from ``bases``.
        ``distill`` ("bbpssw" or "dejmps", to a neighbour or to a node over
        repeaters): the two ends distil the link's or the end-to-end pairs for
        ``rounds`` rounds, or as many as reach
        ``target_fidelity`` (at most 8), and measure the pairs that survive. ``policy``
        ("asap" or "nested", over repeaters): how the repeaters swap for this request
        (else as the network file says)."""
        req = self._msg("create", "M", number, min_fidelity, timeout, [], bases)
        if distill or policy:
            req = msgspec.structs.replace(
                req, distill=distill, rounds=rounds, target_fidelity=target_fidelity,
                policy=policy,
            )  # fmt: skip
        return await self._link.collect(req)

    async def recv_measure(
        self, number: int = 1, *, bases: str = "Z", timeout: float = 30.0
    ) -> list[Pair]:
        """The other end of ``create_measure``; this end draws its own bases."""
        return await self._measure("recv", number, bases, 0.0, timeout)

    def stream_measure(
        self,
        role: str,
        number: int,
        *,
        bases: str = "Z",
        min_fidelity: float = 0.0,
        timeout: float = 30.0,
    ) -> AsyncGenerator[list[Pair], None]:
        """Like ``create_measure`` (``role="create"``) or ``recv_measure`` (``"recv"``),
        for many pairs: yields them in chunks as the link makes them (up to 10^6 in
        one request), each acknowledged as it is yielded. ``timeout`` is for the whole
        request. Use it as ``async with aclosing(epr.stream_measure(...)) as s``."""
        if role not in ("create", "recv"):
            raise LocalError(f"role {role!r}: use 'create' or 'recv'")
        fid = min_fidelity if role == "create" else 0.0
        return self._link.stream(self._msg(role, "M", number, fid, timeout, [], bases))

    async def _keep(
        self, role: str, number: int, fid: float, timeout: float, opts: dict[str, Any] | None = None
    ) -> list[Pair]:
        ids = self._link.ids
        taken: list[int] = []
        try:
            for _ in range(number):
                taken.append(ids.take())
        except LocalError:
            for i in taken:
                ids.give(i)
            raise
        req = msgspec.structs.replace(
            self._msg(role, "K", number, fid, timeout, taken, "Z"), **(opts or {})
        )
        try:
            done = await self._link.collect(req)
        except EprError as exc:
            kept = {p.qubit.id for p in exc.pairs if p.qubit is not None}
            for i in taken:
                if i not in kept:
                    ids.give(i)
            raise
        return done

    async def _measure(
        self, role: str, number: int, bases: str, fid: float, timeout: float
    ) -> list[Pair]:
        return await self._link.collect(self._msg(role, "M", number, fid, timeout, [], bases))

    def _msg(
        self,
        role: str,
        type: str,
        number: int,
        fid: float,
        timeout: float,
        qubits: list[int],
        bases: str,
    ) -> m.EprRequest:
        return m.EprRequest(
            req=self._link.next_req(),
            remote_node=self.node,
            remote_app=self.app,
            role=role,
            kind=type,
            number=number,
            min_fidelity=fid,
            timeout_s=timeout,
            qubits=qubits,
            bases=bases,
        )
