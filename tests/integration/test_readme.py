"""The code blocks of README.md and of the documentation site's pages (docs/), taken
from the files themselves, do what they say.

- README's two set-up commands are what ``.ci/run`` runs (install, then the test
  command); ``qnodeos run`` on the default is ``test_cli.py::test_run_default_network``;
- every other ``qnodeos`` command line in a shell block is a valid command line;
- every TOML block is a valid network file, and the full example network runs to its
  end (deterministic mode: its Ramsey app takes ~35 s in real time);
- the instruction-set text block runs on a node and returns what it says;
- ``teleport_local.py`` runs against ``qnodeos node bob`` started as the README says;
- every block that starts with ``import qnodeos`` runs as written;
- the SDK's entanglement fragments run as written against a peer app;
- the NetQASM block (netqasm's own teleport example) runs as written;
- no other Python block exists (one that no test runs could be wrong).
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
import textwrap
from contextlib import aclosing
from pathlib import Path
from typing import Any

import pytest
import trio
import trio.testing

import qnodeos
from qnodeos import sdk
from qnodeos.config.network import parse_network
from qnodeos.facade.cli import build_parser
from qnodeos.sdk.client import IN_PROCESS
from qnodeos.testbed.local import local_network

from .helpers import ROOT, werner_pair

pytestmark = pytest.mark.slow
README = (ROOT / "README.md").read_text()
FENCE = r"```(\w*)\n(.*?)```"
README_BLOCKS = re.findall(FENCE, README, re.S)
PAGES = sorted((ROOT / "docs").rglob("*.md"))
BLOCKS = README_BLOCKS + [b for p in PAGES for b in re.findall(FENCE, p.read_text(), re.S)]


def blocks(lang: str) -> list[str]:
    return [body for kind, body in BLOCKS if kind == lang]


def test_the_setup_commands_are_what_ci_runs() -> None:
    setup = [
        b.strip()
        for kind, b in README_BLOCKS
        if kind == "sh" and b.strip().startswith("python3 -m venv")
    ]
    assert len(setup) == 2
    ci = (ROOT / ".ci" / "run").read_text()
    assert ".venv/bin/pip install --quiet '.[test]'" in ci
    for step in setup[1].split("&&")[1:]:  # the test command, step by step
        assert step.strip().replace("pip install", "pip install --quiet") in ci


def test_every_qnodeos_command_line_is_valid() -> None:
    parser = build_parser()
    seen = 0
    for body in blocks("sh"):
        for line in body.splitlines():
            for part in line.split("#")[0].split("&&"):
                part = re.split(r"\s[>|]", part)[0]  # the shell's redirections
                words = shlex.split(re.sub(r"\[[^]]*\]", "", part))  # [--json] etc.: optional
                if not words or not words[0].endswith("qnodeos"):
                    continue
                words = words[1:]
                if words == ["--version"]:
                    continue
                parser.parse_args(words)  # exits (fails the test) on a bad one
                seen += 1
    assert seen >= 15


def test_every_network_file_is_valid_and_the_example_finishes() -> None:
    tomls = blocks("toml")
    assert len(tomls) >= 2
    for text in tomls:
        parse_network(text, "README")
    example = next(t for t in tomls if "qnodeos.apps.ramsey" in t)
    res = qnodeos.Network(example, "README example").run(deterministic=True, timeout=3600)
    assert res.ok, res.errors
    (ramsey,) = res.apps  # named after its module and index (no `name` key)
    assert len(res[ramsey]["points"]) == 4  # the four waits of its args


def test_the_instruction_set_block_runs() -> None:
    text = next(b for kind, b in BLOCKS if kind == "" and b.startswith("array out"))
    cfg = parse_network('[nodes.n]\ndevice = "generic"\nqubits = 2\nspeed = inf\nseed = 1\n')

    async def main() -> dict[str, object]:
        async with local_network(cfg) as eps:
            async with sdk.connect("n", app="readme", qubits=1, endpoint=eps["n"]) as node:
                return await node.run(text)

    values = trio.run(main)
    out = values["out"]
    assert isinstance(out, list) and len(out) == 10 and set(out) <= {0, 1}


def test_teleport_local_runs_against_a_node_started_as_written(tmp_path: Path) -> None:
    lab = next(b for b in blocks("toml") if b.startswith('name = "lab"') and "[[links]]" not in b)
    (tmp_path / "lab.toml").write_text(lab)
    scripts = [b for b in blocks("python") if b.startswith("# teleport_local.py")]
    assert len(set(scripts)) == 1  # README's and the tutorial's are the same program
    script = scripts[0]
    (tmp_path / "teleport_local.py").write_text(script)
    env = {**os.environ, "QNODEOS_RUNTIME_DIR": str(tmp_path / "rt")}
    node = subprocess.Popen(
        [sys.executable, "-m", "qnodeos", "node", "bob", "--network", "lab.toml"],
        cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    try:
        assert node.stdout is not None
        while "READY" not in (line := node.stdout.readline()):
            assert line, "the node exited before it was ready"
        out = subprocess.run(
            [sys.executable, "teleport_local.py"],
            cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60,
        )  # fmt: skip
    finally:
        node.terminate()
        node.wait(timeout=10)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "teleported: 1"


def test_the_python_blocks_run_as_written(tmp_path: Path) -> None:
    codes = list(dict.fromkeys(b for b in blocks("python") if b.startswith("import qnodeos")))
    assert len(codes) >= 2
    for i, code in enumerate(codes):
        where = tmp_path / str(i)
        where.mkdir()
        out = subprocess.run(
            [sys.executable, "-c", code], cwd=where, capture_output=True, text=True, timeout=300
        )
        assert out.returncode == 0, (code, out.stderr[-2000:])
        if 'Network.shipped("dqc")' in code:  # README's: the fidelity, then ok
            fid, ok = out.stdout.splitlines()[0].split()
            assert 0.0 <= float(fid) <= 1.0 and ok == "True"


CLUSTER_ONLY = "# needs a cluster (not run by the tests)"  # docs/cluster.md: SLURM, k8s


def _tested_file(code: str) -> bool:
    """Whether ``code`` is, after a first line ``# tests/PATH.py``, that file as it is
    (the file's own tests run it, e.g. docs/network-layer.md's protocol)."""
    first, _, rest = code.partition("\n")
    if not first.startswith("# tests/"):
        return False
    path = ROOT / first[2:].strip()
    return path.is_file() and path.read_text().strip() == rest.strip()


def test_every_python_block_is_one_a_test_runs() -> None:
    shown = [b for b in blocks("python") if b.startswith(CLUSTER_ONLY)]
    assert len(shown) == 3  # the cluster page's three, and no others
    assert any(_tested_file(b) for b in blocks("python"))  # the network layer's example
    for code in blocks("python"):
        if code.startswith(CLUSTER_ONLY) or _tested_file(code):
            continue
        assert code.startswith(("# teleport_local.py", "import qnodeos")) or "epr" in code, code


FRAG_NET = werner_pair("readme-frag", 0.95)


def as_program(fragment: str, name: str) -> str:
    """A fragment as ``async def name()``: one that opens its own session as it is;
    one that uses ``node`` and ``epr`` inside a session as the first opens it."""
    imports = [ln for ln in fragment.splitlines() if ln.startswith(("from ", "import "))]
    body = "\n".join(ln for ln in fragment.splitlines() if ln not in imports)
    if not body.lstrip().startswith("async with sdk.connect"):
        session = 'async with sdk.connect("alice", app="sender", qubits=8) as node:\n'
        session += '    epr = node.epr_socket("bob", "receiver")\n'
        body = session + textwrap.indent(body, "    ")
    return "\n".join(imports) + f"\nasync def {name}():\n" + textwrap.indent(body, "    ")


async def receiver(i: int) -> None:
    """The other end of fragment ``i``: the same pairs, asked for from bob."""
    async with sdk.connect("bob", app="receiver", qubits=8) as node:
        epr = node.epr_socket("alice", "sender")
        if i == 0:
            await epr.recv_keep(timeout=10)
            await epr.recv_measure(100, bases="XZ")
        elif i == 1:
            async with aclosing(epr.stream_measure("recv", 100_000, bases="XZ")) as chunks:
                async for _ in chunks:
                    pass
        else:
            async with node.block() as b:
                b.recv_keep(epr, 2)
                b.recv_measure(epr, 100, chosen="XZ" * 50)
                b.recv_rsp(epr, 4, sequential=True, post=lambda b, q, i: q.measure())
                b.create_keep(epr, 20, sequential=True, post=lambda b, q, i: q.measure())


def test_the_sdk_fragments_run_against_a_peer(capsys: pytest.CaptureFixture[str]) -> None:
    """The entanglement fragments, each as written (the ones using ``node`` and ``epr``
    inside a session to bob's app "receiver"), against a peer app asking for the same
    pairs; two nodes in deterministic mode."""
    fragments = [
        b
        for b in blocks("python")
        if not b.startswith(("# teleport_local.py", "import qnodeos", CLUSTER_ONLY))
        and not _tested_file(b)
    ]  # docs/tutorials/protocol-experiment.md
    assert len(fragments) == 3
    ns: dict[str, Any] = {"sdk": sdk}
    programs = "\n".join(as_program(f, f"f{i}") for i, f in enumerate(fragments))
    exec(compile(programs, "README", "exec"), ns)
    cfg = parse_network(FRAG_NET)

    async def main() -> None:
        async with local_network(cfg) as endpoints:
            IN_PROCESS.set((cfg, endpoints))
            for i in range(len(fragments)):
                async with trio.open_nursery() as nursery:
                    nursery.start_soon(ns[f"f{i}"])
                    nursery.start_soon(receiver, i)

    trio.run(main, clock=trio.testing.MockClock(autojump_threshold=0))
    printed = capsys.readouterr().out  # fragment 3 prints the outcomes and the ids
    outcomes, ids = printed.strip().split("] [")
    assert outcomes.count(",") == 99 and ids.count(",") == 99


def test_the_netqasm_block_runs_as_written(tmp_path: Path) -> None:
    pytest.importorskip("netqasm")  # the test extra installs it, as the block's first line
    body = next(
        b
        for b in blocks("sh")
        if b.startswith(".venv/bin/pip install '.[netqasm]'") and "qnodeos netqasm" in b
    )  # docs/tutorials/netqasm.md
    lines = body.strip().splitlines()
    assert lines[0] == ".venv/bin/pip install '.[netqasm]'"
    script = "\n".join(lines[1:]).replace(".venv/bin/", f"{Path(sys.executable).parent}/")
    out = subprocess.run(
        ["bash", "-euc", script + " --quiet --run-dir " + shlex.quote(str(tmp_path / "run"))],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-2000:]
    assert '"correction1"' in out.stdout and '"qubit_states"' in out.stdout
