"""One BLAS thread in every process that ``forking.fork`` starts.

numpy's OpenBLAS keeps a pool of threads, one per core, in every process that uses
it. A node's quantum process makes one small product per op, which a second thread
does not speed up: it only spins, and on a machine running many nodes (64 nodes are
128 processes) it competes with the other nodes for the cores. So every forked child
(a node's two processes, an app) runs its BLAS on one thread.

How this works. The limit is set in the parent, just before ``os.fork``, and put back
in the parent just after: the child inherits the count of 1, and since OpenBLAS stops
its pool before a fork (its ``pthread_atfork`` handler), the child never starts one.
Setting the count in the child instead would make OpenBLAS start its pool anew there,
leaving an idle thread in every process. Libraries are found with ``threadpoolctl``
(once, then cached: looking them up costs a few ms); an OpenMP runtime, if one is
loaded, is limited the same way. A child forked before numpy was imported gets
``OPENBLAS_NUM_THREADS=1`` and ``OMP_NUM_THREADS=1`` (unless set) in its environment
instead, which the libraries read when they load (``in_the_child``).

>>> restore = one_thread_for_a_child()
>>> {lib.num_threads for lib in _pools()} <= {1}
True
>>> restore()
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable

from threadpoolctl import LibController, ThreadpoolController

_controller: ThreadpoolController | None = None


def _pools() -> list[LibController]:
    """The thread pools of the BLAS and OpenMP libraries loaded in this process."""
    global _controller
    if _controller is None or (not _controller.lib_controllers and "numpy" in sys.modules):
        _controller = ThreadpoolController()  # again once numpy has loaded its BLAS
    return list(_controller.lib_controllers)


def one_thread_for_a_child() -> Callable[[], None]:
    """Set every thread pool of this process to one thread, for a child about to be
    forked; returns what puts the old counts back (the parent calls it after the fork,
    the child never does)."""
    old = [(lib, lib.num_threads) for lib in _pools()]
    changed = [(lib, n) for lib, n in old if n != 1]
    for lib, _ in changed:
        lib.set_num_threads(1)

    def restore() -> None:
        for lib, n in changed:
            lib.set_num_threads(n)

    return restore


ONE_THREAD_ENV = {"OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1"}


def one_thread_env(env: dict[str, str]) -> dict[str, str]:
    """``env`` for a fresh interpreter that should run its BLAS on one thread (values
    already in ``env`` are kept): the libraries read these when numpy loads them."""
    return {**ONE_THREAD_ENV, **env}


def in_the_child() -> None:
    """In a forked child: if no BLAS is loaded yet, make the one numpy will load start
    with one thread (an explicit setting in the environment is kept)."""
    if "numpy" not in sys.modules:
        before_numpy()


def before_numpy() -> None:
    """Make the BLAS that numpy will load into this process start with one thread (an
    explicit setting in the environment is kept). Only works before numpy is imported:
    ``qnodeos node`` and ``qdevice`` (the command or ``python -m``) call it when
    the command line module loads, before anything imports numpy."""
    for k, v in ONE_THREAD_ENV.items():
        os.environ.setdefault(k, v)
