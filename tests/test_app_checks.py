"""What is checked before anything starts: an app's arguments against its ``main``'s
signature (for ``qnodeos run``, ``Network.run`` and every point of a sweep), a session
app's quota taken from ``main``'s default; the sweep's table of means and failures."""

from __future__ import annotations

import re
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

import qnodeos
from qnodeos.config.defaults import shipped_network_text
from qnodeos.errors import ConfigError
from qnodeos.facade.cli import main as cli
from qnodeos.facade.sweep import aggregate, run_sweep, table

CHSH = shipped_network_text("chsh") or ""


def test_a_bad_sweep_key_or_value_is_refused_before_any_run(tmp_path: Path) -> None:
    said: list[str] = []
    cases = {
        "links.0.fidelty=0.7:0.9:2": "did you mean 'fidelity'",
        "links.0.fidelity=0.7,1.5": "fidelity = 1.5 not in",
        "apps.a.args.roundz=10,20": "unexpected keyword argument 'roundz'",
        "apps.b.args.batch=8,x": "args.batch = 'x' is a str; main() wants int",
    }
    for setting, why in cases.items():
        with pytest.raises(ConfigError, match="sweep point .*" + re.escape(why)):
            run_sweep("chsh", [setting], out_dir=tmp_path / "sw", say=said.append)
    assert not (tmp_path / "sw").exists() and said == []  # nothing ran, nothing written


def write_app(tmp_path: Path, body: str) -> Path:
    (tmp_path / "myapp.py").write_text(textwrap.dedent(body))
    sys.modules.pop("myapp", None)
    return tmp_path


def net_with(args: dict[str, Any]) -> dict[str, Any]:
    return {
        "name": "check",
        "nodes": {"n": {"device": "generic", "qubits": 3, "seed": 1}},
        "apps": [{"node": "n", "name": "mine", "module": "myapp", "args": args}],
    }


@pytest.mark.parametrize(
    ("body", "args", "why"),
    [
        ("def main(node, *, k=1):\n    return {}\n", {}, "must be an `async def`"),
        ("async def main(node, *, k: int = 1):\n    return {}\n", {"j": 2}, "argument 'j'"),
        ("async def main(node, *, k: int = 1):\n    return {}\n", {"k": 1.5}, "wants int"),
        ("async def main(node, *, k: int):\n    return {}\n", {}, "missing a required"),
        ("x = 1\n", {}, "has no `main`"),
        ("import no_such_module_here\n", {}, "importing it failed: ModuleNotFoundError"),
    ],
)
def test_qnodeos_run_refuses_bad_app_args_before_any_node_starts(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    body: str,
    args: dict[str, Any],
    why: str,
) -> None:
    import tomli_w

    monkeypatch.chdir(write_app(tmp_path, body))
    (tmp_path / "net.toml").write_text(tomli_w.dumps(net_with(args)))
    assert cli(["run", "net.toml", "--run-dir", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err
    assert "apps[0] (mine: myapp)" in err and why in err, err
    assert not (tmp_path / "run").exists()  # refused before the run dir, before any node


def test_a_session_app_takes_its_quota_from_mains_default(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``main(node: sdk.Node, *, qubits=3)``: the session is opened with 3 qubits (and
    main gets them too); the file's ``args.qubits`` still wins."""
    monkeypatch.syspath_prepend(str(write_app(tmp_path, """
        from qnodeos import sdk

        async def main(node: sdk.Node, *, qubits: int = 3) -> dict:
            async with node.block() as b:
                qs = [b.qubit() for _ in range(qubits)]
                ms = [q.measure() for q in qs]
            return {"qubits": qubits, "measured": len(ms)}
        """)))  # fmt: skip
    res = qnodeos.Network.from_dict(net_with({})).run(deterministic=True)
    assert res["mine"] == {"qubits": 3, "measured": 3}
    res = qnodeos.Network.from_dict(net_with({"qubits": 2})).run(deterministic=True)
    assert res["mine"] == {"qubits": 2, "measured": 2}
    # a quota that does not fit says where it came from
    for args, source in (({}, "main's default"), ({"qubits": 4}, "the network file")):
        data = net_with(args)
        data["nodes"]["n"]["qubits"] = 3 if args else 2
        res = qnodeos.Network.from_dict(data).run(deterministic=True)
        n = args.get("qubits", 3)
        assert f"(the quota is args.qubits = {n}, from {source})" in res.errors["mine"]


def test_the_table_gives_mean_and_standard_error_over_repeats_and_failures() -> None:
    rows = [
        {"f": 0.8, "repeat": 0, "failures": 0, "a.S": 1.9, "a.S_stderr": 0.1},
        {"f": 0.8, "repeat": 1, "failures": 0, "a.S": 2.1, "a.S_stderr": 0.1},
        {"f": 0.9, "repeat": 0, "failures": 2, "a.S": 2.4, "a.S_stderr": 0.1},
        {"f": 0.9, "repeat": 1, "failures": 1, "b.error": "RemoteError: no"},
    ]
    agg = aggregate(rows, ["f"])
    assert agg[0]["a.S"] == pytest.approx(2.0) and agg[0]["a.S_stderr"] == pytest.approx(0.1)
    assert agg[1]["a.S"] == 2.4 and agg[1]["a.S_stderr"] == 0.1  # one good repeat: its own
    assert (agg[1]["runs"], agg[1]["failed"], agg[1]["failures"]) == (2, 1, 3)
    lines = table(rows, ["f"]).splitlines()
    assert lines[0].split() == ["f", "runs", "failures", "a.S", "error"]
    assert lines[1].split() == ["0.8", "2/2", "0", "2", "±", "0.1"]
    assert lines[2].split()[:6] == ["0.9", "1/2", "3", "2.4", "±", "0.1"]
    assert lines[2].endswith("b.error: RemoteError: no")


def test_a_deterministic_run_keeps_a_run_dir_like_a_real_one(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import json

    where = tmp_path / "det"
    args = ["run", "chsh", "--deterministic", "--json", "--run-dir", str(where)]
    assert cli([*args, "--set", "apps.a.args.rounds=16"]) == 0
    printed = json.loads(capsys.readouterr().out)
    names = {f.name for f in where.iterdir()}
    assert {"network.toml", "results.json", "pairs.csv", "blocks.csv", "timeline.json"} <= names
    assert json.loads((where / "results.json").read_text()) == printed
    assert (where / "pairs.csv").read_text().count("\n") == 1 + 2 * 16  # header, both ends
    assert "rounds = 16" in (where / "network.toml").read_text()
    assert cli(args) == 2  # a run dir holding a run is refused, as for real runs
    assert "holds an earlier run" in capsys.readouterr().err


def test_one_name_per_app_on_its_node_in_set_and_for_its_peer(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The name a run shows (``name``, else MODULE-INDEX) is the app's name on its node
    (sdk.connect's default), the one --set takes, and the one its peer names."""
    monkeypatch.syspath_prepend(str(write_app(tmp_path, """
        from qnodeos import sdk

        async def main(node: str, *, peer: str = "") -> dict:
            async with sdk.connect(node, qubits=1) as conn:
                pass
            return {"me": sdk.app_name(), "peer_node": sdk.peer_node(peer) if peer else ""}
        """)))  # fmt: skip
    data = {
        "name": "names",
        "nodes": {n: {"device": "generic", "qubits": 3, "seed": 1} for n in ("x", "y")},
        "apps": [
            {"node": "x", "module": "myapp", "args": {"peer": "myapp-1"}},
            {"node": "y", "module": "myapp", "args": {}},
            # two apps of one module on one node no longer clash: each has its own name
            {"node": "x", "module": "qnodeos.apps.ramsey", "args": {"shots": 2}},
            {"node": "x", "module": "qnodeos.apps.ramsey", "args": {"shots": 2}},
        ],
    }
    res = qnodeos.Network.from_dict(data).set("apps.myapp-1.args.peer=myapp-0").run(
        deterministic=True
    )
    assert res.ok, res.errors
    assert res["myapp-0"] == {"me": "myapp-0", "peer_node": "y"}
    assert res["myapp-1"] == {"me": "myapp-1", "peer_node": "x"}
    assert set(res.apps) == {"myapp-0", "myapp-1", "ramsey-2", "ramsey-3"}
    bad = qnodeos.Network.from_dict(data).set("apps.myapp-0.args.peer=nobody")
    assert "no app named 'nobody'" in bad.run(deterministic=True).errors["myapp-0"]
