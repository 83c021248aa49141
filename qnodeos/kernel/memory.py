"""Memory manager: per-app virtual qubit ids -> physical qubits, with reserved quotas.

An app registers with a quota; the quota is reserved, so the sum of quotas never exceeds
the device's qubits and an app always gets what it asked for. Where a new qubit goes is
the node's ``placement``: ``lowest``, the lowest free physical index (on NV the
electron first, the only qubit that can be measured or entangled: fastest for local
work), or ``memory_first``, qubits that cannot be entangled first and communication
qubits last (on NV the carbons, so local work leaves the electron to the network; a
carbon is read out through the electron, so such a readout waits while the network or
another app holds it). Pairs always go to a communication qubit (``alloc_comm``).
Freed qubits are *dirty*: the next allocation first discards them (maximally mixed,
detached), so one app can never read what another left behind. An app names qubits
only through its own map, so it can never reach another's qubits.

>>> from qnodeos.hardware.params import generic
>>> mm = MemoryManager(generic(2))
>>> mm.open(1, quota=1)
>>> mm.alloc(1, 0)
(0, False)
>>> mm.alloc(1, 1)
Traceback (most recent call last):
...
qnodeos.errors.QuotaError: app 1: quota of 1 qubit(s) reached; cannot allocate Q1
"""

from __future__ import annotations

from ..errors import ProgramError, QuotaError
from ..hardware.specs import DeviceSpec

PLACEMENTS = ("lowest", "memory_first")


class MemoryManager:
    def __init__(self, spec: DeviceSpec, placement: str = "lowest") -> None:
        if placement not in PLACEMENTS:
            raise ValueError(f"placement {placement!r}: use one of {', '.join(PLACEMENTS)}")
        self.spec = spec
        # memory_first: the order in which free qubits are taken (communication last)
        self.order = sorted(
            range(spec.num_qubits),
            key=lambda q: (placement == "memory_first" and spec.kind(q).communication, q),
        )
        self.free = set(range(spec.num_qubits))
        # the qubits that can be entangled (a K round takes one per pair)
        self.communication = frozenset(
            q for q in range(spec.num_qubits) if spec.kind(q).communication
        )
        self.dirty: set[int] = set()
        self.quota: dict[int, int] = {}
        self.maps: dict[int, dict[int, int]] = {}
        # (app, virtual id) -> the share of a pure state that other apps' collective
        # pulses left the qubit's state since it was allocated (absent: untouched)
        self.crosstalk: dict[tuple[int, int], float] = {}

    @property
    def reserved(self) -> int:
        return sum(self.quota.values())

    def open(self, app: int, quota: int) -> None:
        """Reserve ``quota`` qubits for a new app (QuotaError if they are not there)."""
        if quota < 0:
            raise QuotaError(f"app {app}: quota {quota} is negative")
        left = self.spec.num_qubits - self.reserved
        if quota > left:
            raise QuotaError(
                f"app {app}: asked for {quota} qubit(s) but only {left} of "
                f"{self.spec.num_qubits} are unreserved on this {self.spec.name} device"
            )
        self.quota[app] = quota
        self.maps[app] = {}

    def alloc(self, app: int, virt: int, choose: int | None = None) -> tuple[int, bool]:
        """Map ``virt`` to a free physical qubit (``choose``: that one): (physical,
        needs discard first)."""
        m = self.maps[app]
        if virt in m:
            raise ProgramError(f"Q{virt} is already allocated")
        if len(m) >= self.quota[app]:
            raise QuotaError(
                f"app {app}: quota of {self.quota[app]} qubit(s) reached; cannot allocate Q{virt}"
            )
        if choose is None:  # reservation: one is free
            choose = next(q for q in self.order if q in self.free)
        phys = choose
        self.free.remove(phys)
        m[virt] = phys
        self.crosstalk.pop((app, virt), None)  # a fresh state: untouched
        was_dirty = phys in self.dirty
        self.dirty.discard(phys)
        return phys, was_dirty

    def alloc_comm(self, app: int, virt: int) -> int | None:
        """Map ``virt`` to a free communication qubit (one that can be entangled); None
        if none is free. Quota and id errors raise as in ``alloc``."""
        comm = min(self.free & self.communication, default=None)
        if comm is None:
            m = self.maps[app]
            if virt in m:
                raise ProgramError(f"Q{virt} is already allocated")
            if len(m) >= self.quota[app]:
                raise QuotaError(f"app {app}: quota of {self.quota[app]} qubit(s) reached")
            return None
        phys, _ = self.alloc(app, virt, choose=comm)
        return phys

    def move(self, phys: int, to: int) -> tuple[int, int]:
        """The node moved the state of ``phys`` into free qubit ``to``: remap whoever
        held ``phys``; returns (app, virtual id). ``phys`` becomes free."""
        for app, m in self.maps.items():
            for virt, p in m.items():
                if p == phys:
                    self.free.remove(to)
                    self.dirty.discard(to)
                    m[virt] = to
                    self.free.add(phys)
                    self.dirty.add(phys)
                    return app, virt
        raise ValueError(f"qubit {phys} is not allocated")

    def owner(self, phys: int) -> int | None:
        return next((a for a, m in self.maps.items() if phys in m.values()), None)

    def phys(self, app: int, virt: int) -> int:
        try:
            return self.maps[app][virt]
        except KeyError:
            raise ProgramError(f"Q{virt} is not allocated by this app") from None

    def rename(self, app: int, virt: int, to: int) -> None:
        """App ``app``'s qubit ``virt`` is its qubit ``to`` from now on (the state
        stays where it is); ``to`` must be free."""
        m = self.maps[app]
        if to in m:
            raise ProgramError(f"Q{to} is already allocated")
        m[to] = self.phys(app, virt)
        del m[virt]
        if (app, virt) in self.crosstalk:
            self.crosstalk[(app, to)] = self.crosstalk.pop((app, virt))

    def give(self, app: int, virt: int, to_app: int, to: int) -> int:
        """App ``app``'s qubit ``virt`` is app ``to_app``'s qubit ``to`` from now on (the
        state stays where it is: the network hands a distilled pair over so); returns
        the physical qubit. QuotaError or ProgramError, changing nothing, if ``to_app``
        cannot take it."""
        m = self.maps[to_app]
        if to in m:
            raise ProgramError(f"Q{to} is already allocated")
        if len(m) >= self.quota[to_app]:
            raise QuotaError(f"app {to_app}: quota of {self.quota[to_app]} qubit(s) reached")
        phys = self.phys(app, virt)
        del self.maps[app][virt]
        m[to] = phys
        if (app, virt) in self.crosstalk:
            self.crosstalk[(to_app, to)] = self.crosstalk.pop((app, virt))
        return phys

    def release(self, app: int, virt: int) -> int:
        phys = self.phys(app, virt)
        del self.maps[app][virt]
        self.crosstalk.pop((app, virt), None)
        self.free.add(phys)
        self.dirty.add(phys)
        return phys

    def close(self, app: int) -> list[int]:
        """Free everything ``app`` holds and drop its reservation; returns the qubits."""
        virts = self.maps.pop(app, {})
        held = list(virts.values())
        for virt in virts:
            self.crosstalk.pop((app, virt), None)
        self.quota.pop(app, None)
        self.free.update(held)
        self.dirty.update(held)
        return held

    def held(self, app: int) -> dict[int, int]:
        return dict(self.maps.get(app, {}))
