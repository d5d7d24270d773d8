"""A real local stack for tests: `scripts/up` (bootstrap + `pulumi up --stack local`) in a copy of the repo.

The copy has its own state folder, Pulumi file backend and passphrase, and every
port chosen free, so it never touches the developer's stack.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from infra.local_process import running_pid
from tests.support.paths import ROOT, free_port

COPIED = ("Pulumi.yaml", "infra", "worker", "config", "scripts", "requirements.txt", "requirements")


@dataclass
class Stack:
    root: Path
    env: dict[str, str]
    outputs: dict[str, Any]
    env_file: Path

    def exec(
        self, argv: list[str], *, check: bool = True, stdin: str | None = None, timeout: float = 600
    ) -> subprocess.CompletedProcess[str]:
        """Run a command in the stack's copy of the repository; with ``check``, fail the test on non-zero."""
        proc = subprocess.run(
            argv, cwd=self.root, env=self.env, input=stdin, capture_output=True, text=True,
            timeout=timeout, check=False,
        )
        if check and proc.returncode != 0:
            name = " ".join(Path(argv[0]).name if i == 0 else a for i, a in enumerate(argv))
            pytest.fail(f"{name} failed ({proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr[-4000:]}")
        return proc

    def run(
        self, *argv: str, check: bool = True, stdin: str | None = None
    ) -> subprocess.CompletedProcess[str]:
        """A command in the environment the scripts set (scripts/bootstrap_env.sh)."""
        return self.exec([str(self.root / "scripts/bootstrap_env.sh"), *argv], check=check, stdin=stdin)

    def up(self, check: bool = True) -> subprocess.CompletedProcess[str]:
        return self.exec([str(self.root / "scripts/up")], check=check, timeout=900)

    def pid_file(self, service: str) -> str:
        return str(self.root / ".telestack/run" / service / "pid")

    def pids(self) -> dict[str, int | None]:
        return {name: running_pid(self.pid_file(name)) for name in self.outputs["services"]}

    def port(self, key: str) -> int:
        node: Any = yaml.safe_load(self.env_file.read_text())
        for part in key.split("."):
            node = node[part]
        return int(node)


def _environment(ports: dict[str, int]) -> dict[str, Any]:
    weed = {
        k: free_port()
        for k in (
            "master",
            "master_grpc",
            "volume",
            "volume_grpc",
            "filer",
            "filer_grpc",
            "s3_grpc",
            "webdav",
            "admin",
            "admin_grpc",
        )
    }
    return {
        "target": "local",
        "bind_host": "127.0.0.1",
        "start_timeout": 90,
        "gateway": {"port": ports["gateway"]},
        "allowed_origins": ["http://127.0.0.1"],
        "realtime": {"port": ports["realtime"]},
        "storage": {"bucket": "itest", "port": ports["s3"], "seaweedfs": weed},
        "auth": {"port": ports["auth"]},
        "mail": {"action_url": "http://127.0.0.1:5173/auth/action", "smtp_port": free_port(),
                 "ui_port": free_port()},
    }


@contextlib.contextmanager
def running_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """`scripts/up` in a fresh copy of the project on free ports; torn down (no process left) on exit.

    One bring-up per test module: each module that needs a real stack starts its own."""
    root = tmp_path_factory.mktemp("stack")
    for name in COPIED:
        src = ROOT / name
        if src.is_dir():
            shutil.copytree(src, root / name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        else:
            shutil.copy2(src, root / name)
    (root / ".venv").symlink_to(ROOT / ".venv")
    env_file = root / "config/environments/local.yaml"
    ports = {k: free_port() for k in ("gateway", "realtime", "s3", "auth")}
    env_file.write_text(yaml.safe_dump(_environment(ports)))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PULUMI_", "TELESTACK_"))}
    env.update({k: v for k, v in os.environ.items() if k in ("TELESTACK_BIN", "TELESTACK_CACHE")})
    s = Stack(root=root, env=env, outputs={}, env_file=env_file)
    try:
        s.up()
        s.outputs = json.loads(
            s.run("pulumi", "stack", "output", "--json", "--show-secrets", "--stack", "local").stdout
        )
        yield s
    finally:
        subprocess.run(
            [str(root / "scripts/down")], cwd=root, env=env, capture_output=True, timeout=300, check=False
        )
        for pid_file in (root / ".telestack/run").glob("*/pid"):  # never leave a process behind
            pid = running_pid(str(pid_file))
            if pid:
                os.killpg(pid, signal.SIGKILL)
