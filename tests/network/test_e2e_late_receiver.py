"""A receiving app that asks late (regression: kept pairs over 4 hops stalled).

The creating end sets a circuit up at once; at the receiving end the setup waits until
its app asks. Meanwhile the repeaters that do not need the receiving end's hop make
their link pairs and swap, and send the swap records to both ends: the receiving end
must keep them for the circuit it has not opened yet. It used to drop them, so the
creating end delivered the pair (it had every record) and the receiving end never did
(a one-sided pair); the repeaters, waiting for that end to be done, kept their qubits,
and the next circuit over them waited for qubits until its link request timed out.
In deterministic mode (MockClock), the receiving app sleeps before asking."""

from __future__ import annotations

from typing import Any

import pytest
import trio

from qnodeos import sdk
from tests.network.test_e2e_local import PERFECT, both, chain, running


@pytest.mark.parametrize("hops", [3, 4])
async def test_records_that_come_before_the_receiving_app_asks_are_kept(
    autojump_clock: object, monkeypatch: pytest.MonkeyPatch, hops: int
) -> None:
    """Every request a new circuit, the receiver late for each: both ends get every
    pair, with the same ids, and the pairs are Phi+ (perfect links and gates)."""
    cfg = chain(hops, PERFECT)
    last = f"n{hops}"
    shots = 6

    async def side(me: str, other: str, create: bool) -> list[tuple[Any, int]]:
        out = []
        async with sdk.connect(me, app="app", qubits=1) as conn:
            epr = conn.epr_socket(other, "app")
            for i in range(shots):
                if create:
                    (pair,) = await epr.create_keep(timeout=1.0)
                else:
                    await trio.sleep(0.01)  # the circuit's repeaters swap meanwhile
                    (pair,) = await epr.recv_keep(timeout=1.0)
                q = pair.qubit
                assert q is not None
                async with conn.block():
                    if i % 2:
                        q.h()
                    mm = q.measure()
                out.append((pair.ent_id, mm.value))
        return out

    async with running(cfg, monkeypatch):
        a, b = await both(lambda: side("n0", last, True), lambda: side(last, "n0", False))
    assert [x[0] for x in a] == [x[0] for x in b]
    assert [x[1] for x in a] == [x[1] for x in b]  # Phi+: ZZ = XX = +1
