"""The command line as a new user runs it."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from .helpers import ctrl_c_works

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow


def qnodeos(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "qnodeos", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def test_run_default_network(tmp_path: Path) -> None:
    """Two NV nodes, teleportation and QKD sharing one single-click link, in real time."""
    start = time.monotonic()
    out = qnodeos("run", "--json", "--run-dir", str(tmp_path / "run"))
    took = time.monotonic() - start
    assert out.returncode == 0, out.stderr
    results = json.loads(out.stdout)
    tele = results["teleport-1"]["result"]
    qkd_a, qkd_b = results["qkd-2"]["result"], results["qkd-3"]["result"]
    # NV gate, readout and move noise on top of the link (F = 0.971): no closed form
    # here (the physics tests check those). The run must beat a random guess (1/2) and
    # keep QBER well below 1/2, each by more than 3 sigma of its own estimate.
    assert tele["fidelity"] - 3 * tele["stderr"] > 0.5
    assert qkd_a["qber"] == qkd_b["qber"] and qkd_a["sifted"] == qkd_b["sifted"]
    assert qkd_a["qber"] + 3 * qkd_a["qber_stderr"] < 0.25
    assert qkd_a["pairs"] == 2000 and qkd_a["key_rate_bps"] >= 0
    assert took < 60
    run = tmp_path / "run"
    assert {p.name for p in run.iterdir()} >= {
        "network.toml",
        "results.json",
        "node-alice.log",
        "node-bob.log",
        "app-teleport-0.log",
        "app-qkd-3.log",
    }


def test_run_human_output_and_failed_app_exit_code(tmp_path: Path) -> None:
    net = tmp_path / "net.toml"
    net.write_text("""
name = "two"
[nodes.a]
device = "generic"
qubits = 2
speed = inf
[[apps]]
node = "a"
module = "qnodeos.apps.ramsey"
args = { shots = 20, waits_ms = [0, 1] }
[nodes.b]
device = "generic"
qubits = 2
speed = inf
[[apps]]
node = "b"
module = "qnodeos.apps.ramsey"
args = { shots = 20, waits_ms = [-1] }
""")
    out = qnodeos("run", str(net), "--run-dir", str(tmp_path / "run"))
    assert out.returncode == 1
    assert "Ramsey on the generic device" in out.stdout
    assert "FAILED: LocalError: wait of -0.001 s" in out.stdout
    saved = json.loads((tmp_path / "run" / "results.json").read_text())
    assert "result" in saved["ramsey-0"] and "error" in saved["ramsey-1"]
    # a keyword main does not take: refused before any node starts (exit 2, no run dir)
    net.write_text(net.read_text().replace("shots = 20, waits_ms = [-1]", "shotz = 20"))
    bad = qnodeos("run", str(net), "--run-dir", str(tmp_path / "bad"))
    assert bad.returncode == 2 and not (tmp_path / "bad").exists()
    assert "apps[1] (ramsey-1: qnodeos.apps.ramsey)" in bad.stderr and "'shotz'" in bad.stderr


def test_a_mistyped_app_module_is_refused_before_any_node_starts(tmp_path: Path) -> None:
    net = tmp_path / "net.toml"
    net.write_text('name = "t"\n[nodes.a]\n[[apps]]\nnode = "a"\nmodule = "qnodeos.apps.telport"\n')
    out = qnodeos("run", str(net), "--run-dir", str(tmp_path / "run"), timeout=30)
    assert out.returncode == 2
    assert (
        "apps[0].module: no module named 'qnodeos.apps.telport' "
        "(did you mean 'qnodeos.apps.teleport'?)"
    ) in out.stderr
    assert "up;" not in out.stdout  # no node was started


@pytest.mark.parametrize(
    "args, words",
    [
        (["run", "/nonexistent/net.toml"], "cannot read network file"),
        (["node", "ghost"], "no node named 'ghost'; nodes: alice"),
        (["run", "dqc", "--set", "apps.clent.args.k=2"], "no element named 'clent'"),
        (["run", "dqc", "--set", "nodes.server.sped=2"], "unknown key(s) sped (did you mean"),
        (["run", "dqc", "--set", "k"], "--set 'k': expected KEY=VALUE"),
    ],
)
def test_bad_input_exits_nonzero_with_a_clear_error(args: list[str], words: str) -> None:
    out = qnodeos(*args, timeout=30)
    assert out.returncode == 2
    assert words in out.stderr
    assert "Traceback" not in out.stderr


def test_set_changes_one_value_for_one_run(tmp_path: Path) -> None:
    """``--set``: the shipped DQC with k = 2 instead of 20 (and the run dir's copy of
    the network says so), the file itself unchanged."""
    run = tmp_path / "run"
    out = qnodeos("run", "dqc", "--json", "--run-dir", str(run), "--set", "apps.client.args.k=2")
    assert out.returncode == 0, out.stderr
    client = json.loads(out.stdout)["client"]["result"]
    assert client["k"] == 2 and json.loads(out.stdout)["server"]["result"]["runs"] == 36
    assert "k = 2" in (run / "network.toml").read_text()


def test_malformed_network_file(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text("[nodes.a]\ndevice = 'nv'\nqubits = 'three'\n")
    out = qnodeos("run", str(bad), timeout=30)
    assert out.returncode == 2 and "nodes.a.qubits: expected int" in out.stderr


def test_node_that_cannot_start_fails_the_run_clearly(tmp_path: Path) -> None:
    net = tmp_path / "net.toml"
    net.write_text('[nodes.a]\nqdevice_endpoint = "tcp://no-such-host.invalid:1"\n')
    out = qnodeos("run", str(net), "--run-dir", str(tmp_path / "run"), timeout=60)
    assert out.returncode == 1
    assert "node a exited with 1 before it was ready" in out.stderr
    assert (tmp_path / "run" / "node-a.log").read_text()


def test_node_dying_mid_run_ends_the_run(tmp_path: Path) -> None:
    net = tmp_path / "net.toml"
    net.write_text('[nodes.a]\n[[apps]]\nnode = "a"\nmodule = "tests.integration.killer_app"\n')
    start = time.monotonic()
    out = qnodeos("run", str(net), "--run-dir", str(tmp_path / "run"), timeout=60)
    assert out.returncode == 1
    assert "node a was killed by SIGKILL during the run" in out.stderr
    assert time.monotonic() - start < 20
    assert "_error" in json.loads((tmp_path / "run" / "results.json").read_text())


PINGPONG = """
name = "pp"
[nodes.alice]
qubits = 1
[nodes.bob]
qubits = 1
[[apps]]
node = "alice"
module = "qnodeos.apps.pingpong"
args = {{ role = "ping", me = "ping", peer_node = "bob", peer = "pong", rounds = {rounds} }}
[[apps]]
node = "bob"
module = "qnodeos.apps.pingpong"
args = {{ role = "pong", me = "pong", peer_node = "alice", peer = "ping" }}
"""


def test_two_nodes_exchange_classical_messages(tmp_path: Path) -> None:
    net = tmp_path / "net.toml"
    net.write_text(PINGPONG.format(rounds=100))
    out = qnodeos("run", str(net), "--json", "--run-dir", str(tmp_path / "run"), timeout=60)
    assert out.returncode == 0, out.stderr
    r = json.loads(out.stdout)
    assert r["pingpong-0"]["result"]["rounds"] == 100
    assert r["pingpong-1"]["result"]["served"] == 100


def test_ctrl_c_stops_everything_and_says_so(tmp_path: Path) -> None:
    import signal

    net = tmp_path / "net.toml"
    net.write_text(PINGPONG.format(rounds=1_000_000))
    proc = subprocess.Popen(
        [sys.executable, "-m", "qnodeos", "run", str(net), "--run-dir", str(tmp_path / "run")],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=ctrl_c_works,
    )
    assert proc.stdout is not None
    assert "running 2 app(s)" in proc.stdout.readline()
    time.sleep(1.0)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 130
    assert "qnodeos: error: interrupted (Ctrl-C)" in err and "Traceback" not in err
    assert "stopped: the run was stopped" in out
    left = subprocess.run(["pgrep", "-f", str(tmp_path)], capture_output=True, text=True)
    assert left.stdout.strip() == ""  # no node, quantum process or app left behind


def test_progress_is_shown_while_the_run_works_and_json_is_unchanged(tmp_path: Path) -> None:
    """Plain mode (stderr not a terminal): each app's progress lines come while it
    runs (partway counts, a rate, an ETA), then its end; stdout is only the JSON."""
    out = qnodeos(
        "run", "dqc", "--json", "--run-dir", str(tmp_path / "run"), "--set", "apps.client.args.k=8"
    )
    assert out.returncode == 0, out.stderr
    results = json.loads(out.stdout)  # nothing else on stdout
    assert set(results) == {"client", "server", "_nodes", "_meta"}
    # the run's metadata, and its per-pair and per-block records
    meta = results["_meta"]
    assert meta["seeds"]["nodes"] == {"client": 41, "server": 42}
    assert len(meta["network_sha256"]) == 64 and meta["started"] <= meta["ended"]
    assert meta["records"] == {"blocks": 3 * 144, "pairs": 2 * 144}
    pairs = (tmp_path / "run" / "pairs.csv").read_text().splitlines()
    assert len(pairs) == 289 and pairs[0].startswith("node,app,peer,id,bell,goodness")
    lines = [x for x in out.stderr.splitlines() if x.startswith("qnodeos: [")]
    partway = [x for x in lines if "client: " in x and "/144 runs" in x and "ETA" in x]
    assert partway, out.stderr
    assert any("client: done (144/144 runs" in x for x in lines), out.stderr


def test_progress_on_a_terminal_is_a_live_table(tmp_path: Path) -> None:
    """In a pty: rich's table with each app and its progress."""
    import os
    import pty

    parent, child = pty.openpty()
    args = [sys.executable, "-m", "qnodeos", "run", "dqc", "--run-dir", str(tmp_path / "run")]
    proc = subprocess.Popen(
        [*args, "--set", "apps.client.args.k=8"], cwd=ROOT, stdout=child, stderr=child
    )
    os.close(child)
    seen = b""
    while True:
        try:
            chunk = os.read(parent, 65536)
        except OSError:  # the child side closed
            break
        if not chunk:
            break
        seen += chunk
    assert proc.wait(timeout=60) == 0
    text = seen.decode(errors="replace")
    assert "qnodeos run," in text and "qnodeos.apps.dqc on client" in text and "runs" in text
    assert "DQC client: k = 8" in text  # the results follow


def test_run_deterministic_from_the_cli_is_the_same_every_time() -> None:
    a = qnodeos("run", "--deterministic", "--json", timeout=60)
    b = qnodeos("run", "--deterministic", "--json", timeout=60)
    assert a.returncode == 0, a.stderr
    assert a.stdout == b.stdout and json.loads(a.stdout)["qkd-2"]["result"]["pairs"] == 2000


def test_network_run_from_python_in_real_processes(tmp_path: Path) -> None:
    """qnodeos.Network(...).run(): the same processes as qnodeos run, results back as
    data, nothing printed."""
    code = (
        "import qnodeos, json, sys\n"
        "res = qnodeos.Network.shipped('dqc').set('apps.client.args.k=2').run("
        f"run_dir={str(tmp_path / 'run')!r})\n"
        "print(json.dumps({'ok': res.ok, 'runs': res['server']['runs']}))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout) == {"ok": True, "runs": 36}
    assert (tmp_path / "run" / "results.json").exists() and "client:" not in out.stderr


def test_an_app_main_taking_a_session_runs_in_qnodeos_run(tmp_path: Path) -> None:
    net = tmp_path / "s.toml"
    net.write_text(
        'name = "sess"\n[nodes.n]\ndevice = "generic"\nqubits = 1\nspeed = inf\n'
        '[[apps]]\nnode = "n"\nname = "flip"\nmodule = "tests.integration.session_app"\n'
        "args = { shots = 5 }\n"
    )
    out = qnodeos("run", str(net), "--json", "--quiet", "--run-dir", str(tmp_path / "run"))
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["flip"]["result"]["ones"] == 5


def test_verbose_shows_the_nodes_logs_on_the_terminal_too(tmp_path: Path) -> None:
    """``qnodeos -v run``: each node's INFO lines on stderr, prefixed with its name, as
    well as in its log file in the run directory."""
    out = qnodeos(
        "-v", "run", "chsh", "--quiet", "--set", "apps.a.args.rounds=16",
        "--run-dir", str(tmp_path / "run"),
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    shown = [ln for ln in out.stderr.splitlines() if ln.startswith("[alice] ")]
    assert any("INFO: app 'a' connected" in ln for ln in shown), out.stderr[-2000:]
    logged = (tmp_path / "run" / "node-alice.log").read_text()
    assert all(ln.removeprefix("[alice] ") in logged for ln in shown)
    quiet = qnodeos("run", "chsh", "--quiet", "--set", "apps.a.args.rounds=16",
                    "--run-dir", str(tmp_path / "quiet"))  # fmt: skip
    assert quiet.returncode == 0 and "[alice]" not in quiet.stderr
    # -vv: the debug lines a user looks for: blocks queued and started, rounds asked for
    debug = qnodeos("-vv", "run", "chsh", "--quiet", "--set", "apps.a.args.rounds=16",
                    "--run-dir", str(tmp_path / "debug"))  # fmt: skip
    assert debug.returncode == 0
    for said in ("DEBUG: block 1 of app 'a' starts on the device", "DEBUG: round "):
        assert said in debug.stderr, said
