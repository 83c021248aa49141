"""SquidASM's ``run`` (``squidasm.run.stack.run``) on qnodeos nodes.

``run(config=..., programs={stack: program}, num_times=N)`` maps the stack network
config onto a qnodeos network (``qnodeos.squidasm.config.to_network``), runs it in
this process on a simulated clock (``qnodeos.Network.run(deterministic=True)``: real
kernels, quantum processes, link layer and physics, no real time), each program as the
app named after its stack, and returns what SquidASM returns: one list per stack, in
the config's order, holding what the stack's program returned in each of the N runs
(an empty list for a stack without a program).

Each call draws new seeds (a counter from ``$QNODEOS_SQUIDASM_SEED``, default 0), so
the calls of one script differ while the script as a whole is reproducible.
"""

from __future__ import annotations

import itertools
import os
from typing import Any

from ..errors import ConfigError
from .config import StackNetworkConfig, to_network
from .host import RUNS, Run
from .program import Program

__all__ = ["run"]

_CALLS = itertools.count()
TIMEOUT_S = 3600.0  # simulated seconds a run may take


def run(
    config: StackNetworkConfig,
    programs: dict[str, Program],
    num_times: int = 1,
) -> list[list[dict[str, Any]]]:
    """Run ``programs`` (stack name -> program) ``num_times`` times on the network
    ``config``; per stack (config order), the results of its program's runs."""
    from ..facade.api import Network

    cfg = StackNetworkConfig.from_dict(config)
    if not isinstance(num_times, int) or not 1 <= num_times <= 1_000_000:
        raise ValueError(f"num_times = {num_times!r}; give 1..1000000 runs")
    call = next(_CALLS)
    seed = int(os.environ.get("QNODEOS_SQUIDASM_SEED", "0")) * 1_000_003 + call * 1_000
    net = to_network(cfg, name=f"squidasm-{call}", seed=seed)
    stacks = [s.name for s in cfg.stacks]
    unknown = [s for s in programs if s not in stacks]
    if unknown:
        raise ConfigError(
            f"programs for {', '.join(map(repr, unknown))}, which the config has no stack "
            f"for (stacks: {', '.join(stacks)})"
        )
    key = f"run-{os.getpid()}-{call}"
    r = Run(
        programs=dict(programs),
        devices={s.name: str(s.qdevice_typ).lower() for s in cfg.stacks},
        stacks=stacks,
    )
    net["apps"] = []
    for stack, program in programs.items():
        meta = program.meta
        have = int(net["nodes"][stack]["qubits"])
        if not 1 <= meta.max_qubits <= have:
            raise ConfigError(
                f"program {meta.name!r} on {stack} asks for max_qubits = {meta.max_qubits}; "
                f"the stack's device has {have} qubit(s)"
            )
        # SquidASM does not hold a program to max_qubits (netqasm's NV transpiler and
        # toolbox use qubits it does not count): it gets its stack's whole device
        quota = have
        net["apps"].append(
            {
                "name": stack,
                "node": stack,
                "module": "qnodeos.squidasm.host",
                "args": {"run": key, "stack": stack, "num_times": num_times,
                         "qubits": quota},
            }  # fmt: skip
        )
    RUNS[key] = r
    try:
        res = Network.from_dict(net, source=f"<squidasm run {call}>").run(
            deterministic=True, timeout=TIMEOUT_S
        )
    finally:
        RUNS.pop(key, None)
    if r.error is not None:
        stack, exc = r.error
        raise exc
    errors = {k: v["error"] for k, v in res.apps.items() if "error" in v}
    if errors or "_error" in res.data:
        why = res.data.get("_error") or "; ".join(f"{k}: {v}" for k, v in errors.items())
        raise RuntimeError(f"the SquidASM programs did not finish: {why}")
    return [list(r.results.get(s, [])) for s in stacks]
