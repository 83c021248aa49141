"""Process manager: the lifecycle of each app, as one transition table (QNodeOS's
process states).

    NEW --submit--> READY --schedule--> RUNNING --finish--> WAITING (for its app)
    WAITING (for its app) --submit--> READY
    RUNNING --wait--> WAITING (for pairs, or a qubit to read out through) --wake--> READY
    any live state --stop--> DONE        any live state --fail--> FAILED

READY: a block is queued for the device. WAITING: the process needs something before
it can use the device again: its app's next block (``waiting_on`` "app"), pairs its
block asked for ("pairs"), or a readout qubit another app holds ("qubit"); the block
resumes where it stopped, and the device serves others meanwhile.

An app has at most one block outstanding. An illegal event raises LocalError naming the
app, its state and the event, and leaves the state as it was. Leases: every message from
an app renews its lease; an app silent for longer than the lease is failed and
everything it held is freed, unless the OS says its process is alive (a busy machine:
it is slow, not gone), up to ``liveness.HUNG_S`` (see ``qnodeos.runtime.liveness``).
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..runtime.liveness import Liveness, Look
from ..runtime.statemachine import next_state

if TYPE_CHECKING:
    from ..lang.program import Subroutine
    from .nqrun import NqMemory


class State(enum.Enum):
    NEW = "new"
    READY = "ready"
    RUNNING = "running"
    WAITING = "waiting"
    DONE = "done"
    FAILED = "failed"

    # Members are singletons compared by identity: hash them so too (Enum's own hash is
    # a Python call, and every state change looks a (state, event) pair up).
    __hash__ = object.__hash__


class Event(enum.Enum):
    SUBMIT = "submit"
    SCHEDULE = "schedule"
    FINISH = "finish"
    WAIT = "wait"
    WAIT_QUBIT = "wait for a qubit"
    WAKE = "wake"
    STOP = "stop"
    FAIL = "fail"

    __hash__ = object.__hash__  # (as State's)


_LIVE = (State.NEW, State.READY, State.RUNNING, State.WAITING)
TRANSITIONS: dict[tuple[State, Event], State] = {
    (State.NEW, Event.SUBMIT): State.READY,
    (State.WAITING, Event.SUBMIT): State.READY,
    (State.READY, Event.SCHEDULE): State.RUNNING,
    (State.RUNNING, Event.FINISH): State.WAITING,
    (State.RUNNING, Event.WAIT): State.WAITING,
    (State.RUNNING, Event.WAIT_QUBIT): State.WAITING,
    (State.WAITING, Event.WAKE): State.READY,
    **{(s, Event.STOP): State.DONE for s in _LIVE},
    **{(s, Event.FAIL): State.FAILED for s in _LIVE},
}

_WAITING_ON = {Event.FINISH: "app", Event.WAIT: "pairs", Event.WAIT_QUBIT: "qubit"}


@dataclass
class App:
    app_id: int
    name: str
    addr: bytes
    priority: int
    quota: int
    state: State = State.NEW
    waiting_on: str = ""  # WAITING: "app" (its next block) or "pairs" (its block's)
    blocks_done: int = 0
    blocks_failed: int = 0
    exclusive: bool = False  # holds the whole device while connected
    user: str | None = None  # identity its CURVE key proved (None: unauthenticated)
    # Crosstalk: other apps' collective pulses that hit this app's qubits since it
    # connected (qubit-pulses), and the smallest product of (1 - error) over the hits
    # on one of its qubits' states (since that qubit was allocated) during its current
    # or last block.
    crosstalk_hits: int = 0
    crosstalk_kept: float = 1.0
    watch: Callable[[App], None] | None = None  # told of every state change (timeline)
    nq: NqMemory | None = None  # its NetQASM registers and arrays (NetQASM apps only)
    checked: Subroutine | None = None  # its last subroutine that passed ``validate``

    @property
    def crosstalk_fidelity(self) -> float:
        """Fidelity a pure single-qubit state of this app keeps under the depolarising
        errors of the other apps' pulses that hit it since the qubit was allocated:
        (1 + prod(1-p))/2, for the most disturbed of the qubits the app held in its
        current or last block (exact for an app holding one qubit; a fresh qubit starts
        untouched)."""
        return (1.0 + self.crosstalk_kept) / 2.0

    def __str__(self) -> str:
        return f"app {self.app_id} ({self.name})"

    def fire(self, event: Event) -> State:
        new = next_state(TRANSITIONS, self.state, event, self)
        self.state = new
        self.waiting_on = _WAITING_ON.get(event, "")
        if self.watch is not None:
            self.watch(self)
        return new

    @property
    def idle(self) -> bool:
        """No block outstanding: the app may submit one."""
        return self.state is State.NEW or self.waiting_on == "app"


class ProcessTable:
    """All apps of a node, by id and by connection address, and their leases."""

    def __init__(self, lease_s: float, look: Look | None = None) -> None:
        self.lease_s = lease_s
        self.leases = Liveness(
            (), interval_s=lease_s / 4, timeout_s=lease_s, look=look, pings=False
        )
        self.by_id: dict[int, App] = {}
        self.by_addr: dict[bytes, App] = {}
        self.by_name: dict[str, App] = {}  # names are unique on a node: they are addresses
        self._next = 1
        self.watch: Callable[[App], None] | None = None  # given to every app

    def add(self, *, name: str, addr: bytes, priority: int, quota: int, now: float) -> App:
        app = App(self._next, name, addr, priority, quota, watch=self.watch)
        self._next += 1
        self.leases.add(str(app.app_id))
        self.leases.heard(str(app.app_id), now)
        self.by_id[app.app_id] = app
        self.by_addr[addr] = app
        self.by_name[name] = app
        return app

    def remove(self, app: App) -> None:
        self.leases.remove(str(app.app_id))
        self.by_id.pop(app.app_id, None)
        self.by_addr.pop(app.addr, None)
        if self.by_name.get(app.name) is app:
            del self.by_name[app.name]

    def seen(self, app: App, now: float) -> None:
        """A message from ``app``: its lease starts again."""
        self.leases.heard(str(app.app_id), now)

    def expired(self, now: float, judge: bool = True) -> list[tuple[App, str]]:
        """Apps whose lease ran out now, each with why (see ``Liveness``)."""
        _, gone = self.leases.tick(now, judge)
        return [(self.by_id[int(k)], self.leases.reason[k]) for k in gone]
