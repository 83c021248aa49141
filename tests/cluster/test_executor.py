"""``Network.sweep(executor=...)`` takes any ``concurrent.futures.Executor``: here a
local process pool, no Dask; and ``qnodeos run`` refuses ``--cluster`` with
``--deterministic``."""

from __future__ import annotations

import json
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import pytest

import qnodeos
from qnodeos.facade.cli import main
from qnodeos.facade.sweep import grid, row

from . import chsh_pair

NET = chsh_pair("poolsweep")

pytestmark = pytest.mark.slow


def test_a_sweep_on_a_process_pool_gives_the_rows_of_local_runs(tmp_path: Path) -> None:
    net_file = tmp_path / "net.toml"
    net_file.write_text(NET)
    net = qnodeos.Network.from_file(net_file)
    sweep = "links.0.fidelity=0.75,0.95"
    with ProcessPoolExecutor(2) as pool:
        rows = net.sweep(sweep, deterministic=True, out=tmp_path / "sw", executor=pool, jobs=2)
    _, points = grid([sweep], 1)
    for p, got in zip(points, rows, strict=True):
        local = net.set(*(f"{k}={json.dumps(v)}" for k, v in p.values)).run(deterministic=True)
        assert got == row(p, local.to_dict())


def test_a_deterministic_run_cannot_use_a_cluster(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["run", "--deterministic", "--cluster", "tcp://127.0.0.1:1"])
    assert "cannot use --cluster" in capsys.readouterr().err
