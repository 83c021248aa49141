"""SquidASM on qnodeos: programs and scripts written for SquidASM (QuTech's application
SDK, which needs NetSquid) run unchanged on qnodeos nodes (``qnodeos squidasm
SCRIPT.py``). See docs/squidasm.md.

- ``program``: ``Program``, ``ProgramMeta``, ``ProgramContext``;
- ``config``: ``StackNetworkConfig`` and its parts, from Python or ``config.yaml``,
  and their mapping onto a qnodeos network (``to_network``);
- ``run``: ``run(config=..., programs=..., num_times=N)``, in this process on a
  simulated clock (``host`` runs each program as the app of its stack, ``stack``
  gives it its connection and sockets);
- ``util``, ``routines``, ``common``: what SquidASM's examples import from
  ``squidasm.util`` and ``squidasm.sim.stack.common``;
- ``shim``: makes ``import squidasm...`` give these; ``script``: the command.

Needs the netqasm package: ``pip install 'qnodeos[netqasm]'``.
"""
