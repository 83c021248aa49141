"""A round's measured pairs all at once (``qdevice.measured``) against the reference,
pair by pair (a density matrix per pair): for the same seeds they give the same
outcomes and leave the devices alike; from different seeds, the same distributions
(chi-square over 10^5 pairs for every link model and basis pair)."""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np
import pytest

from qnodeos.config.network import LinkConfig, NodeConfig
from qnodeos.hardware.params import generic, nv
from qnodeos.hardware.specs import DeviceSpec, with_overrides
from qnodeos.lang import codec
from qnodeos.lang import messages as m
from qnodeos.netlink.models import MODELS, LinkModel
from qnodeos.qdevice import rounds
from qnodeos.qdevice.device import QuantumDevice
from qnodeos.qdevice.measured import measure_pairs
from qnodeos.qdevice.physics import to_paired
from qnodeos.qdevice.server import QDeviceServer, ToKernel, ToPeer

MODEL_ARGS: dict[str, dict[str, float]] = {
    "perfect": {},
    "depolarise": {"fidelity": 0.8, "p_success": 0.4},
    "single_click": {"alpha": 0.2, "eta": 0.4, "dark_count": 0.05, "visibility": 0.9},
    "double_click": {"eta": 0.5, "visibility": 0.85},
}
assert set(MODEL_ARGS) == set(MODELS)  # a new link model must be added here
TURN = {"X": [("h", 0.0)], "Y": [("rx", math.pi / 2)], "Z": []}
FIX = {0: [], 1: [("z", 0.0)], 2: [("x", 0.0)], 3: [("y", 0.0)]}  # to Phi+, at alice


def noisy(p01: float = 0.05, p10: float = 0.02) -> DeviceSpec:
    return with_overrides(
        generic(3),
        {
            "kinds": {
                "qubit": {
                    "t1_ns": 2e6,
                    "t2_ns": 1e6,
                    "gates": {g: {"error": 0.03} for g in ("x", "y", "z", "rx", "h")},
                    "meas": {"p01": p01, "p10": p10},
                }
            }
        },
    )


class Wire:
    """alice (hosts the station) and bob, with messages delivered in order."""

    def __init__(self, model: LinkModel, spec: DeviceSpec, seed: int) -> None:
        link = LinkConfig(nodes=("alice", "bob"), model=model, seed=seed)
        self.q = {
            n: QDeviceServer(
                NodeConfig(
                    name=n,
                    device=spec,
                    speed=math.inf,
                    seed=seed + i,
                    app_endpoint="",
                    qdevice_endpoint="",
                    peer_endpoint="",
                ),  # fmt: skip
                [link],
            )
            for i, n in enumerate(("alice", "bob"))
        }
        self.enc, self.dec = codec.to_device(), codec.from_device()
        self.done: dict[str, list[m.EntangleDone]] = {"alice": [], "bob": []}
        self.basis_log: list[tuple[str, str]] = []  # (alice's, bob's) basis per pair
        self.seq = 0
        for n in self.q:
            self.send(n, m.Ping(seq=0))

    def send(self, at: str, msg: m.ToDevice) -> None:
        queue = [(at, o) for o in self.q[at].handle([b"k", self.enc.encode(msg)], 0.0, 0.0)]
        while queue:
            here, o = queue.pop(0)
            if isinstance(o, ToKernel):
                reply = self.dec.decode(o.frames[1])
                if isinstance(reply, m.EntangleDone):
                    self.done[here].append(reply)
            elif isinstance(o, ToPeer):
                queue += [(o.node, x) for x in self.q[o.node].peer_message(o.data, 0.0, 0.0)]

    def measured_round(self, key: str, bases: dict[str, list[str]], q: int = 0) -> None:
        """One round of measured pairs, pair i in basis bases[node][i] at each end; alice
        corrects to Phi+ first (as after given rotations), so recipes differ by Bell
        index at her end."""
        self.basis_log += list(zip(bases["alice"], bases["bob"], strict=True))
        for n in ("bob", "alice"):
            kinds = sorted(set(bases[n]))
            recipes = [
                [
                    [
                        *(m.PhysOp(g, (q,), t) for g, t in (FIX[bell] if n == "alice" else [])),
                        *(m.PhysOp(g, (q,), t) for g, t in TURN[b]),
                        m.PhysOp("meas", (q,)),
                    ]
                    for bell in range(4)
                ]
                for b in kinds
            ]
            self.seq += 1
            pairs = len(bases[n])
            self.send(
                n,
                m.Entangle(
                    seq=self.seq,
                    peer="bob" if n == "alice" else "alice",
                    key=key,
                    qubits=[q],
                    max_attempts=1000 * pairs,
                    expires_s=1e9,
                    pairs=pairs,
                    recipes=recipes,
                    plan=[kinds.index(b) for b in bases[n]],
                ),  # fmt: skip
            )

    def outcomes(self, n: str) -> list[tuple[int, int, int, list[int]]]:
        return [(p.seq, p.at_ns, p.bell_index, p.outcomes) for d in self.done[n] for p in d.pairs]

    def device_state(self, n: str) -> tuple[object, ...]:
        dev = self.q[n].device
        rho = dev.reg.density_matrix(list(range(dev.spec.num_qubits)))
        return (dev.busy_until, dev.executed, list(dev.touched), rho.tobytes())


@contextmanager
def path(vectorised: bool) -> Iterator[None]:
    before = rounds.VECTORISED
    rounds.VECTORISED = vectorised
    try:
        yield
    finally:
        rounds.VECTORISED = before


def bases(rng: np.random.Generator, n: int) -> dict[str, list[str]]:
    return {node: [str(b) for b in rng.choice(list("XYZ"), n)] for node in ("alice", "bob")}


def run(model: str, spec: DeviceSpec, seed: int, vectorised: bool, rounds_: int, n: int) -> Wire:
    rng = np.random.default_rng(seed + 100)
    with path(vectorised):
        w = Wire(MODELS[model](cycle_ns=1000, **MODEL_ARGS[model]), spec, seed)
        for i in range(rounds_):
            w.measured_round(f"r{i}", bases(rng, n))
    return w


@pytest.mark.parametrize("model", sorted(MODEL_ARGS))
@pytest.mark.parametrize(
    "readout", [(0.05, 0.02), (0.0, 0.0), (0.05, 0.0)], ids=["both", "none", "one"]
)
def test_same_seed_same_outcomes_and_devices_pair_for_pair(
    model: str, readout: tuple[float, float]
) -> None:
    """Each readout case draws uniforms differently (two per pair, one, or as the
    outcome needs): the vectorised path must draw them as the reference does."""
    spec = noisy(*readout)
    fast, ref = (run(model, spec, 7, v, 3, 300) for v in (True, False))
    for n in ("alice", "bob"):
        assert fast.outcomes(n) == ref.outcomes(n)
        assert fast.device_state(n) == ref.device_state(n)
    assert len(fast.outcomes("bob")) == 900
    assert fast.q["alice"].groups.ghosts == {} and fast.q["bob"].away == {}


def test_nv_electron_pairs_match_the_reference() -> None:
    """NV: measured on the electron (qubit 0) with its own rotations and readout."""
    fast, ref = (run("single_click", nv(1), 3, v, 2, 200) for v in (True, False))
    assert fast.outcomes("alice") == ref.outcomes("alice")
    assert fast.outcomes("bob") == ref.outcomes("bob")


def test_the_vectorised_path_is_the_one_taken(monkeypatch: pytest.MonkeyPatch) -> None:
    """Measured rounds do not place pairs in the register one by one."""
    calls = []
    w = Wire(MODELS["perfect"](cycle_ns=1000), noisy(), 1)
    for q in w.q.values():
        monkeypatch.setattr(q.device.reg, "put", lambda *a: calls.append(a))
    w.measured_round("r", bases(np.random.default_rng(1), 50))
    assert not calls and len(w.outcomes("bob")) == 50


def test_pairs_that_wait_for_the_device_match_one_by_one_execution() -> None:
    """Heralds closer together than a recipe lasts (not what a station sends, but the
    path allows it): each pair's first op waits, its qubit decays meanwhile."""
    spec = noisy()
    rng = np.random.default_rng(4)
    ops = [m.PhysOp("h", (0,)), m.PhysOp("meas", (0,))]
    ats = [float(x) for x in np.cumsum(rng.uniform(0.0, 200.0, 400))]
    rhos = [MODELS["depolarise"](cycle_ns=1, fidelity=0.7, p_success=1).outcomes()[0][2]]
    ref = QuantumDevice(spec, np.random.default_rng(9))
    want = []
    for at in ats:
        ref.fresh(0, at)
        ref.reg.put([0, 1], rhos[0])
        want.append([ref.execute(op, at)[0] for op in ops])
    fast = QuantumDevice(spec, np.random.default_rng(9))
    recipe = fast.measure_recipe(ops)
    assert recipe is not None
    got = measure_pairs(
        fast, [recipe] * len(ats), ats, [0] * len(ats), lambda i: to_paired(rhos[0]), 2, 0.0
    )
    assert got.outcomes == want
    assert len(got.classes) > 10  # pairs that waited differently evolved apart
    assert (fast.busy_until, fast.executed) == (ref.busy_until, ref.executed)
    assert np.array_equal(fast.reg.density_matrix([0]), ref.reg.density_matrix([0]))


def test_recipes_it_cannot_run_at_once_fall_back_to_the_reference() -> None:
    dev = QuantumDevice(noisy(), np.random.default_rng(1))
    assert dev.measure_recipe([m.PhysOp("h", (0,))]) is None  # kept: no measurement
    assert dev.measure_recipe([m.PhysOp("meas", (0,)), m.PhysOp("h", (0,))]) is None
    assert dev.measure_recipe([m.PhysOp("init", (0,)), m.PhysOp("meas", (0,))]) is None
    assert dev.measure_recipe([m.PhysOp("cnot", (0, 1)), m.PhysOp("meas", (0,))]) is None
    assert dev.measure_recipe([m.PhysOp("h", (1,)), m.PhysOp("meas", (0,))]) is None
    assert dev.measure_recipe([m.PhysOp("nope", (0,)), m.PhysOp("meas", (0,))]) is None
    assert dev.measure_recipe([m.PhysOp("h", (0,)), m.PhysOp("meas", (0,))]) is not None


def _chi2_sf(x: float, dof: int) -> float:
    """Survival function of the chi-square distribution, 1 <= dof <= 3."""
    if dof == 1:
        return math.erfc(math.sqrt(x / 2))
    if dof == 2:
        return math.exp(-x / 2)
    return math.erfc(math.sqrt(x / 2)) + math.sqrt(2 * x / math.pi) * math.exp(-x / 2)


def _homogeneity_p(a: list[int], b: list[int]) -> float:
    """p-value of a chi-square test that counts ``a`` and ``b`` (over the same cells)
    come from one distribution."""
    cells = [(x, y) for x, y in zip(a, b, strict=True) if x + y]
    na, nb = sum(x for x, _ in cells), sum(y for _, y in cells)
    stat = 0.0
    for x, y in cells:
        ea, eb = (x + y) * na / (na + nb), (x + y) * nb / (na + nb)
        stat += (x - ea) ** 2 / ea + (y - eb) ** 2 / eb
    return _chi2_sf(stat, len(cells) - 1) if len(cells) > 1 else 1.0


def _table(w: Wire) -> dict[tuple[str, str], list[int]]:
    """Counts of (alice's, bob's) outcome per basis pair."""
    out: dict[tuple[str, str], list[int]] = {}
    for a, b, bs in zip(w.outcomes("alice"), w.outcomes("bob"), w.basis_log, strict=True):
        cell = out.setdefault(bs, [0, 0, 0, 0])
        cell[2 * a[3][-1] + b[3][-1]] += 1
    return out


@pytest.mark.slow
@pytest.mark.parametrize("model", sorted(MODEL_ARGS))
def test_outcome_distributions_match_the_reference_per_basis_pair(model: str) -> None:
    """10^5 pairs each way, from different seeds (with equal seeds the two paths agree
    pair for pair, see above): for each of the 9 basis pairs, the joint outcome counts
    pass a chi-square test of one distribution at p > 0.001."""
    n, per_round = 100_000, 4096
    tables = []
    for vectorised, seed in ((True, 11), (False, 12)):
        rng = np.random.default_rng(seed + 100)
        with path(vectorised):
            w = Wire(MODELS[model](cycle_ns=1000, **MODEL_ARGS[model]), noisy(), seed)
            done = 0
            while done < n:
                bs = bases(rng, min(per_round, n - done))
                w.measured_round(f"r{done}", bs)
                done += len(bs["alice"])
        tables.append(_table(w))
    fast, ref = tables
    assert set(fast) == set(ref) and len(fast) == 9
    for bs in sorted(fast):
        p = _homogeneity_p(fast[bs], ref[bs])
        assert p > 0.001, (bs, fast[bs], ref[bs], p)
