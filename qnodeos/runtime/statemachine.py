"""The one way state machines in qnodeos change state: look the (state, event) pair up
in a transition table; an illegal event raises, naming who, the state and the event,
and the caller's state stays as it was."""

from __future__ import annotations

import enum
from collections.abc import Mapping
from typing import TypeVar

from ..errors import LocalError

S = TypeVar("S", bound=enum.Enum)
E = TypeVar("E", bound=enum.Enum)


def next_state(table: Mapping[tuple[S, E], S], state: S, event: E, who: object) -> S:
    """The state after ``event`` in ``state``, or LocalError if the table has none.
    ``who`` names the machine in that error (as ``str(who)``, made only then).

    >>> class St(enum.Enum):
    ...     A = "a"
    >>> class Ev(enum.Enum):
    ...     GO = "go"
    >>> next_state({}, St.A, Ev.GO, "thing 1")
    Traceback (most recent call last):
    ...
    qnodeos.errors.LocalError: thing 1: event 'go' is not allowed in state 'a'
    """
    new = table.get((state, event))
    if new is None:
        raise LocalError(f"{who}: event {event.value!r} is not allowed in state {state.value!r}")
    return new
