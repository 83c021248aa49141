"""Who is at the other end of a socket: CURVE keys, ZAP authentication, identities.

How it works. ``qnodeos keys NET.toml`` writes a key pair per node (``nodes/NAME.key``
public, ``nodes/NAME.key_secret`` secret) and per app name (``apps/NAME.key[_secret]``)
into a directory the network file names (``keys = "DIR"``). With keys configured:

- every tcp endpoint, and every node-to-node endpoint (peer, qpeer, qdevice) on ipc
  too, speaks CURVE: encrypted, and the server knows the client's public key;
- a ZAP handler (pyzmq's ``zmq.auth.Authenticator``, driven by our own event loops)
  accepts a client only if its key is listed for that endpoint (domain): other nodes'
  keys on peer and qpeer endpoints, the node's own key on its qdevice endpoint, app
  keys on the app endpoint, and names it ``node:NAME`` or ``app:NAME``;
- every message carries that name (zmq's ``User-Id`` property), and the receivers
  compare it with what the message claims (``from_node``, ``frm``, the app name it
  registered), so a sender's identity comes from its key, never from a field.

Without keys, identities are taken from message fields; that is safe only where every
process that can reach an endpoint is trusted: ipc endpoints in a runtime directory that
only this user can enter (same-user trust), or a closed test network.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Coroutine, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import zmq
import zmq.auth
from zmq.utils import z85

from ..errors import ConfigError

APP, PEER, QPEER, QDEVICE = "app", "peer", "qpeer", "qdevice"  # ZAP domains


def node_id(name: str) -> str:
    return f"node:{name}"


def app_id(name: str) -> str:
    return f"app:{name}"


@dataclass(frozen=True)
class KeyPair:
    public: bytes  # z85
    secret: bytes | None  # z85; None where only the public key is known


@dataclass
class KeyStore:
    """The keys in directory ``root`` (as ``qnodeos keys`` lays them out)."""

    root: Path
    _cache: dict[Path, KeyPair] = field(default_factory=dict)

    def _load(self, path: Path, secret: bool) -> KeyPair:
        got = self._cache.get(path)
        if got is None:
            if not path.exists():
                hint = "run `qnodeos keys` for this network" if secret else "is it listed?"
                raise ConfigError(f"key file {path} does not exist; {hint}")
            if secret:
                mode = path.stat().st_mode
                if mode & (stat.S_IRWXG | stat.S_IRWXO):
                    raise ConfigError(
                        f"secret key {path} can be read by other users (mode "
                        f"{stat.S_IMODE(mode):o}); chmod 600 it"
                    )
            try:
                public, sec = zmq.auth.load_certificate(path)
            except (OSError, ValueError) as exc:
                raise ConfigError(f"cannot read key file {path}: {exc}") from None
            got = self._cache[path] = KeyPair(public, sec)
        return got

    def node(self, name: str, *, secret: bool = False) -> KeyPair:
        return self._load(self.root / "nodes" / f"{name}.key{'_secret' if secret else ''}", secret)

    def app(self, name: str, *, secret: bool = False) -> KeyPair:
        return self._load(self.root / "apps" / f"{name}.key{'_secret' if secret else ''}", secret)

    def app_secret_exists(self, name: str) -> bool:
        return (self.root / "apps" / f"{name}.key_secret").exists()

    def app_names(self) -> list[str]:
        folder = self.root / "apps"
        return sorted(p.stem for p in folder.glob("*.key")) if folder.is_dir() else []


def make_keys(root: Path, nodes: Iterable[str], apps: Iterable[str]) -> list[Path]:
    """Write a key pair for each node and app name that has none yet; returns the new
    public key files. Secret files are readable by this user only."""
    made = []
    for sub, names in (("nodes", nodes), ("apps", apps)):
        folder = root / sub
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        os.chmod(root, 0o700)
        os.chmod(folder, 0o700)
        for name in names:
            if (folder / f"{name}.key_secret").exists():
                continue
            old = os.umask(0o077)
            try:
                public, _ = zmq.auth.create_certificates(folder, name)
            finally:
                os.umask(old)
            made.append(Path(public))
    return made


@dataclass(frozen=True, kw_only=True)
class Curve:
    """CURVE settings of one socket: our key pair; for a client, the server's key; for a
    server, the ZAP domain its clients are checked in."""

    me: KeyPair
    server: KeyPair | None = None
    domain: str = ""


def guarded(url: str, domain: str, keys: KeyStore | None) -> bool:
    """Whether the endpoint ``url`` of kind ``domain`` speaks CURVE: with keys, every
    tcp endpoint, and node-to-node endpoints on ipc too (apps on ipc are same-user
    trust: they need no key)."""
    if keys is None or url.startswith("mem://"):
        return False
    return url.startswith("tcp://") or domain != APP


def server_side(keys: KeyStore | None, node: str, url: str, domain: str) -> Curve | None:
    """CURVE settings for node ``node`` listening at ``url`` (None: plain)."""
    if keys is None or not guarded(url, domain, keys):
        return None
    return Curve(me=keys.node(node, secret=True), domain=domain)


def client_side(
    keys: KeyStore | None, me: KeyPair | None, server_node: str, url: str, domain: str
) -> Curve | None:
    """CURVE settings for connecting, with key pair ``me``, to node ``server_node``'s
    endpoint ``url`` of kind ``domain`` (None: plain)."""
    if keys is None or me is None or not guarded(url, domain, keys):
        return None
    return Curve(me=me, server=keys.node(server_node))


def serve_curve(sock: zmq.Socket[bytes], me: KeyPair, domain: str) -> None:
    """Make ``sock`` (before bind) a CURVE server in ZAP domain ``domain``."""
    assert me.secret is not None
    sock.setsockopt(zmq.ZAP_DOMAIN, domain.encode())
    sock.setsockopt(zmq.CURVE_SERVER, 1)
    sock.setsockopt(zmq.CURVE_SECRETKEY, me.secret)
    sock.setsockopt(zmq.CURVE_PUBLICKEY, me.public)


def connect_curve(sock: zmq.Socket[bytes], me: KeyPair, server: KeyPair) -> None:
    """Make ``sock`` (before connect) a CURVE client of the server with key ``server``."""
    assert me.secret is not None
    sock.setsockopt(zmq.CURVE_SECRETKEY, me.secret)
    sock.setsockopt(zmq.CURVE_PUBLICKEY, me.public)
    sock.setsockopt(zmq.CURVE_SERVERKEY, server.public)


class Authenticator(zmq.auth.Authenticator):
    """Accepts a CURVE client on a domain only if its key is listed there, and names it
    (the ``User-Id`` every message from it then carries). Refuses NULL clients on the
    domains it guards."""

    def __init__(self, context: zmq.Context[zmq.Socket[bytes]]) -> None:
        super().__init__(context)
        self.allowed: dict[str, dict[bytes, str]] = {}  # domain -> z85 key -> identity
        self.refused = 0

    def guard(self, domain: str, keys: dict[bytes, str]) -> None:
        """Allow on ``domain`` exactly the clients with these keys (z85 -> identity)."""
        self.allowed[domain] = dict(keys)
        self.configure_curve_callback(domain, self)

    def callback(self, domain: str, key: bytes) -> bool:
        ok = key in self.allowed.get(domain, {})
        self.refused += not ok
        return ok

    def curve_user_id(self, client_public_key: bytes) -> str:
        z = z85.encode(client_public_key)
        for keys in self.allowed.values():
            if z in keys:
                return keys[z]
        return "unknown"


def run_now(coro: Coroutine[Any, Any, None]) -> None:
    """Run a coroutine that never suspends (the authenticator's handler with our
    synchronous key check) from plain blocking code."""
    try:
        coro.send(None)
    except StopIteration:
        return
    coro.close()
    raise RuntimeError("the ZAP handler suspended; it must not")


def user_of(frame: zmq.Frame) -> str | None:
    """The authenticated identity a received frame carries (None without CURVE)."""
    try:
        user = frame.get("User-Id")
    except zmq.ZMQError:
        return None
    return user if isinstance(user, str) and user else None
