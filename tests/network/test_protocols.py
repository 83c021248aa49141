"""Network protocols: the built-in swap-as-soon-as-possible against its closed form
(sans-IO, cycle-synchronised), a cutoff and a user's protocol named in the network file
(deterministic mode), and a protocol that raises ending only its own circuits."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from qnodeos import sdk
from qnodeos.netlink.protocols import LEFT, RIGHT, Discard, Half, Swap, SwapAsap, View, Wake
from qnodeos.testbed.local import service
from tests.conftest import network
from tests.network.test_e2e_local import both, running


def asap_cycles(p: float, rng: np.random.Generator, protocol: SwapAsap) -> int:
    """Cycles until the protocol swaps, both links attempting once per cycle (a link
    holding a half waits), each succeeding with probability ``p``."""
    held: dict[int, Half] = {}
    cycle = 0
    while True:
        cycle += 1
        for side in (LEFT, RIGHT):
            if side not in held and rng.random() < p:
                half = Half(side=side, seq=cycle, ready_s=float(cycle), goodness=1.0)
                held[side] = half
                view = View(path=("a", "r", "b"), me=1, number=1, held=dict(held), swaps=0)
                if Swap() in protocol.pair_ready(view, half, float(cycle)):
                    return cycle


@pytest.mark.parametrize("p", [0.1, 0.5, 0.9])
def test_swap_asap_on_two_links_waits_the_known_number_of_attempts(p: float) -> None:
    """E[max of two geometric(p)] = (3 - 2p) / (p (2 - p)), within 4 standard errors
    of the mean of 20,000 runs (the error from the sample's spread)."""
    rng = np.random.default_rng(7)
    runs = [asap_cycles(p, rng, SwapAsap()) for _ in range(20_000)]
    mean, err = float(np.mean(runs)), float(np.std(runs) / math.sqrt(len(runs)))
    want = (3 - 2 * p) / (p * (2 - p))
    assert abs(mean - want) <= 4 * err, (p, mean, want, err)


def test_cutoff_discards_halves_that_waited_too_long() -> None:
    p = SwapAsap(cutoff_s=1.0)
    left = Half(side=LEFT, seq=1, ready_s=0.0, goodness=1.0)
    v = View(path=("a", "r", "b"), me=1, number=1, held={LEFT: left}, swaps=0)
    assert p.pair_ready(v, left, 0.0) == [Wake(1.0)]
    assert p.timer(v, 0.5) == []
    assert p.timer(v, 1.0) == [Discard(LEFT)]


def chain(protocol: str, args: str, repeater: str = "") -> str:
    body = ""
    for i in range(3):
        body += f'[nodes.n{i}]\ndevice = "generic"\nqubits = 4\nspeed = 1.0\nseed = {i + 1}\n'
    body += repeater
    for i, p in enumerate((0.01, 0.01)):
        body += (
            f'[[links]]\nnodes = ["n{i}", "n{i + 1}"]\nmodel = "depolarise"\nfidelity = 1.0\n'
            f"p_success = {p}\ncycle_ns = 10000\nseed = {100 + i}\n"
        )
    if protocol:
        body += f'[network]\nprotocol = "{protocol}"\nargs = {args}\n'
    return body


async def xx_correlator(text: str, n: int, monkeypatch: pytest.MonkeyPatch) -> tuple[float, Any]:
    """<XX> of n end-to-end measured pairs n0 - n2, and the repeater's network stack."""
    cfg = network(text)

    async def side(me: str, other: str, create: bool) -> list[Any]:
        async with sdk.connect(me, app="app", qubits=1) as conn:
            epr = conn.epr_socket(other, "app")
            call = epr.create_measure if create else epr.recv_measure
            return list(await call(n, bases="X", timeout=120.0))

    async with running(cfg, monkeypatch) as eps:
        a, b = await both(lambda: side("n0", "n2", True), lambda: side("n2", "n0", False))
        net = service(eps["n1"]).kernel.net
    assert [p.ent_id for p in a] == [p.ent_id for p in b]
    xx = sum(1 - 2 * (p.outcome ^ q.outcome) for p, q in zip(a, b, strict=True)) / n
    return xx, net


T2 = "[nodes.n1.params.kinds.qubit]\nt2_ns = 3e5\n"  # the repeater's memory: T2 = 300 us


async def test_a_user_protocol_from_the_network_file_changes_the_pairs(
    autojump_clock: object, monkeypatch: pytest.MonkeyPatch
) -> None:
    """docs/network-layer.md's example, "swap only when both halves are younger than t",
    loaded by import path: no swap uses a half older than t (300 us here; halves wait
    ~1 ms on average), some halves are discarded, every pair still comes, and with the
    repeater's memory dephasing (T2 = 300 us) <XX> is far better than with the built-in
    swap-as-soon-as-possible (difference over 4 combined standard errors)."""
    n = 200
    t = 3e-4
    plain, plain_net = await xx_correlator(chain("", "", T2), n, monkeypatch)
    young, net = await xx_correlator(
        chain("tests.network.young_swap:YoungSwap", f"{{ max_age_s = {t} }}", T2), n, monkeypatch
    )
    assert net.protocol_name == "tests.network.young_swap:YoungSwap"
    assert net.discards > 0 and plain_net.discards == 0
    assert net.oldest_swapped_s <= t + 1e-9 < plain_net.oldest_swapped_s
    err = math.sqrt((1 - plain**2) / n + (1 - young**2) / n)
    print(
        f"\n<XX>: swap ASAP {plain:.3f}, young swap {young:.3f} (+- {err:.3f}); "
        f"{net.discards} discards for {n} pairs"
    )
    assert young - plain > 4 * err


def test_the_docs_show_the_tested_example() -> None:
    doc = (Path(__file__).resolve().parents[2] / "docs" / "network-layer.md").read_text()
    code = (Path(__file__).parent / "young_swap.py").read_text()
    assert code.strip() in doc


async def test_a_raising_protocol_ends_its_circuit_and_the_node_serves_others(
    autojump_clock: object, monkeypatch: pytest.MonkeyPatch
) -> None:
    text = chain("tests.network.bad_protocol:Raises", "{}")
    cfg = network(text.replace("p_success = 0.01", "p_success = 0.5"))

    async def e2e(me: str, other: str, create: bool) -> str:
        async with sdk.connect(me, app="app", qubits=1) as conn:
            epr = conn.epr_socket(other, "app")
            call = epr.create_measure if create else epr.recv_measure
            with pytest.raises(sdk.EprError) as exc:
                await call(5, timeout=5.0)
            return str(exc.value)

    async def link(me: str, other: str, create: bool) -> int:
        async with sdk.connect(me, app="near", qubits=1) as conn:
            epr = conn.epr_socket(other, "near")
            call = epr.create_measure if create else epr.recv_measure
            return len(await call(20, timeout=5.0))

    async with running(cfg, monkeypatch):
        a, b, x, y = await both(
            lambda: e2e("n0", "n2", True),
            lambda: e2e("n2", "n0", False),
            lambda: link("n0", "n1", True),
            lambda: link("n1", "n0", False),
        )
    for msg in (a, b):
        assert "tests.network.bad_protocol:Raises" in msg and "ZeroDivisionError" in msg, msg
        assert "a bug in the protocol" in msg
    assert (x, y) == (20, 20)  # the repeater's own link keeps serving its neighbours' apps


async def test_a_cutoff_on_a_three_hop_chain_voids_swapped_pairs_and_stays_correct(
    autojump_clock: object, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Discards on every hop of n0 - n1 - n2 - n3, including halves whose link partner
    was already swapped (the pair joined to it is void too, and made again): every
    pair still comes, both ends agree on each (perfect links: X outcomes equal), and no
    swap used a half older than the cutoff."""
    body = ""
    for i in range(4):
        body += f'[nodes.n{i}]\ndevice = "generic"\nqubits = 4\nspeed = 1.0\nseed = {i + 1}\n'
    for i in range(3):
        body += (
            f'[[links]]\nnodes = ["n{i}", "n{i + 1}"]\nmodel = "depolarise"\nfidelity = 1.0\n'
            f"p_success = 0.01\ncycle_ns = 10000\nseed = {100 + i}\n"
        )
    cutoff = 4e-4
    body += '[network]\nprotocol = "qnodeos.netlink.protocols:SwapAsap"\n'
    body += f"args = {{ cutoff_s = {cutoff} }}\n"
    n = 40

    async def side(me: str, other: str, create: bool) -> list[Any]:
        async with sdk.connect(me, app="app", qubits=1) as conn:
            epr = conn.epr_socket(other, "app")
            call = epr.create_measure if create else epr.recv_measure
            return list(await call(n, bases="X", timeout=120.0))

    async with running(network(body), monkeypatch) as eps:
        a, b = await both(lambda: side("n0", "n3", True), lambda: side("n3", "n0", False))
        nets = [service(eps[f"n{i}"]).kernel.net for i in (1, 2)]
    assert [p.ent_id for p in a] == [p.ent_id for p in b] and len(a) == n
    assert all(p.outcome == q.outcome for p, q in zip(a, b, strict=True))
    assert all(net.discards > 0 for net in nets), [net.discards for net in nets]
    assert all(net.oldest_swapped_s <= cutoff + 1e-9 for net in nets)
    print(f"\n3 hops, cutoff {cutoff * 1e6:.0f} us: discards {[net.discards for net in nets]}")


async def test_a_slow_repeater_delays_pairs_but_does_not_fail_them(
    autojump_clock: object, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The repeater swaps 1 s after it holds both halves (a busy machine, a slow
    protocol): the links' next rounds wait that long for its qubits, and every pair
    still comes."""
    text = chain("tests.network.slow_swap:SlowSwap", "{ delay_s = 1.0 }")
    cfg = network(text.replace("p_success = 0.01", "p_success = 0.5"))

    async def side(me: str, other: str, create: bool) -> list[Any]:
        async with sdk.connect(me, app="app", qubits=1) as conn:
            epr = conn.epr_socket(other, "app")
            call = epr.create_measure if create else epr.recv_measure
            return list(await call(4, bases="Z", timeout=60.0))

    async with running(cfg, monkeypatch):
        a, b = await both(lambda: side("n0", "n2", True), lambda: side("n2", "n0", False))
    assert [p.ent_id for p in a] == [p.ent_id for p in b] and len(a) == 4
    assert [p.outcome for p in a] == [p.outcome for p in b]  # perfect links: Z agrees
