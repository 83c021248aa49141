"""Network files (TOML): nodes, their devices and parameters, and the apps to run.

    name = "lab"                         # network name (used in default endpoints)
    keys = "keys"                        # CURVE keys made by `qnodeos keys` (relative to
                                         # this file); omit for none (see security.py)
    [nodes.alice]
    device = "nv"                        # generic | nv | trapped_ion
    qubits = 3                           # physical qubits in all (NV: electron + carbons)
    speed = 1.0                          # device ns per wall ns; inf = as fast as possible
    seed = 7                             # RNG seed of the device (omit: random)
    policy = "fcfs"                      # fcfs | priority | edf
    placement = "lowest"                 # new qubits: lowest | memory_first (see memory.py)
    lease_s = 1.0                        # an app silent this long is failed and freed
    budget = 1000000                     # instructions per block before it is stopped
    max_wait_s = 10.0                    # longest single wait in a block (device s)
    max_block_s = 60.0                   # most device time one block may take
    starvation_s = 0.5                   # a block passed over this long goes first
    peer_timeout_s = 1.5                 # a linked node silent this long is gone
    exclusive_apps = ["solo"]            # apps that may have the device to themselves
    max_apps = 256                       # apps connected at once (more are refused)
    app_endpoint = "tcp://127.0.0.1:5555"      # default: ipc:// in the runtime dir
    qdevice_endpoint = "ipc:///tmp/x.sock"     # default: ipc:// in the runtime dir
    peer_endpoint = "tcp://10.0.0.5:5556"      # where other nodes reach this one
    qpeer_endpoint = "tcp://10.0.0.5:5557"     # where other quantum processes reach ours
    peer_bind = "tcp://0.0.0.0:5556"           # what it binds, if not the above (NAT, pods)
    qpeer_bind = "tcp://0.0.0.0:5557"
    host = "10.0.0.5"                          # --cluster: run it on a worker of this host
    [nodes.alice.params.kinds.electron]  # device parameter overrides
    t2_ns = 3e8
    [[links]]                            # heralded entanglement between two nodes
    nodes = ["alice", "bob"]             # the first hosts the heralding station
    model = "depolarise"                 # perfect | depolarise | single_click | double_click
    cycle_ns = 10000                     # one attempt, device ns
    fidelity = 0.9                       # model parameters (see qnodeos.netlink.models)
    p_success = 0.01
    delay_s = 0.0                        # classical delay each way, seconds
    length_km = 25.0                     # fibre between them (omit: side by side); loss,
                                         # attempt cycle and delay_s follow (fibre.py)
    attenuation_db_km = 0.2              # fibre loss (default 0.2)
    refractive_index = 1.44              # light at c / 1.44 (default)
    station = "midpoint"                 # heralding station: midpoint | one node's name
    seed = 3                             # RNG seed of the station (omit: random)
    [[apps]]
    node = "alice"
    module = "qnodeos.apps.ramsey"               # a module with `async def main(node, **args)`
    args = { shots = 200 }

Every key is checked; an unknown or ill-typed one is a ConfigError naming it.
"""

from __future__ import annotations

import math
import os
import re
import stat
import tempfile
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from qnodeos.netlink.routing import ROUTE_COSTS, Topology, link_cost

from ..errors import ConfigError
from ..hardware.params import build
from ..hardware.specs import DeviceSpec, with_overrides
from ..kernel.memory import PLACEMENTS
from ..kernel.scheduler import POLICIES
from ..runtime.security import KeyStore
from .chain import expand as expand_chain
from .fields import get as _get
from .fields import seconds as _seconds
from .fields import unknown as _unknown
from .links import LINK_KEYS as LINK_KEYS
from .links import MAX_PERIOD as MAX_PERIOD
from .links import LinkConfig as LinkConfig
from .links import check_schedules, parse_link

_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_-]{0,31}$")
# the keys a node's, a link's and an app's table may have (the schema lists the same)
NODE_KEYS = {
    "device",
    "qubits",
    "speed",
    "seed",
    "policy",
    "placement",
    "lease_s",
    "budget",
    "app_endpoint",
    "qdevice_endpoint",
    "peer_endpoint",
    "qpeer_endpoint",
    "params",
    "max_wait_s",
    "max_block_s",
    "starvation_s",
    "peer_timeout_s",
    "exclusive_apps",
    "max_apps",
    "peer_bind",
    "qpeer_bind",
    "host",
}
MAX_APPS = 4096  # highest max_apps a network file may set
APP_KEYS = {"node", "module", "args", "name"}


@dataclass(frozen=True, kw_only=True)
class NodeLimits:
    """How much of the shared device one app may take (device seconds): a single wait,
    one block in all, and how long a queued block may be passed over by higher-priority
    ones before it goes first (wall seconds); which apps may have it to themselves."""

    max_wait_s: float = 10.0
    max_block_s: float = 60.0
    starvation_s: float = 0.5
    exclusive_apps: frozenset[str] = frozenset()  # app names that may hold the device alone
    max_apps: int = 256  # apps connected at once: each costs the node memory and leases


@dataclass(frozen=True, kw_only=True)
class NodeConfig:
    name: str
    device: DeviceSpec
    speed: float = 1.0
    seed: int | None = None
    policy: str = "fcfs"
    placement: str = "lowest"  # where new qubits go (kernel/memory.py)
    lease_s: float = 1.0
    budget: int = 1_000_000
    limits: NodeLimits = field(default_factory=lambda: NodeLimits())
    peer_timeout_s: float = 1.5  # a linked node silent this long is taken as gone
    app_endpoint: str
    qdevice_endpoint: str
    peer_endpoint: str
    qpeer_endpoint: str = ""
    # what the node binds, when not the endpoint peers dial (behind NAT, in a pod): ""
    # binds the endpoint itself (``bind_peer``, ``bind_qpeer``)
    peer_bind: str = ""
    qpeer_bind: str = ""
    host: str | None = None  # ``--cluster``: the host (worker) to run this node on
    keys: KeyStore | None = None  # CURVE keys of the network (``keys`` in the file)

    def plaintext(self) -> list[str]:
        """This node's tcp endpoints that carry plaintext (the network has no keys):
        anyone who can reach them can read and send its traffic."""
        if self.keys is not None:
            return []
        urls = {
            "app_endpoint": self.app_endpoint,
            "peer_endpoint": self.peer_endpoint,
            "qpeer_endpoint": self.qpeer_endpoint,
            "qdevice_endpoint": self.qdevice_endpoint,
        }
        return [f"{k} = {u}" for k, u in urls.items() if u.startswith("tcp://")]

    def plaintext_warning(self) -> str | None:
        """What to tell the user when this node's tcp traffic is unencrypted (None: it
        is not)."""
        bare = self.plaintext()
        if not bare:
            return None
        return (
            f"node {self.name!r} has no keys, so its tcp endpoint(s) {'; '.join(bare)} "
            f"carry plaintext that anyone who reaches them can read and forge: make keys "
            f"with `qnodeos keys NETWORK.toml` and name them with keys = ... in the file"
        )

    @property
    def bind_peer(self) -> str:
        """Where the classical process listens for other nodes."""
        return self.peer_bind or self.peer_endpoint

    @property
    def bind_qpeer(self) -> str:
        """Where the quantum process listens for other quantum processes."""
        return self.qpeer_bind or self.qpeer_endpoint

    def peers_of(self, net: NetworkConfig) -> dict[str, str]:
        """The other nodes of ``net`` and where their classical processes listen."""
        return {n: c.peer_endpoint for n, c in net.nodes.items() if n != self.name}


@dataclass(frozen=True, kw_only=True)
class AppConfig:
    name: str
    node: str
    module: str
    args: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, kw_only=True)
class NetworkConfig:
    name: str
    nodes: dict[str, NodeConfig]
    apps: list[AppConfig]
    source: str
    links: list[LinkConfig] = field(default_factory=list)
    keys: KeyStore | None = None
    # the network layer's protocol at repeaters ("module:Class", see netlink.protocols;
    # empty: the built-in swap-as-soon-as-possible) and its constructor's arguments
    protocol: str = ""
    protocol_args: dict[str, Any] = field(default_factory=dict)
    # what a path costs (netlink/routing.py): "hops", "rate" or "fidelity"
    route_cost: str = "hops"
    chain: tuple[str, ...] = ()  # a [chain]'s nodes in order (config/chain.py)

    def topology(self) -> Topology:
        """The quantum links, with what each costs a path under ``route_cost``."""
        links = [lk.nodes for lk in self.links]
        if self.route_cost == "hops":
            return Topology(links)
        return Topology(
            links, {frozenset(lk.nodes): link_cost(self.route_cost, lk.model) for lk in self.links}
        )

    def route(self, a: str, b: str) -> list[str] | None:
        """The path pairs between nodes ``a`` and ``b`` take (None: none): their link
        if they have one (the link layer makes those pairs), else the cheapest path."""
        if any(set(lk.nodes) == {a, b} for lk in self.links):
            return [a, b]
        return self.topology().path(a, b)

    def links_of(self, node: str) -> list[LinkConfig]:
        return [lk for lk in self.links if node in lk.nodes]

    def delay(self, a: str, b: str) -> float:
        """Classical delay (s) between nodes a and b: their link's, else 0."""
        return next((lk.delay_s for lk in self.links if set(lk.nodes) == {a, b}), 0.0)

    def node(self, name: str) -> NodeConfig:
        try:
            return self.nodes[name]
        except KeyError:
            raise ConfigError(
                f"{self.source}: no node named {name!r}; nodes: {', '.join(self.nodes)}"
            ) from None


def runtime_dir() -> Path:
    """Where default ipc endpoints live: $QNODEOS_RUNTIME_DIR or a per-user temp dir.

    Whoever can enter it can reach every node's endpoints as any app, so it must be
    ours and closed to everyone else (mode 0700); one that is not (pre-created by
    another user, say) is refused rather than used."""
    base = os.environ.get("QNODEOS_RUNTIME_DIR") or os.path.join(
        tempfile.gettempdir(), f"qnodeos-{os.getuid()}"
    )
    path = Path(base)
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    st = path.lstat()
    if not stat.S_ISDIR(st.st_mode) or st.st_uid != os.getuid():
        raise ConfigError(
            f"runtime directory {path} is not a directory owned by you (uid {os.getuid()}; "
            f"it belongs to uid {st.st_uid}): another user may have made it to reach your "
            f"nodes. Remove it, or set QNODEOS_RUNTIME_DIR to a directory of your own"
        )
    if stat.S_IMODE(st.st_mode) & 0o077:
        raise ConfigError(
            f"runtime directory {path} is open to other users (mode "
            f"{stat.S_IMODE(st.st_mode):o}); run `chmod 700 {path}` or set "
            f"QNODEOS_RUNTIME_DIR to a directory only you can enter"
        )
    return path


def _node(name: str, table: Any, net: str, src: str, keys: KeyStore | None) -> NodeConfig:
    where = f"{src}: nodes.{name}"
    if not _NAME.match(name):
        raise ConfigError(f"{where}: node name must match {_NAME.pattern}")
    if not isinstance(table, dict):
        raise ConfigError(f"{where}: expected a table")
    _unknown(where, table, NODE_KEYS)
    kind = _get(table, "device", str, where, "generic")
    qubits = _get(table, "qubits", int, where, None)
    try:
        spec = build(kind, qubits)
        params = _get(table, "params", dict, where, {})
        spec = with_overrides(spec, params)
    except ConfigError as exc:
        raise ConfigError(f"{where}: {exc}") from None
    speed = float(_get(table, "speed", (int, float), where, 1.0))
    if not speed > 0:
        raise ConfigError(f"{where}.speed: must be > 0 (inf for unlimited), got {speed}")
    policy = _get(table, "policy", str, where, "fcfs")
    if policy not in POLICIES:
        raise ConfigError(f"{where}.policy: unknown {policy!r}; known: {', '.join(POLICIES)}")
    placement = _get(table, "placement", str, where, "lowest")
    if placement not in PLACEMENTS:
        raise ConfigError(
            f"{where}.placement: unknown {placement!r}; known: {', '.join(PLACEMENTS)}"
        )
    lease = float(_get(table, "lease_s", (int, float), where, 1.0))
    if not 0.05 <= lease <= 3600 or math.isnan(lease):
        raise ConfigError(f"{where}.lease_s: must be in 0.05..3600, got {lease}")
    budget = _get(table, "budget", int, where, 1_000_000)
    if budget < 1:
        raise ConfigError(f"{where}.budget: must be >= 1, got {budget}")
    exclusive = _get(table, "exclusive_apps", list, where, [])
    if not all(isinstance(a, str) for a in exclusive):
        raise ConfigError(f"{where}.exclusive_apps: expected a list of app names")
    max_apps = _get(table, "max_apps", int, where, NodeLimits.max_apps)
    if not 1 <= max_apps <= MAX_APPS:
        raise ConfigError(f"{where}.max_apps: must be in 1..{MAX_APPS}, got {max_apps}")
    limits = NodeLimits(
        **{
            k: _seconds(table, k, where, getattr(NodeLimits, k), lo, hi)
            for k, lo, hi in (
                ("max_wait_s", 0.0, 3600.0),
                ("max_block_s", 1e-6, 86_400.0),
                ("starvation_s", 0.001, 3600.0),
            )
        },
        exclusive_apps=frozenset(exclusive),
        max_apps=max_apps,
    )
    rt = runtime_dir()
    return NodeConfig(
        name=name,
        device=spec,
        speed=speed,
        seed=_get(table, "seed", int, where, None),
        policy=policy,
        placement=placement,
        lease_s=lease,
        budget=budget,
        limits=limits,
        peer_timeout_s=_seconds(table, "peer_timeout_s", where, 1.5, 0.3, 3600.0),
        app_endpoint=_get(table, "app_endpoint", str, where, f"ipc://{rt}/{net}-{name}-app.sock"),
        qdevice_endpoint=_get(
            table, "qdevice_endpoint", str, where, f"ipc://{rt}/{net}-{name}-qdevice.sock"
        ),
        peer_endpoint=_dialable(
            _get(table, "peer_endpoint", str, where, f"ipc://{rt}/{net}-{name}-peer.sock"),
            f"{where}.peer_endpoint",
        ),
        qpeer_endpoint=_dialable(
            _get(table, "qpeer_endpoint", str, where, f"ipc://{rt}/{net}-{name}-qpeer.sock"),
            f"{where}.qpeer_endpoint",
        ),
        peer_bind=_bind(table, "peer", where),
        qpeer_bind=_bind(table, "qpeer", where),
        host=_get(table, "host", str, where, None),
        keys=keys,
    )


WILDCARDS = ("0.0.0.0", "*", "[::]", "::")


def _bind(table: dict[str, Any], kind: str, where: str) -> str:
    """``{kind}_bind``: "" when not given; else an endpoint of the same transport as
    ``{kind}_endpoint`` (both ends of a socket must agree on CURVE)."""
    bind: str = _get(table, f"{kind}_bind", str, where, "")
    said = table.get(f"{kind}_endpoint")
    if bind and (not isinstance(said, str) or said.partition("://")[0] != bind.partition("://")[0]):
        raise ConfigError(
            f"{where}.{kind}_bind: {bind!r} needs a {kind}_endpoint of the same transport "
            f"(where peers dial it), got {said!r}"
        )
    return bind


def _dialable(endpoint: str, where: str) -> str:
    """``endpoint`` if others can dial it: a wildcard address binds every interface but
    names none (a peer dialling ``tcp://0.0.0.0`` reaches itself)."""
    scheme, _, rest = endpoint.partition("://")
    host = rest.rpartition(":")[0]
    if scheme == "tcp" and host in WILDCARDS:
        key = where.rpartition(".")[2]
        bind = key.replace("endpoint", "bind")
        raise ConfigError(
            f"{where}: {endpoint!r} is where other nodes dial this one, and {host} names no "
            f"host to dial; give this host's address there, and to listen on every "
            f"interface set {bind} = {endpoint!r}"
        )
    return endpoint


def parse_toml(text: str, source: str) -> dict[str, Any]:
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{source}: not valid TOML: {exc}") from None


def parse_network(text: str, source: str = "<network>") -> NetworkConfig:
    """Parse a network file's text. Raises ConfigError naming the offending key."""
    data = expand_chain(parse_toml(text, source), source)
    _unknown(
        f"{source}: top level", data, {"name", "nodes", "apps", "links", "keys", "network", "chain"}
    )
    layer = _get(data, "network", dict, source, {})
    _unknown(f"{source}: network", layer, {"protocol", "args", "route_cost"})
    route_cost = _get(layer, "route_cost", str, f"{source}: network", "hops")
    if route_cost not in ROUTE_COSTS:
        raise ConfigError(
            f"{source}: network.route_cost: unknown {route_cost!r}; known: {', '.join(ROUTE_COSTS)}"
        )
    name = _get(data, "name", str, source, "qnodeos")
    if not _NAME.match(name):
        raise ConfigError(f"{source}: name {name!r} must match {_NAME.pattern}")
    nodes_t = _get(data, "nodes", dict, source, None)
    if not nodes_t:
        raise ConfigError(f"{source}: no [nodes.NAME] table; a network needs at least one node")
    keys = None
    keys_dir = _get(data, "keys", str, source, None)
    if keys_dir is not None:
        base = Path(source).parent if Path(source).exists() else Path.cwd()
        keys = KeyStore((base / keys_dir).resolve())
    nodes = {n: _node(n, t, name, source, keys) for n, t in nodes_t.items()}
    tables = _get(data, "links", list, source, [])
    own = len(tables) - max(len(data.get("chain", ())) - 1, 0)  # the rest are the chain's
    speeds = {n: c.speed for n, c in nodes.items()}
    links = []
    for i, t in enumerate(tables):
        try:
            links.append(parse_link(i, t, speeds, source))
        except ConfigError as exc:
            if i < own:
                raise
            raise ConfigError(f"{exc} (links[{i}] is the chain's, from chain.link)") from None
    check_schedules(links, source)
    seen: set[frozenset[str]] = set()
    for lk in links:
        pair = frozenset(lk.nodes)
        if pair in seen:
            raise ConfigError(f"{source}: two links between {lk.nodes[0]!r} and {lk.nodes[1]!r}")
        seen.add(pair)
    apps: list[AppConfig] = []
    for i, t in enumerate(_get(data, "apps", list, source, [])):
        where = f"{source}: apps[{i}]"
        if not isinstance(t, dict):
            raise ConfigError(f"{where}: expected a table")
        _unknown(where, t, APP_KEYS)
        node = _get(t, "node", str, where, None)
        module = _get(t, "module", str, where, None)
        if node is None or module is None:
            raise ConfigError(f"{where}: needs both 'node' and 'module'")
        if node not in nodes:
            raise ConfigError(f"{where}.node: no node named {node!r}; nodes: {', '.join(nodes)}")
        apps.append(
            AppConfig(
                name=_get(t, "name", str, where, f"{module.rsplit('.', 1)[-1]}-{i}"),
                node=node,
                module=module,
                args=_get(t, "args", dict, where, {}),
            )
        )
    return NetworkConfig(
        name=name, nodes=nodes, apps=apps, source=source, links=links, keys=keys,
        protocol=_get(layer, "protocol", str, f"{source}: network", ""),
        protocol_args=_get(layer, "args", dict, f"{source}: network", {}),
        route_cost=route_cost, chain=tuple(data.get("chain", ())),
    )  # fmt: skip


def read_network(path: str | os.PathLike[str]) -> str:
    """A network file's text (ConfigError if it cannot be read)."""
    try:
        return Path(path).read_text()
    except OSError as exc:
        raise ConfigError(f"cannot read network file {str(path)!r}: {exc.strerror}") from None


def load_network(path: str | os.PathLike[str]) -> NetworkConfig:
    """Read and parse a network file."""
    return parse_network(read_network(path), str(path))
