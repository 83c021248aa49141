"""Deterministic mode: a whole network inside one trio run, over mem:// sockets.

The kernel, quantum process and SDK code are exactly those of a real run; only the
sockets are in-memory, so under ``trio.testing.MockClock`` device time, leases and
timeouts are deterministic and instant. Use it in tests and notebooks:

    async with local_network(parse_network(TEXT)) as net:
        async with sdk.connect("alice", app="a", qubits=1, endpoint=net["alice"]) as node:
            ...
"""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import trio

from qnodeos.config.network import NetworkConfig, NodeConfig
from qnodeos.kernel.service import NodeService
from qnodeos.qdevice.service import serve_device
from qnodeos.runtime.transport import forget_mem


def in_memory(cfg: NodeConfig, net: str) -> NodeConfig:
    """``cfg`` with mem:// endpoints unique to network ``net``."""
    return dataclasses.replace(
        cfg,
        app_endpoint=f"mem://{net}/{cfg.name}/app",
        qdevice_endpoint=f"mem://{net}/{cfg.name}/qdevice",
        peer_endpoint=f"mem://{net}/{cfg.name}/peer",
        qpeer_endpoint=f"mem://{net}/{cfg.name}/qpeer",
    )


@asynccontextmanager
async def local_network(cfg: NetworkConfig) -> AsyncIterator[dict[str, str]]:
    """Run every node of ``cfg`` in this trio run; yields node name -> app endpoint.
    ``service(endpoint)`` gives the node's service, to inspect kernel state."""
    services: dict[str, NodeService] = {}
    async with trio.open_nursery() as nursery:
        endpoints: dict[str, str] = {}
        mems = {n: in_memory(c, cfg.name) for n, c in cfg.nodes.items()}
        for name in cfg.nodes:
            mem = mems[name]
            links = cfg.links_of(name)
            delays = {n: cfg.delay(name, n) for n in cfg.nodes if n != name}
            # any quantum process may have to send a state group to any other
            qpeers = {n: m.qpeer_endpoint for n, m in mems.items() if n != name and cfg.links}
            await nursery.start(serve_device, mem, links, qpeers, delays)
            svc = NodeService(
                mem,
                {n: c.peer_endpoint for n, c in mems.items() if n != name},
                links=links,
                topology=cfg.topology(),
                protocol=cfg.protocol,
                protocol_args=cfg.protocol_args,
                delays=delays,
                clock=trio.current_time,
                measure_cpu=False,  # every node in this process: runs must repeat exactly
                fail_fast=True,  # a kernel bug ends the run (else it could wait forever)
            )
            await nursery.start(svc.serve)
            services[name] = svc
            endpoints[name] = mem.app_endpoint
        _SERVICES.update({ep: services[n] for n, ep in endpoints.items()})
        try:
            yield endpoints
        finally:
            nursery.cancel_scope.cancel()
            for ep in endpoints.values():
                _SERVICES.pop(ep, None)
            forget_mem(f"mem://{cfg.name}/")


_SERVICES: dict[str, NodeService] = {}


def service(endpoint: str) -> NodeService:
    """The running NodeService behind a local endpoint (to inspect kernel state)."""
    return _SERVICES[endpoint]
