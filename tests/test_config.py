"""Network files: every mistake is a ConfigError naming the key."""

from __future__ import annotations

import math

import pytest

from qnodeos.config.network import parse_network
from qnodeos.errors import ConfigError


@pytest.mark.parametrize(
    "text, words",
    [
        ("name = ", "not valid TOML"),
        ("name = 'x'", "no [nodes.NAME] table"),
        ("[nodes.a]\ndevice = 'quantum-toaster'", "unknown device 'quantum-toaster'"),
        ("[nodes.a]\ncolour = 1", "unknown key(s) colour"),
        ("[nodes.a]\nqubits = 'many'", "nodes.a.qubits: expected int"),
        ("[nodes.a]\nqubits = 99", "qubits = 99 not in 1..16"),
        ("[nodes.a]\nspeed = 0", "speed: must be > 0"),
        ("[nodes.a]\npolicy = 'random'", "unknown 'random'"),
        ("[nodes.a]\nplacement = 'anywhere'", "nodes.a.placement: unknown 'anywhere'"),
        ("[nodes.a.params.kinds.qubit]\nt3_ns = 1", "kinds.qubit.t3_ns: unknown parameter"),
        ("[nodes.a.params.kinds.wire]\nt1_ns = 1", "kinds.wire: unknown (known: qubit)"),
        ("[nodes.a.params.kinds.qubit]\nt1_ns = 10\nt2_ns = 30", "T2 30.0 ns exceeds 2*T1"),
        ("[nodes.a.params.kinds.qubit.meas]\np01 = 1.5", "probability must be in [0, 1]"),
        ("[nodes.a.params.kinds.qubit]\nt1_ns = 'long'", "expected a number, got 'long'"),
        ("[nodes.a]\n[[apps]]\nnode = 'b'\nmodule = 'm'", "no node named 'b'"),
        ("[nodes.a]\n[[apps]]\nnode = 'a'", "needs both 'node' and 'module'"),
        ("[nodes.'a b']", "node name must match"),
        ("[nodes.a]\nlease_s = 0", "lease_s: must be in 0.05..3600"),
    ],
)
def test_config_errors_name_the_key(text: str, words: str) -> None:
    with pytest.raises(ConfigError, match=__import__("re").escape(words)):
        parse_network(text, "net.toml")


def test_overrides_reach_the_device() -> None:
    cfg = parse_network("""
[nodes.a]
device = "nv"
qubits = 4
speed = inf
[nodes.a.params.kinds.electron]
t2_ns = 1e9
meas = { p01 = 0.1 }
""")
    spec = cfg.node("a").device
    assert spec.num_qubits == 4 and spec.qubits[0] == "electron"
    assert spec.kinds["electron"].t2_ns == 1e9
    assert spec.kinds["electron"].meas is not None and spec.kinds["electron"].meas.p01 == 0.1
    assert spec.kinds["electron"].meas.p10 == 0.005  # untouched values keep their source
    assert math.isinf(cfg.node("a").speed)


def test_unknown_node_lookup_names_the_known_ones() -> None:
    with pytest.raises(ConfigError, match="no node named 'zed'; nodes: a"):
        parse_network("[nodes.a]").node("zed")


THREE = "[nodes.a]\n[nodes.b]\n[nodes.c]\n"


def _links(ab: str, bc: str = "") -> str:
    text = THREE + f"[[links]]\nnodes = ['a', 'b']\ncycle_ns = 1000\nschedule = {ab}\n"
    if bc:
        text += f"[[links]]\nnodes = ['b', 'c']\ncycle_ns = 1000\nschedule = {bc}\n"
    return text


@pytest.mark.parametrize(
    "text, words",
    [
        (_links("'weekly'"), 'links[0].schedule: expected "continuous" or a table'),
        (_links("{ bin_ns = 500, period = 2, bins = [0] }"), "links[0].schedule.bin_ns: 500 ns"),
        (_links("{ bin_ns = 5000, period = 2, bins = [2] }"), "bins: expected bin indices in 0..1"),
        (_links("{ bin_ns = 5000, period = 2, bins = [0, 0] }"), "names a bin twice"),
        (_links("{ bin_ns = 5000, period = 2 }"), "needs bin_ns, period and bins"),
        (_links("{ bin_ns = 5000, period = 2, bins = [0], x = 1 }"), "unknown key(s) x"),
        (
            _links(
                "{ bin_ns = 5000, period = 2, bins = [0] }",
                "{ bin_ns = 5000, period = 2, bins = [0, 1] }",
            ),
            "links[1].schedule.bins: bin(s) [0] are also links[0]'s, and both links reach node 'b'",
        ),
        (
            _links(
                "{ bin_ns = 5000, period = 2, bins = [0] }",
                "{ bin_ns = 4000, period = 2, bins = [1] }",
            ),
            "must use the same bin_ns and period",
        ),
    ],
)
def test_bad_schedules_name_the_key(text: str, words: str) -> None:
    with pytest.raises(ConfigError) as err:
        parse_network(text)
    assert words in str(err.value)


def test_a_good_schedule_is_parsed() -> None:
    cfg = parse_network(
        _links(
            "{ bin_ns = 5000, period = 4, bins = [0, 1] }",
            "{ bin_ns = 5000, period = 4, bins = [3] }",
        )
    )
    ab, bc = cfg.links
    assert ab.schedule is not None and ab.schedule.fraction == 0.5
    assert bc.schedule is not None and bc.schedule.bins == (3,)


@pytest.mark.parametrize(
    "text, words",
    [
        ("[nodes.a]\nqbits = 2", "unknown key(s) qbits (did you mean 'qubits'?)"),
        ("linkz = []\n[nodes.a]", "top level: unknown key(s) linkz (did you mean 'links'?)"),
        ("[nodes.a]\n[[apps]]\nnode = 'a'\nmodul = 'm'", "modul (did you mean 'module'?)"),
    ],
)
def test_a_mistyped_key_gets_the_nearest_valid_one(text: str, words: str) -> None:
    with pytest.raises(ConfigError) as err:
        parse_network(text)
    assert words in str(err.value)


def test_plaintext_tcp_without_keys_is_named_and_keys_silence_it(tmp_path) -> None:  # type: ignore[no-untyped-def]
    import dataclasses

    from qnodeos.runtime.security import KeyStore

    cfg = parse_network("""
[nodes.a]
device = "generic"
app_endpoint = "tcp://127.0.0.1:7001"
peer_endpoint = "tcp://127.0.0.1:7002"
[nodes.b]
device = "generic"
""")
    a, b = cfg.node("a"), cfg.node("b")
    text = a.plaintext_warning()
    assert text is not None and "node 'a' has no keys" in text
    assert "app_endpoint = tcp://127.0.0.1:7001" in text
    assert "peer_endpoint = tcp://127.0.0.1:7002" in text and "qnodeos keys" in text
    assert b.plaintext_warning() is None  # ipc endpoints in the user's runtime dir
    keyed = dataclasses.replace(a, keys=KeyStore(tmp_path))
    assert keyed.plaintext_warning() is None  # with keys every tcp endpoint is CURVE


def test_max_apps_is_checked() -> None:
    text = '[nodes.a]\ndevice = "generic"\nmax_apps = %s\n'
    assert parse_network(text % "8").node("a").limits.max_apps == 8
    assert parse_network('[nodes.a]\ndevice = "generic"\n').node("a").limits.max_apps == 256
    for bad in ("0", "5000"):
        with pytest.raises(ConfigError, match="nodes.a.max_apps: must be in 1..4096"):
            parse_network(text % bad)


CHAIN = """
[chain]
nodes = {n}
node = {{ device = "generic", qubits = 2, seed = 1 }}
link = {{ model = "depolarise", fidelity = 0.9, p_success = 0.1, cycle_ns = 1000, seed = 7 }}
{extra}
[[apps]]
node = "chain.last"
module = "qnodeos.apps.chain"
args = {{ role = "recv", me = "b", peer = "a" }}
"""


def test_a_chain_becomes_nodes_and_links_and_follows_set() -> None:
    from qnodeos.config.overrides import applied

    cfg = parse_network(CHAIN.format(n=4, extra=""))
    assert cfg.chain == ("n0", "n1", "n2", "n3")
    assert [lk.nodes for lk in cfg.links] == [("n0", "n1"), ("n1", "n2"), ("n2", "n3")]
    assert [c.seed for c in cfg.nodes.values()] == [1, 2, 3, 4]
    assert [lk.seed for lk in cfg.links] == [7, 8, 9]
    assert cfg.apps[0].node == "n3"
    text = applied(
        CHAIN.format(n=4, extra=""), "t", None, ["chain.nodes=2", "chain.link.length_km=10"]
    )
    two = parse_network(text)
    assert two.chain == ("n0", "n1") and two.apps[0].node == "n1"
    assert two.links[0].fibre is not None and two.links[0].fibre.length_km == 10


@pytest.mark.parametrize(
    ("n", "extra", "words"),
    [
        (1, "", "chain.nodes: expected a whole number of nodes in 2..64, got 1"),
        ('"five"', "", "chain.nodes: expected a whole number"),
        (3, '[nodes.n1]\ndevice = "generic"', "node 'n1' is the chain's and also a [nodes.n1]"),
        (3, "hops = 2", "chain: unknown key(s) hops; known: link, node, nodes"),
    ],
)
def test_a_bad_chain_is_refused_by_name(n: object, extra: str, words: str) -> None:
    text = CHAIN.format(n=n, extra="")
    if extra.startswith("hops"):
        text = text.replace("[chain]\n", f"[chain]\n{extra}\n")
    elif extra:
        text += extra + "\n"
    with pytest.raises(ConfigError) as err:
        parse_network(text)
    assert words in str(err.value)


def test_a_chain_link_table_is_checked_like_any_link() -> None:
    with pytest.raises(
        ConfigError, match=r"links\[0\]: unknown key\(s\) fidelty .* from chain.link"
    ):
        parse_network(CHAIN.format(n=3, extra="").replace("fidelity", "fidelty"))
    with pytest.raises(ConfigError, match="chain.link.nodes: the chain joins its nodes itself"):
        parse_network(CHAIN.format(n=3, extra="").replace("link = {", 'link = { nodes = ["a"],'))


def test_a_chain_file_whose_apps_is_not_a_list_is_refused_by_name() -> None:
    with pytest.raises(ConfigError, match="apps: expected a list of tables"):
        parse_network("apps = 5\n[chain]\nnodes = 3\n")
