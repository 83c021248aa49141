"""Reaching a Dask cluster: ``--cluster ADDRESS`` for ``qnodeos sweep`` (and the Python API).

Dask (``distributed``) is an optional extra (``pip install 'qnodeos[cluster]'``),
imported only when a cluster is asked for (``qnodeos.testbed.daskclient``): ``qnodeos
run`` on one machine never loads it.

A sweep point reserves cores on the worker that runs it through Dask's *worker
resources*: workers say what they offer (``dask worker ADDRESS --resources cores=4``,
``LocalCluster(resources={"cores": 4})``), and each point asks for ``cores`` of them,
so a worker runs only as many real-time runs at once as it has cores for. A cluster
where no worker offers that many is refused at once, not left waiting forever.
"""

from __future__ import annotations

from concurrent.futures import Executor
from typing import Any

from qnodeos.testbed.daskclient import RESOURCE, connect, distributed

from ..config.network import NetworkConfig
from ..errors import ConfigError

__all__ = ["RESOURCE", "connect", "cores_needed", "distributed", "offered", "sweep_executor"]

def cores_needed(cfg: NetworkConfig, deterministic: bool) -> int:
    """The cores one run of ``cfg`` should have to itself: one per node in real time
    (its quantum process keeps pace with the wall clock), one for a deterministic run
    (a single process)."""
    return 1 if deterministic else max(1, len(cfg.nodes))


def offered(client: Any) -> dict[str, float]:
    """Each worker's ``cores`` resource (0 where it declares none), by address."""
    workers = client.scheduler_info(n_workers=-1)["workers"]
    return {addr: float(w.get("resources", {}).get(RESOURCE, 0)) for addr, w in workers.items()}


def sweep_executor(client: Any, cores: int) -> tuple[Executor, int]:
    """An executor running each task with ``cores`` cores reserved, and how many such
    tasks the cluster can run at once (ConfigError if none)."""
    if not 1 <= cores <= 4096:
        raise ConfigError(f"--cores {cores}: not in 1..4096")
    have = offered(client)
    slots = sum(int(c // cores) for c in have.values())
    if slots == 0:
        seen = ", ".join(f"{a}: {c:g}" for a, c in have.items()) or "no workers"
        raise ConfigError(
            f"no worker of the cluster offers {cores} {RESOURCE} (each run of this network "
            f"reserves that many; workers offer: {seen}); start workers with "
            f"`dask worker ADDRESS --resources {RESOURCE}=N`, N >= {cores}"
        )
    executor: Executor = client.get_executor(resources={RESOURCE: cores}, pure=False)
    return executor, slots
