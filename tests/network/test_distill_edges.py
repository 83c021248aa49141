"""Two edges of end-to-end distillation, in deterministic mode: handing a distilled kept
pair to the app fails (both ends end the request, nothing one-sided, the pair stays on
the circuit's books until its close frees it), and a round settles on a circuit that
already ended (it admits nothing more into qubits the close gave back)."""

from __future__ import annotations

import itertools
from typing import Any

import pytest

from qnodeos import sdk
from qnodeos.config.network import NetworkConfig
from qnodeos.errors import QuotaError
from qnodeos.kernel.circuit import Circuit
from qnodeos.sdk.epr import EprError
from qnodeos.testbed.local import service
from tests.conftest import network
from tests.network.test_distill_link import F_LINK
from tests.network.test_e2e_local import both, chain_text, per_basis, running

NAMES = itertools.count()


def link(qubits: int) -> NetworkConfig:
    return network(chain_text([F_LINK]).replace("qubits = 4", f"qubits = {qubits}"),
                   name=f"distil-edges{next(NAMES)}")  # fmt: skip


def distilled_circuit(net: Any) -> Circuit:
    """The one distilling circuit this end's network layer ran (ended by now)."""
    ended: list[Circuit] = [c for c in net.finished.values() if c.dist is not None]
    assert len(ended) == 1 and not net.circuits
    return ended[0]


@pytest.mark.parametrize("refusing", ["n0", "n1"])
async def test_a_distilled_pair_the_app_cannot_take_ends_the_request_at_both_ends(
    autojump_clock: object, monkeypatch: pytest.MonkeyPatch, refusing: str
) -> None:
    """The memory manager refuses to hand the first distilled pair to the app at
    ``refusing`` (the creating end n0, or the receiving end n1): both apps' requests end
    with an error naming the hand-over at that end, neither app keeps a pair, the pair
    stayed on the circuit's books (it was not dropped before the hand-over), and every
    qubit the distillation held is free again."""
    refused: list[int] = []

    async def side(me: str, other: str, create: bool) -> str:
        async with sdk.connect(me, app="app", qubits=2) as conn:
            epr = conn.epr_socket(other, "app")
            with pytest.raises(EprError) as err:
                if create:
                    await epr.create_keep(2, distill="dejmps", rounds=1, timeout=60.0)
                else:
                    await epr.recv_keep(2, timeout=60.0)
            return str(err.value)

    async with running(link(6), monkeypatch) as eps:
        nets = {n: service(eps[n]).kernel.net for n in ("n0", "n1")}
        memory = nets[refusing].memory
        free_before = {n: len(nets[n].memory.free) for n in nets}

        def give(app: int, virt: int, to_app: int, to: int) -> int:
            refused.append(virt)
            raise QuotaError(f"app {to_app}: no room for Q{to} (test)")

        monkeypatch.setattr(memory, "give", give)
        a, b = await both(lambda: side("n0", "n1", True), lambda: side("n1", "n0", False))
        circuits = {n: distilled_circuit(nets[n]) for n in nets}
        free_after = {n: len(nets[n].memory.free) for n in nets}
    assert refused, "the hand-over was never tried"
    why = "handing a distilled pair to the app: app"
    assert why in (a if refusing == "n0" else b)
    assert "end-to-end pairs over n0-n1" in a and "end-to-end pairs over n0-n1" in b
    # the refused pair is still on the circuit's books: its qubit went with the close
    d = circuits[refusing].dist
    assert d is not None
    assert refused[0] in {virt for virt, _ in d.held.values()}
    assert all(not nets[n].memory.held(c.dist.app.app_id) for n, c in circuits.items()
               if c.dist is not None)  # fmt: skip
    assert free_after == free_before  # nothing held by the circuit, nothing lost


async def test_a_round_settling_on_an_ended_circuit_admits_nothing(
    autojump_clock: object, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A round's outcomes may complete after the circuit ended (its last pair delivered,
    or a failure): settling it must not move a landed pair into the circuit's qubits,
    which its close gave back (they may be another app's by now), nor start rounds."""
    async with running(link(5), monkeypatch) as eps:
        await both(
            lambda: per_basis("n0", "n1", True, 2, 60.0, distill="dejmps", rounds=2),
            lambda: per_basis("n1", "n0", False, 2, 60.0),
        )
        net = service(eps["n0"]).kernel.net
        c = [x for x in net.finished.values() if x.dist is not None][-1]
        d = c.dist
        assert c.done and d is not None and d.pool is not None
        app = d.app.app_id
        assert app not in net.memory.quota  # the close gave its qubits back
        # a round of two level-0 pairs whose outcomes were both in, and a pair landed
        d.held.clear()
        d.held.update({101: (1, 0), 102: (2, 0)})
        d.busy.update({101, 102})
        d.mine[(101, 102)] = (0, 1)
        d.theirs[(101, 102)] = (0, 1)
        d.landed.append((103, 0.8))
        work_before, free_before = len(net.work), set(net.memory.free)
        out = net._dist_settle(c, 101, 102, net.now_s)
    assert out == []
    assert d.landed == [(103, 0.8)]  # not admitted
    assert app not in net.memory.maps and net.memory.free == free_before
    assert len(net.work) == work_before  # no round started
