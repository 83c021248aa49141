"""A notebook, run by a real Jupyter kernel (nbclient): build a network, run it
deterministically and in real processes, to_pandas, a sweep, a plot; and an SDK
session awaited at the top level of a cell, after ``%autoawait trio`` (before it, the
SDK says how to switch)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from .helpers import ROOT

pytestmark = pytest.mark.slow

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")
pytest.importorskip("ipykernel")

LAB = 'name = "lab"\n[nodes.bob]\ndevice = "generic"\nqubits = 3\nspeed = inf\nseed = 1\n'

CELLS = [
    # 0: a network, shown by its repr
    'import qnodeos\nnet = qnodeos.Network.shipped("chsh").set("apps.a.args.rounds=64")\nnet',
    # 1, 2: run it both ways (the kernel's asyncio loop runs meanwhile)
    "det = net.run(deterministic=True)\nprint(det.ok, det['a']['rounds'])",
    "real = net.run()\nprint(real.ok, real['a']['rounds'], real.nodes['alice']['utilization']"
    "['busy_fraction'] > 0)",
    # 3: tables
    "df = det.to_pandas()\nprint(sorted(df['app']), len(det.pairs), type(det.pairs).__name__)",
    # 4, 5: a sweep and its plot
    'rows = net.sweep("links.0.fidelity=0.8,0.95", deterministic=True, out="sw")\n'
    "print(len(rows), all('a.S' in r for r in rows))",
    "from qnodeos.facade.cli import main as qnodeos_cli\n"
    "print(qnodeos_cli(['plot', 'sw']), __import__('os').path.getsize('sw/sweep.png') > 1000)",
    # 6: a node for the SDK cells
    "import subprocess, sys\n"
    "node = subprocess.Popen([sys.executable, '-m', 'qnodeos', 'node', 'bob', '--network', "
    "'lab.toml'], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)\n"
    "while 'READY' not in (line := node.stdout.readline()):\n    assert line, 'node exited'",
    # 7: under asyncio, the SDK says how to switch
    "from qnodeos import sdk\ntry:\n"
    "    async with sdk.connect('bob', app='nb', qubits=1, network='lab.toml'):\n        pass\n"
    "except Exception as exc:\n    print(type(exc).__name__, '%autoawait trio' in str(exc))",
    "%autoawait trio",
    # 9: a session awaited at the top level of a cell
    "async with sdk.connect('bob', app='nb', qubits=1, network='lab.toml') as n:\n"
    "    async with n.block() as b:\n        q = b.qubit()\n        q.x()\n"
    "        m = q.measure()\nprint('measured', m.value)",
    "node.terminate()\nprint(node.wait(timeout=10))",
]


def text(cell: Any) -> str:
    return "".join(
        o.get("text", "") or o.get("data", {}).get("text/plain", "")
        for o in cell["outputs"]
    )


def test_a_notebook_runs_networks_sweeps_plots_and_sdk_sessions(tmp_path: Path) -> None:
    (tmp_path / "lab.toml").write_text(LAB)
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(c) for c in CELLS]
    env_before = dict(os.environ)
    os.environ["QNODEOS_RUNTIME_DIR"] = str(tmp_path / "rt")  # the kernel inherits it
    os.environ["PYTHONPATH"] = str(ROOT)
    try:
        client = nbclient.NotebookClient(
            nb, timeout=240, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}
        )
        client.execute()
    finally:
        os.environ.clear()
        os.environ.update(env_before)
    out = [text(c) for c in nb.cells]
    assert out[0].startswith("Network('chsh', nodes=['alice', 'bob']")
    assert out[1].split() == ["True", "64"]
    assert out[2].split() == ["True", "64", "True"]
    assert out[3].split() == ["['a',", "'b']", "128", "DataFrame"]
    assert out[4].split() == ["2", "True"]
    assert out[5].split()[-2:] == ["0", "True"]
    assert out[7].split() == ["LocalError", "True"]
    assert out[9].split() == ["measured", "1"]
    assert out[10].strip() in ("0", "-15")
