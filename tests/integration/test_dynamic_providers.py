"""Our dynamic providers in Pulumi's real provider host, loaded as `pulumi up --stack dev` loads them.

A throw-away copy of the project (``infra/``, ``worker/``, ``config/``; ``Pulumi.yaml``'s name,
runtime and ``main: infra/``) whose ``infra/__main__.py`` declares the real
``infra.d1_migrations.D1Migrations`` against the fake D1 (tests/support/cloudflare_d1.py) and a real
``infra.local_process.LocalProcess``. The pinned Pulumi CLI runs it with a file backend and *no*
``PYTHONPATH``: the engine starts the provider host (``python -m pulumi.dynamic``,
pulumi/dynamic/__main__.py) in ``infra/``, with ``infra/`` first on ``sys.path``, exactly as for an
operator's plain ``pulumi up``. The copy has the ``infra/.venv`` link scripts/bootstrap makes
(Pulumi resolves ``virtualenv: .venv`` against the host's working directory).

``up``, a changed migration set, ``refresh`` and ``destroy`` must all pass. The control case pickles
a provider the old way (by reference) in the same project and must fail with "No module named
'infra'", which is how both providers failed before infra/provider_host.py.
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from infra.local_process import running_pid
from tests.support.cloudflare_d1 import FakeD1, serve_fake_d1
from tests.support.d1_store import ACCOUNT, TOKEN
from tests.support.paths import BIN_DIR, ROOT, free_port

PROGRAM = '''\
"""Test program: the D1 migrations and a local process, through the real providers."""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # as the real infra/__main__.py does

import pulumi

from infra.d1_migrations import D1Migrations
from infra.local_process import LocalProcess
from worker.adapters.config_files import load_collections, load_migrations
from worker import jsoncodec

cfg = pulumi.Config("test")
root = Path(__file__).resolve().parents[1]
migrations = D1Migrations(
    "migrations", account_id=cfg.require("account"), database_id=cfg.require("database"),
    api_token=cfg.require_secret("token"), migrations=load_migrations(root / "config"),
    collections_json=jsoncodec.dumps(load_collections(root / "config")), api_base=cfg.require("apiBase"))
port = int(cfg.require("port"))
web = LocalProcess("web", {
    "name": "web", "argv": [sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1"],
    "cwd": str(root), "env": {}, "secret_env": {}, "files": {}, "config_dir": str(root / "run"),
    "data_dir": "", "host": "127.0.0.1", "ports": {"http": {"number": port, "setting": "test:port"}},
    "health": {"kind": "http", "port": "http", "path": "/", "ok_status": [200]},
    "pid_file": str(root / "run" / "web.pid"), "log_file": str(root / "run" / "web.log"),
    "start_timeout": 30, "stop_timeout": 5})
pulumi.export("applied", migrations.applied)
pulumi.export("web_pid", web.pid)
'''

#: the control: a provider pickled by reference, as both were before infra/provider_host.py
BY_REFERENCE = '''\
from pulumi.dynamic import CreateResult, Resource, ResourceProvider


class ByReference(ResourceProvider):
    def create(self, props):
        return CreateResult("x", {})


class Probe(Resource):
    def __init__(self, name):
        super().__init__(ByReference(), name, {})
'''


@dataclass
class Project:
    root: Path
    env: dict[str, str]
    fake: FakeD1
    database_id: str

    def pulumi(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run([str(BIN_DIR / "pulumi"), *args, "--stack", "dev", "--non-interactive"],
                              cwd=self.root, env=self.env, capture_output=True, text=True, timeout=300,
                              check=False)
        if check and proc.returncode != 0:
            pytest.fail(f"pulumi {' '.join(args)} failed ({proc.returncode}):\n{proc.stdout[-4000:]}\n"
                        f"{proc.stderr[-3000:]}")
        return proc

    def up(self, check: bool = True) -> subprocess.CompletedProcess[str]:
        return self.pulumi("up", "--yes", "--skip-preview", check=check)

    def outputs(self) -> dict[str, Any]:
        return json.loads(self.pulumi("stack", "output", "--json").stdout)

    def tables(self) -> set[str]:
        con = sqlite3.connect(self.fake.path(self.database_id))
        try:
            return {r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        finally:
            con.close()


def _environment(root: Path, state: Path) -> dict[str, str]:
    """The CLI's environment with nothing that makes `infra` importable: no PYTHONPATH."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("PULUMI_", "TELESTACK_")) and k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env.update({
        "PULUMI_BACKEND_URL": f"file://{state}",
        "PULUMI_CONFIG_PASSPHRASE": "throw-away",
        "PULUMI_HOME": str(state / "home"),
        "PULUMI_SKIP_UPDATE_CHECK": "true",
        "PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION": "true",
        # the program's interpreter, as an operator's activated venv (or scripts/bootstrap_env.sh) gives it
        "PULUMI_PYTHON_CMD": str(root / ".venv/bin/python"),
        "PATH": os.pathsep.join([str(BIN_DIR), env.get("PATH", "")]),
    })
    return env


@pytest.fixture
def project(tmp_path: Path) -> Iterator[Project]:
    root = tmp_path / "project"
    root.mkdir()
    real = yaml.safe_load((ROOT / "Pulumi.yaml").read_text())
    (root / "Pulumi.yaml").write_text(yaml.safe_dump({k: real[k] for k in ("name", "runtime", "main")}))
    assert real["main"].rstrip("/") == "infra", "the program directory is infra/: the host's cwd"
    for name in ("infra", "worker", "config"):
        shutil.copytree(ROOT / name, root / name, symlinks=True,
                        ignore=shutil.ignore_patterns("__pycache__", "*.pyc", ".venv"))
    (root / ".venv").symlink_to(ROOT / ".venv")
    (root / "infra/.venv").symlink_to("../.venv")  # what scripts/bootstrap makes
    (root / "infra/__main__.py").write_text(PROGRAM)
    state = tmp_path / "state"
    state.mkdir()
    with serve_fake_d1(tmp_path / "d1", token=TOKEN, account_id=ACCOUNT) as fake:
        p = Project(root, _environment(root, state), fake, fake.create_database("telestack-dev"))
        p.pulumi("stack", "init")
        for key, value in (("account", ACCOUNT), ("database", p.database_id), ("apiBase", fake.base_url),
                           ("port", str(free_port()))):
            p.pulumi("config", "set", f"test:{key}", value)
        p.pulumi("config", "set", "--secret", "test:token", TOKEN)
        try:
            yield p
        finally:
            p.pulumi("destroy", "--yes", check=False)
            pid = running_pid(str(root / "run/web.pid"))
            if pid:  # never leave the process behind, whatever failed
                os.killpg(pid, 9)


def test_up_change_refresh_destroy_in_the_real_provider_host(project: Project) -> None:
    assert "PYTHONPATH" not in project.env
    project.up()
    out = project.outputs()
    assert out["applied"][:2] == ["0001_documents", "0002_outbox"], out
    assert {"documents", "_migrations"} <= project.tables()
    port = json.loads(project.pulumi("config", "get", "test:port", "--json").stdout)["value"]
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=5) as resp:
        assert resp.status == 200
    assert running_pid(str(project.root / "run/web.pid")) == out["web_pid"]

    # a changed migration set: the host loads the provider again and applies only the new file
    (project.root / "config/migrations/0099_dynamic_provider_probe.sql").write_text(
        "CREATE TABLE dynamic_provider_probe (x INTEGER);\n")
    project.up()
    assert project.outputs()["applied"] == ["0099_dynamic_provider_probe"]
    assert "dynamic_provider_probe" in project.tables()

    # refresh reads both resources through the host; nothing changed, so the next preview is empty
    project.pulumi("refresh", "--yes")
    project.pulumi("preview", "--expect-no-changes")

    project.pulumi("destroy", "--yes")
    assert running_pid(str(project.root / "run/web.pid")) is None
    assert "dynamic_provider_probe" in project.tables(), "migrations are forward-only: destroy keeps data"


def test_a_provider_pickled_by_reference_does_not_load_there(project: Project) -> None:
    """The control: the same project and environment reproduce the failure the rule prevents."""
    (project.root / "infra/by_reference_probe.py").write_text(BY_REFERENCE)
    # alone: one host process serves every dynamic resource, and once a loadable provider has put the
    # root on its sys.path, anything imports there
    (project.root / "infra/__main__.py").write_text(
        "import sys\nfrom pathlib import Path\n\n"
        "sys.path.insert(0, str(Path(__file__).resolve().parents[1]))\n"
        "from infra.by_reference_probe import Probe\n\nProbe('probe')\n")
    proc = project.up(check=False)
    output = proc.stdout + proc.stderr
    assert proc.returncode != 0 and "No module named 'infra'" in output, output[-2000:]
