"""Reading a network file's tables: typed values and unknown keys, each a ConfigError
that names the key (and, for an unknown one, the nearest known key)."""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from typing import Any

from ..errors import ConfigError


def unknown(where: str, found: Iterable[str], known: Iterable[str], extra: str = "") -> None:
    """Raise for keys not in ``known``, suggesting the nearest known key for each."""
    known = sorted(known)
    unknown = sorted(set(found) - set(known))
    if not unknown:
        return
    hints = []
    for key in unknown:
        near = difflib.get_close_matches(key, known, n=1)
        hints.append(f"{key} (did you mean {near[0]!r}?)" if near else key)
    raise ConfigError(
        f"{where}: unknown key(s) {', '.join(hints)}{extra}; known: {', '.join(known)}"
    )


def get(
    table: dict[str, Any], key: str, kind: type | tuple[type, ...], where: str, default: Any
) -> Any:
    if key not in table:
        return default
    val = table[key]
    if isinstance(val, bool) and kind is not bool:
        raise ConfigError(f"{where}.{key}: expected {kind}, got {val!r}")
    if not isinstance(val, kind):
        names = kind.__name__ if isinstance(kind, type) else "/".join(k.__name__ for k in kind)
        raise ConfigError(f"{where}.{key}: expected {names}, got {val!r}")
    return val


def seconds(
    table: dict[str, Any], key: str, where: str, default: float, lo: float, hi: float
) -> float:
    val = float(get(table, key, (int, float), where, default))
    if not lo <= val <= hi:  # also refuses nan
        raise ConfigError(f"{where}.{key}: must be in {lo:g}..{hi:g} s, got {val}")
    return val
