"""``qnodeos squidasm SCRIPT.py|FOLDER [ARGS...]``: run a script written for SquidASM,
unchanged, on qnodeos nodes.

The script runs as ``__main__`` (``sys.argv`` = the script and ARGS; its folder first
on ``sys.path``, so ``from application import ...`` finds its neighbours), after
``import squidasm...`` was pointed at qnodeos's SquidASM layer (``shim.install``). A
FOLDER runs its ``run_simulation.py`` (else its one ``run*.py``) from inside the folder,
as its README tells a user to, so that ``config.yaml`` is found.
"""

from __future__ import annotations

import os
import runpy
import sys
from pathlib import Path

from ..errors import ConfigError
from .shim import install

__all__ = ["find_script", "run_script"]


def find_script(target: str) -> tuple[Path, Path | None]:
    """The script to run for ``target`` and the folder to run it in (None: stay)."""
    path = Path(target)
    if path.is_file():
        return path.resolve(), None
    if not path.is_dir():
        raise ConfigError(f"{target}: no such script or folder")
    preferred = path / "run_simulation.py"
    if preferred.is_file():
        return preferred.resolve(), path.resolve()
    found = sorted(p for p in path.glob("run*.py") if p.is_file())
    if len(found) == 1:
        return found[0].resolve(), path.resolve()
    listed = ", ".join(p.name for p in found) or "none"
    raise ConfigError(
        f"{target}: which script? expected run_simulation.py or one run*.py (found: {listed}); "
        f"name the script instead"
    )


def run_script(target: str, args: list[str]) -> int:
    """Run ``target`` (a script or a folder) with ``args``; its exit status."""
    script, folder = find_script(target)
    install()
    before_cwd, before_argv, before_path = Path.cwd(), sys.argv[:], sys.path[:]
    sys.argv = [str(script), *args]
    sys.path.insert(0, str(script.parent))
    if folder is not None:
        os.chdir(folder)
    try:
        runpy.run_path(str(script), run_name="__main__")
    except SystemExit as exc:
        code = exc.code
        return code if isinstance(code, int) else (0 if code is None else 1)
    finally:
        os.chdir(before_cwd)
        sys.argv, sys.path[:] = before_argv, before_path
    return 0
