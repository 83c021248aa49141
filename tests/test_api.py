"""qnodeos.Network and Results: running networks from Python (deterministic mode here;
real processes in tests/integration/test_cli.py)."""

from __future__ import annotations

import asyncio
import re
import sys
import time
from pathlib import Path

import pytest

import qnodeos
from qnodeos.errors import ConfigError

SMALL_DQC = ("apps.client.args.k=3",)


def test_deterministic_runs_give_identical_results() -> None:
    net = qnodeos.Network.shipped("default")
    a, b = net.run(deterministic=True), net.run(deterministic=True)
    assert a.ok and a.to_dict() == b.to_dict()
    assert set(a.apps) == {"teleport-0", "teleport-1", "qkd-2", "qkd-3"}
    assert a["qkd-2"]["qber"] == a["qkd-3"]["qber"] < 0.25


def test_it_runs_inside_a_running_asyncio_loop_as_in_jupyter() -> None:
    net = qnodeos.Network.shipped("dqc").set(*SMALL_DQC)

    async def cell() -> qnodeos.Results:
        return net.run(deterministic=True)  # a plain call, inside the loop

    res = asyncio.run(cell())
    again = net.run(deterministic=True)
    assert res.to_dict() == again.to_dict() and res.pair_rows == again.pair_rows
    assert res["client"]["k"] == 3 and len(res["client"]["settings"]) == 6
    # every pair at both ends (54 DQC runs) and every block (C1; S1 and S2), as data
    pairs, blocks = res.pair_rows, res.block_rows
    assert len(pairs) == 2 * 54 and {p["app"] for p in pairs} == {"client", "server"}
    assert len(blocks) == 3 * 54 and all(b["latency_s"] >= 0 for b in blocks)
    assert 0 < res.nodes["server"]["utilization"]["busy_fraction"] < 1


async def test_trio_users_await_run_async(autojump_clock: object) -> None:
    res = await qnodeos.Network.shipped("dqc").set(*SMALL_DQC).run_async()
    assert res["server"]["runs"] == 54


def test_run_async_under_asyncio_says_what_to_call_instead() -> None:
    from qnodeos.errors import LocalError

    async def cell() -> qnodeos.Results:  # a Jupyter cell's top-level await
        return await qnodeos.Network.shipped("chsh").run_async()

    with pytest.raises(LocalError, match=r"call net.run\(deterministic=True\)"):
        asyncio.run(cell())


def test_networks_from_a_dict_and_settings_are_checked() -> None:
    data = {
        "name": "tiny",
        "nodes": {"a": {"device": "generic", "qubits": 1, "seed": 1}},
        "apps": [],
    }
    assert qnodeos.Network.from_dict(data).config.nodes["a"].device.num_qubits == 1
    with pytest.raises(ConfigError, match="unknown key"):
        qnodeos.Network.from_dict({**data, "colour": 1})
    with pytest.raises(ConfigError, match="no element named 'clent'"):
        qnodeos.Network.shipped("dqc").set("apps.clent.args.k=2")
    with pytest.raises(ConfigError, match="no embedded network 'nope'"):
        qnodeos.Network.shipped("nope")


def test_results_name_a_failed_app_and_an_unknown_one() -> None:
    res = qnodeos.Results(
        {
            "a": {"node": "n", "module": "m", "result": {"x": 1}},
            "b": {"node": "n", "module": "m", "error": "ValueError: no"},
            "_error": "app b failed",
        }
    )
    assert res["a"] == {"x": 1} and not res.ok
    assert res.errors == {"b": "ValueError: no", "_run": "app b failed"}
    with pytest.raises(RuntimeError, match="app 'b' failed: ValueError: no"):
        res["b"]
    with pytest.raises(KeyError, match="no app 'c' in this run; apps: a, b"):
        res["c"]


def test_results_to_pandas_one_row_per_app() -> None:
    pytest.importorskip("pandas")
    res = qnodeos.Network.shipped("dqc").set(*SMALL_DQC).run(deterministic=True)
    df = res.to_pandas()
    assert sorted(df["app"]) == ["client", "server"] and "k" in df.columns
    # nested results are kept: the client's list of settings is one cell
    client = df[df["app"] == "client"].iloc[0]
    assert len(client["settings"]) == 6 and "fidelity" in client["settings"][0]
    # pairs and blocks are frames: one row per pair at either end, per block
    assert list(res.pairs["app"].value_counts().sort_index()) == [54, 54]
    assert len(res.blocks) == 3 * 54 and (res.blocks["latency_s"] >= 0).all()
    assert "pairs=108" in repr(res) and "blocks=162" in repr(res)


def test_to_pandas_spreads_nested_results_into_columns() -> None:
    pytest.importorskip("pandas")
    res = qnodeos.Results(
        {"a": {"node": "n", "module": "m", "result": {"S": 2.3, "fit": {"T2": 0.5}}},
         "b": {"node": "n", "module": "m", "error": "ValueError: no"}}
    )  # fmt: skip
    df = res.to_pandas().set_index("app")
    assert df.loc["a", "fit.T2"] == 0.5 and df.loc["a", "S"] == 2.3
    assert df.loc["b", "error"] == "ValueError: no"


def test_an_app_main_may_take_its_session_ready_made() -> None:
    """``main(node: sdk.Node, ...)``: the runner connects it, as the app named in the
    file, with ``qubits`` from its args (the rest go to main)."""
    data = {
        "name": "session",
        "nodes": {"n": {"device": "generic", "qubits": 2, "seed": 1}},
        "apps": [
            {"node": "n", "name": "flip", "module": "tests.integration.session_app",
             "args": {"shots": 4, "qubits": 2}},
        ],
    }  # fmt: skip
    res = qnodeos.Network.from_dict(data).run(deterministic=True)
    assert res["flip"] == {"ones": 4, "node": "n", "app_id": 1}


def test_reprs_and_tab_completion() -> None:
    net = qnodeos.Network.shipped("chsh")
    assert repr(net) == (
        "Network('chsh', nodes=['alice', 'bob'], links=1, apps=['a', 'b'], source='<chsh>')"
    )
    assert {"Network", "Results"} <= set(dir(qnodeos))
    res = qnodeos.Results({"a": {"node": "n", "module": "m", "error": "boom"}})
    assert repr(res) == "Results(apps=['a'], errors: {'a': 'boom'}, pairs=0, blocks=0)"


def test_a_deterministic_run_shows_progress_and_runs_faster_than_real_time(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """``quiet=False`` shows each app's progress on stderr as ``qnodeos run`` does (plain
    lines, stderr being no terminal here), with the simulated time next to the wall
    time. The default network's run costs less CPU time than the simulated time it
    covers (CPU, not wall time: the machine may be busy; measured ~2 s for 5.5 s)."""
    net = qnodeos.Network.shipped("default")
    began = time.process_time()
    res = net.run(deterministic=True, quiet=False)
    cpu = time.process_time() - began
    err = capsys.readouterr().err
    simulated = res.to_dict()["_meta"]["simulated_s"]
    assert res.ok and 5 < simulated < 6
    assert "qkd-2: done (2000/2000 pairs" in err and "teleport-1: done (60/60 teleports" in err
    assert re.search(r"\] qkd-3: done", err)
    assert re.search(r"^qnodeos: \[ *\d+\.\d s, \d+\.\d s simulated\] ", err, re.M)
    assert cpu < simulated, f"{cpu:.2f} s of CPU for {simulated:.2f} s of simulated time"


def test_showing_progress_leaves_a_deterministic_run_unchanged(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Progress is drawn from trio's loop, not by a task of the run: shown (here at
    every turn of the loop) or not, the results are the same."""
    from qnodeos.testbed.progress import ProgressView

    monkeypatch.setattr(ProgressView, "every", 0.0)
    net = qnodeos.Network.shipped("default").set(
        "apps.qkd-2.args.pairs=200", "apps.teleport-0.args.rounds=4"
    )
    shown = net.run(deterministic=True, quiet=False)
    err = capsys.readouterr().err
    assert "qkd-2: " in err and "qkd-2: done (200/200 pairs" in err
    assert shown.to_dict() == net.run(deterministic=True).to_dict()
    assert capsys.readouterr().err == ""  # quiet (the default from Python)


def test_apps_beside_the_network_file_are_found_and_checked_from_python(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """As for ``qnodeos run``: a module beside the file imports from anywhere, also
    after ``set``; a bad argument is a ConfigError before any node starts."""
    (tmp_path / "proj").mkdir()
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "proj" / "beside_api_app.py").write_text(
        "async def main(node: str, *, k: int = 1) -> dict:\n    return {'k': k}\n"
    )
    (tmp_path / "proj" / "net.toml").write_text(
        'name = "own"\n[nodes.n]\ndevice = "generic"\nqubits = 1\nseed = 1\n'
        '[[apps]]\nnode = "n"\nmodule = "beside_api_app"\nargs = { k = 2 }\n'
    )
    monkeypatch.chdir(tmp_path / "elsewhere")
    net = qnodeos.Network.from_file("../proj/net.toml")
    assert net.run(deterministic=True)["beside_api_app-0"] == {"k": 2}
    assert net.set("apps.beside_api_app-0.args.k=3").run(deterministic=True)[
        "beside_api_app-0"
    ] == {"k": 3}
    with pytest.raises(ConfigError, match=r"args.k = 1.5 is a float; main\(\) wants int"):
        net.set("apps.beside_api_app-0.args.k=1.5").run(deterministic=True)
    assert str(tmp_path / "proj") not in sys.path  # taken out again
