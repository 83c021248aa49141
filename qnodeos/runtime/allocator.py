"""A fixed malloc mmap threshold in the quantum process (glibc Linux only).

Every device op returns a fresh numpy array of its state group's size. glibc serves
an allocation above its mmap threshold (128 KiB at start: a density matrix of 7 qubits
and up) by a new mapping, whose pages the kernel then faults in one by one, and gives
it back to the OS when freed; faulting the pages in costs more than the arithmetic (an
8-qubit mixed row 28 µs per op with 137k page faults, 16 µs with 4: docs/performance.md).
glibc raises the threshold by itself only when a larger mapped block is freed, so the
same code measured twice as slow in one process as in another.

How this works. ``roomy_heap`` calls ``mallopt(M_MMAP_THRESHOLD, 32 MiB)`` and
``mallopt(M_TRIM_THRESHOLD, 128 MiB)`` through ctypes, what the environment variables
``MALLOC_MMAP_THRESHOLD_`` / ``MALLOC_TRIM_THRESHOLD_`` do at start-up (which cannot
reach a process already forked): arrays up to 32 MiB (a 10-qubit density matrix is 16
MiB) come from the heap and their pages are kept for the next op. Only a quantum
process whose device has 7 qubits or more calls it (``needs_room``), once at start
(``testbed.node.qdevice_main``: the forked child and ``qnodeos qdevice``): a small
node's arrays never reach the threshold, so it has nothing to gain, and a heap that
keeps freed blocks can only hold more (measured on a 32-node chain of 2-qubit nodes,
all calling it: no growth beyond the runs' spread, docs/performance.md).
Deterministic mode, all nodes in the caller's process, leaves the caller's allocator
alone. Elsewhere than glibc (musl, macOS) it does nothing and says so by returning
False. An explicit ``MALLOC_MMAP_THRESHOLD_`` / ``MALLOC_TRIM_THRESHOLD_`` in the
environment is kept.

>>> MMAP_THRESHOLD // 2**20, TRIM_THRESHOLD // 2**20  # MiB
(32, 128)
>>> needs_room(6), needs_room(7)
(False, True)
"""

from __future__ import annotations

import ctypes
import os
import platform
import sys

M_TRIM_THRESHOLD = -1  # glibc's malloc.h
M_MMAP_THRESHOLD = -3
MMAP_THRESHOLD = 32 * 1024 * 1024  # glibc's largest (HEAP_MAX_SIZE / 2 on 64-bit)
TRIM_THRESHOLD = 128 * 1024 * 1024
ENV = {"MALLOC_MMAP_THRESHOLD_": M_MMAP_THRESHOLD, "MALLOC_TRIM_THRESHOLD_": M_TRIM_THRESHOLD}


def needs_room(qubits: int) -> bool:
    """Whether a device of ``qubits`` qubits makes arrays that glibc would map afresh:
    a density matrix of all of them (complex, 16 bytes an entry) above glibc's starting
    mmap threshold, 128 KiB, which is 7 qubits and up. A smaller node gains nothing
    (and its heap would keep blocks glibc gives back)."""
    return bool(16 * 4**qubits > 128 * 1024)


def glibc() -> ctypes.CDLL | None:
    """This process's C library, if it is glibc on Linux (else None)."""
    if not sys.platform.startswith("linux") or platform.libc_ver()[0] != "glibc":
        return None
    try:
        return ctypes.CDLL("libc.so.6")
    except OSError:
        return None


def roomy_heap() -> bool:
    """Fix this process's mmap and trim thresholds (see the module's docstring);
    True if glibc took both (or the environment set them already), False elsewhere."""
    libc = glibc()
    if libc is None:
        return False
    wanted = {M_MMAP_THRESHOLD: MMAP_THRESHOLD, M_TRIM_THRESHOLD: TRIM_THRESHOLD}
    for var, param in ENV.items():
        if var in os.environ:  # the user's own setting, which glibc read at start-up
            del wanted[param]
    return all(libc.mallopt(param, value) == 1 for param, value in wanted.items())
