"""A researcher's own project, as a new user has it: a folder with its own ``apps``
package and a network file naming one of its modules beside a shipped app, run by
``qnodeos run`` with qnodeos installed (not this checkout) in a fresh venv (issue 24).

The distribution installs the repository's apps/, netlink/ and testbed/ as
``qnodeos.apps``, ``qnodeos.netlink`` and ``qnodeos.testbed``, so it claims no top-level
``apps`` that would hide the user's (or be hidden by it); ``qnodeos run`` imports app
modules from the current directory and from the network file's directory.

The venv gets qnodeos from a copy of the sources (so the build writes nothing into the
checkout) as ``pip install`` builds it, without its dependencies: those it finds in
this environment's site-packages, added as a plain path (whose .pth files, an editable
install's among them, are not run).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

from .helpers import ROOT

pytestmark = pytest.mark.slow

USER_APP = '''
from qnodeos import sdk


async def main(node: sdk.Node, greeting: str = "hi") -> dict:
    async with node.block() as b:
        q = b.qubit()
        m = q.measure()
    return {"greeting": greeting, "outcome": m.value, "file": __file__}
'''

NET = """
name = "own"
[nodes.a]
device = "generic"
qubits = 2
speed = inf
[[apps]]
node = "a"
module = "apps.hello"
args = { greeting = "hello" }
[[apps]]
node = "a"
module = "qnodeos.apps.ramsey"
args = { shots = 20, waits_ms = [0, 1] }
"""


def install(tmp: Path) -> tuple[Path, Path]:
    """A venv with qnodeos installed from a copy of this checkout (and a stray
    ``qnodeos-runs`` package beside it that must not be installed); (its python, its
    site-packages)."""
    src = tmp / "src"
    src.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, src / name)
    skip = shutil.ignore_patterns("__pycache__")
    for name in ("qnodeos", "apps", "netlink", "testbed"):
        shutil.copytree(ROOT / name, src / name, symlinks=True, ignore=skip)
    stray = src / "qnodeos-runs" / "x"
    stray.mkdir(parents=True)
    (stray / "__init__.py").write_text("")
    venv = tmp / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / "bin" / "python"
    site = Path(
        subprocess.run(
            [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
            check=True,
            capture_output=True,
            text=True,
        ).stdout.strip()
    )
    ours = {sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]}
    (site / "outer.pth").write_text("".join(f"{p}\n" for p in sorted(ours)))
    subprocess.run(
        [str(python), "-m", "pip", "install", "--quiet", "--no-deps", "--ignore-installed"]
        + [str(src)],
        check=True,
        cwd=tmp,
    )
    return python, site


def test_a_user_project_with_its_own_apps_package_runs_with_the_shipped_apps(
    tmp_path: Path,
) -> None:
    python, site = install(tmp_path)
    for name in ("apps", "netlink", "testbed", "qnodeos-runs"):
        assert not (site / name).exists(), f"the distribution installs a top-level {name}"
    assert (site / "qnodeos" / "apps" / "ramsey.py").is_file()
    assert (site / "qnodeos" / "testbed" / "launcher.py").is_file()

    proj = tmp_path / "proj"
    (proj / "apps").mkdir(parents=True)
    (proj / "apps" / "__init__.py").write_text("")
    (proj / "apps" / "hello.py").write_text(USER_APP)
    (proj / "net.toml").write_text(NET)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    qnodeos = str(python.parent / "qnodeos")

    where = subprocess.run(
        [str(python), "-c", "import apps, qnodeos.apps as q; print(apps.__file__, q.__file__)"],
        cwd=proj,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    assert where == [str(proj / "apps" / "__init__.py"), str(site / "qnodeos/apps/__init__.py")]

    # from the project folder, and from elsewhere naming the network file in it
    for cwd, net in ((proj, "net.toml"), (tmp_path, str(proj / "net.toml"))):
        run = cwd / "run"
        out = subprocess.run(
            [qnodeos, "run", net, "--json", "--quiet", "--run-dir", str(run)],
            cwd=cwd,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert out.returncode == 0, out.stdout + out.stderr
        results = json.loads(out.stdout)
        hello = results["hello-0"]["result"]
        assert hello["greeting"] == "hello" and hello["outcome"] in (0, 1)
        assert hello["file"] == str(proj / "apps" / "hello.py")
        ramsey = results["ramsey-1"]["result"]  # the shipped app
        assert ramsey["shots"] == 20 and len(ramsey["points"]) == 2
