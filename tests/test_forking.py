"""qnodeos.runtime.forking: forked children, their lifelines and exit codes, awaited from trio."""

from __future__ import annotations

import os
import signal
import time

import pytest
import trio

from qnodeos.runtime.forking import fork


async def test_a_child_ends_when_its_lifeline_closes_and_many_tasks_can_wait() -> None:
    child = fork(lambda lifeline: 7 if os.read(lifeline, 1) == b"" else 0)
    codes: list[int] = []

    async def waiter() -> None:
        codes.append(await child.wait())

    async with trio.open_nursery() as nursery:
        for _ in range(3):
            nursery.start_soon(waiter)
        await trio.sleep(0.05)
        assert codes == [] and child.poll() is None
        child.close_lifeline()
    assert codes == [7, 7, 7]


async def test_a_signal_gives_a_negative_code_and_an_exception_code_1() -> None:
    sleeper = fork(lambda lifeline: time.sleep(30))
    sleeper.terminate()
    assert await sleeper.wait() == -signal.SIGTERM
    sleeper.kill()  # reaped: nothing is signalled any more

    def fail(lifeline: int) -> int:
        os.dup2(os.open(os.devnull, os.O_WRONLY), 2)  # keep the traceback out of the test log
        raise RuntimeError("boom")

    assert await fork(fail).wait() == 1


async def test_a_later_child_does_not_hold_an_earlier_childs_lifeline() -> None:
    first = fork(lambda lifeline: len(os.read(lifeline, 1)))
    second = fork(lambda lifeline: len(os.read(lifeline, 1)))
    first.close_lifeline()  # if `second` held a copy of it, `first` would never see EOF
    with trio.fail_after(5):
        assert await first.wait() == 0
    second.close_lifeline()
    assert await second.wait() == 0


async def test_a_child_runs_its_blas_on_one_thread_and_the_parent_keeps_its_own() -> None:
    import numpy as np
    from threadpoolctl import threadpool_info

    def before() -> list[int]:
        return [lib["num_threads"] for lib in threadpool_info()]

    parent = before()

    def busy(lifeline: int) -> int:
        a = np.ones((400, 400), dtype=complex)
        a @ a  # a product big enough for OpenBLAS to use every thread it may
        threads = len(os.listdir("/proc/self/task"))  # a forked child starts with one
        counts = set(before())
        return 0 if threads == 1 and counts <= {1} else 10 * threads + max(counts)

    assert await fork(busy).wait() == 0
    assert before() == parent


def _fresh(code: str) -> str:
    """What a fresh interpreter running ``code`` prints, with no BLAS thread setting in
    its environment."""
    import subprocess
    import sys

    unset = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS")
    env = {k: v for k, v in os.environ.items() if k not in unset}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    return out.stdout.strip()


def test_a_fresh_node_interpreter_starts_numpy_with_one_blas_thread() -> None:
    """What ``qnodeos node`` and ``qdevice`` do first (``blas.before_numpy``)."""
    code = (
        "from qnodeos.runtime.blas import before_numpy\n"
        "before_numpy()\n"
        "import os, numpy as np\n"
        "a = np.ones((400, 400), dtype=complex)\n"
        "a @ a\n"
        "print(len(os.listdir('/proc/self/task')))\n"
    )
    assert _fresh(code) == "1"


@pytest.mark.parametrize("argv, want", [("node", "1"), ("qdevice", "1"), ("run", "None")])
def test_the_command_line_sets_one_blas_thread_for_node_processes(argv: str, want: str) -> None:
    """The installed ``qnodeos`` command and ``python -m qnodeos`` both load the command
    line module first: for ``node`` and ``qdevice`` it asks for one BLAS thread before
    numpy loads; other commands keep the machine's default."""
    code = (
        "import sys\n"
        f"sys.argv = ['qnodeos', {argv!r}]\n"
        "import qnodeos.facade.cli, os\n"
        "print(os.environ.get('OPENBLAS_NUM_THREADS'))\n"
    )
    assert _fresh(code) == want
