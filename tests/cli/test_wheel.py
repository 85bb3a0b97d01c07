"""adobot installs like a library: a wheel that provides the `adobot` package and nothing else
at the top level, installed into a fresh virtual environment outside the repository, where the
commands work with the seed data and manifests it ships."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from tests.conftest import DEMO_PAT, EXAMPLES, ROOT


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("dist")
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "-w", str(out),
                    str(ROOT)], check=True, capture_output=True, timeout=600)
    return next(out.glob("adobot-*.whl"))


@pytest.fixture(scope="module")
def venv(tmp_path_factory, wheel) -> Path:
    """A fresh venv, away from the repository, with the wheel and its dependencies."""
    place = tmp_path_factory.mktemp("elsewhere")
    subprocess.run([sys.executable, "-m", "venv", str(place / "env")], check=True, timeout=300)
    subprocess.run([str(place / "env" / "bin" / "python"), "-m", "pip", "install", "--quiet",
                    str(wheel)], check=True, capture_output=True, timeout=900)
    return place


def run(venv: Path, *args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("ADOBOT_", "PYTHON", "VIRTUAL_ENV"))}
    return subprocess.run([str(venv / "env" / "bin" / args[0]), *args[1:]], capture_output=True,
                          text=True, cwd=venv, timeout=timeout, env={**env, "ADOBOT_PAT": DEMO_PAT})


def test_the_wheel_claims_only_its_own_name(wheel):
    names = zipfile.ZipFile(wheel).namelist()
    tops = {name.split("/")[0] for name in names}
    assert tops == {"adobot", next(top for top in tops if top.endswith(".dist-info"))}
    assert "adobot/py.typed" in names and "adobot/sandbox/seed.json" in names
    assert "adobot/manifests/Connect.json" in names and "adobot/manifests/index.json" in names
    assert {"adobot/store/migrations/env.py",
            "adobot/store/migrations/versions/0001_initial.py"} <= set(names)
    assert {f"adobot/control_room/static/{page}" for page in ("index.html", "app.js",
                                                              "style.css")} <= set(names)
    assert not [n for n in names if n.split("/")[0] in
                ("actions", "sessions", "credentials", "rest", "runtime", "sandbox", "tests")]


def test_the_commands_work_outside_the_repository(venv):
    assert run(venv, "adobot", "--version").stdout.strip().startswith("adobot ")
    assert run(venv, "python", "-m", "adobot", "--version").stdout.strip().startswith("adobot ")
    manifests = json.loads(run(venv, "adobot", "manifest", "--all").stdout)
    assert {m["name"] for m in manifests} >= {"Connect", "PushFiles", "QueueRun"}
    shutil.copy(EXAMPLES / "quickstart.yaml", venv / "quickstart.yaml")
    done = run(venv, "adobot", "run", "quickstart.yaml", "--sandbox", "--var-env",
               "pat=ADOBOT_PAT", "--json")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["status"] == "succeeded"
    imported = run(venv, "python", "-c", "import adobot, adobot.api, importlib.util as u; "
                   "print(all(u.find_spec(n) is None for n in "
                   "('actions', 'sessions', 'credentials', 'rest', 'runtime', 'sandbox')))")
    assert imported.stdout.strip() == "True"


def test_the_control_rooms_store_works_from_the_wheel_with_nothing_else(venv):
    """The migrations ship in the wheel; tokens and the audit log work on a fresh machine with
    no extra and no database server (the SQLite file beside the vault)."""
    vault = ["--vault", str(venv / "room" / "vault.json")]
    upgraded = run(venv, "adobot", "db", "upgrade", *vault)
    assert upgraded.returncode == 0 and "upgraded from empty to" in upgraded.stdout, \
        upgraded.stderr
    issued = run(venv, "adobot", "token", "issue", "alice", "--role", "administrator", *vault)
    assert issued.returncode == 0 and issued.stdout.startswith("adobot_"), issued.stderr
    assert run(venv, "adobot", "audit", "--verify", *vault).returncode == 0
    assert (venv / "room" / "vault.db").exists()


def test_the_control_room_without_its_extra_says_how_to_get_it(venv):
    done = run(venv, "adobot", "control-room", "--vault", str(venv / "v.json"))
    assert done.returncode == 2 and "pip install 'adobot[control-room]'" in done.stderr
    assert "Traceback" not in done.stderr


def test_the_sandbox_serves_from_the_wheel(venv):
    process = subprocess.Popen([str(venv / "env" / "bin" / "adobot"), "sandbox"],
                               stdout=subprocess.PIPE, text=True, cwd=venv)
    try:
        first = process.stdout.readline()
        assert first.startswith("Azure DevOps sandbox on http://127.0.0.1:")
    finally:
        process.terminate()
        process.wait(timeout=10)
