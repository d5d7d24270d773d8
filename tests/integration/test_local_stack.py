"""The local stack for real: `scripts/up` (bootstrap + `pulumi up --stack local`) in a copy of the repo.

One bring-up is shared by the whole module: a copy of the project in a temp
directory (its own state folder, Pulumi file backend and passphrase) with every
port chosen free, so it never touches the developer's stack. The last test
runs `scripts/down`; the fixture tears down again in any case.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from infra.local_process import running_pid
from tests.support.paths import ROOT, free_port

pytestmark = pytest.mark.stack

COPIED = ("Pulumi.yaml", "infra", "worker", "config", "scripts", "requirements.txt", "requirements")
SECRET_OUTPUTS = (
    "admin_key",
    "centrifugo_api_key",
    "centrifugo_token_secret",
    "s3_access_key_id",
    "s3_secret_access_key",
    "auth_api_key",
)
HEALTH = {"centrifugo": "/health", "seaweedfs": "/healthz", "auth": "/hello", "gateway": "/v1/health"}


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
        "realtime": {"port": ports["realtime"], "allowed_origins": ["http://127.0.0.1"]},
        "storage": {"bucket": "itest", "port": ports["s3"], "seaweedfs": weed},
        "auth": {"port": ports["auth"]},
    }


@contextlib.contextmanager
def running_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """`scripts/up` in a fresh copy of the project on free ports; torn down (no process left) on exit.

    Shared with tests/integration/test_local_rotation.py (one bring-up per module)."""
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


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    with running_stack(tmp_path_factory) as s:
        yield s


def _get(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=5) as resp:
            return int(resp.status)
    except urllib.error.HTTPError as exc:
        return int(exc.code)


def _health_url(stack: Stack, service: str) -> str:
    port = {
        "centrifugo": "realtime.port",
        "seaweedfs": "storage.port",
        "auth": "auth.port",
        "gateway": "gateway.port",
    }[service]
    return f"http://127.0.0.1:{stack.port(port)}{HEALTH[service]}"


def _wait_dead(pid: int) -> None:
    while (
        Path(f"/proc/{pid}").exists() and Path(f"/proc/{pid}/stat").read_text().split(") ")[1][0] not in "ZX"
    ):
        time.sleep(0.05)


def _listening_inodes() -> dict[str, str]:
    """socket inode -> local address of every listening TCP socket."""
    found: dict[str, str] = {}
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            cols = line.split()
            if cols[3] == "0A":
                found[cols[9]] = cols[1]
    return found


def test_outputs_name_every_endpoint_and_keep_secrets_secret(stack: Stack) -> None:
    out = stack.outputs
    assert out["gateway_url"] == f"http://127.0.0.1:{stack.port('gateway.port')}"
    assert out["centrifugo_ws_url"] == f"ws://127.0.0.1:{stack.port('realtime.port')}/connection/websocket"
    assert (
        out["s3_endpoint"] == f"http://127.0.0.1:{stack.port('storage.port')}" and out["s3_bucket"] == "itest"
    )
    assert out["auth_url"] == f"http://127.0.0.1:{stack.port('auth.port')}"
    assert all(len(out[k]) >= 20 for k in SECRET_OUTPUTS)
    plain = json.loads(stack.run("pulumi", "stack", "output", "--json", "--stack", "local").stdout)
    assert all(plain[k] == "[secret]" for k in SECRET_OUTPUTS)


def test_each_service_answers_its_health_check(stack: Stack) -> None:
    assert {"centrifugo", "seaweedfs"} <= set(stack.outputs["services"])
    for service in stack.outputs["services"]:
        ok = (200, 503) if service == "gateway" else (200,)
        assert _get(_health_url(stack, service)) in ok, service


def test_services_listen_on_loopback_only(stack: Stack) -> None:
    listening = _listening_inodes()
    for service, pid in stack.pids().items():
        assert pid, f"{service} is not running"
        group = [int(p) for p in os.listdir("/proc") if p.isdigit() and _pgid(int(p)) == pid]
        addrs = [listening[ino] for p in group for ino in _socket_inodes(p) if ino in listening]
        assert addrs, f"{service} listens nowhere"
        for addr in addrs:
            host = addr.split(":")[0]
            assert host in ("0100007F", "00000000000000000000000001000000"), f"{service} listens on {addr}"


def _pgid(pid: int) -> int | None:
    try:
        return os.getpgid(pid)
    except ProcessLookupError:
        return None


def _socket_inodes(pid: int) -> list[str]:
    inodes = []
    try:
        for fd in os.listdir(f"/proc/{pid}/fd"):
            target = os.readlink(f"/proc/{pid}/fd/{fd}")
            if target.startswith("socket:["):
                inodes.append(target[8:-1])
    except (FileNotFoundError, ProcessLookupError):
        pass
    return inodes


def test_no_secret_in_plain_text_in_state_config_or_logs(stack: Stack) -> None:
    files = [*stack.root.glob("Pulumi.*.yaml"), *(stack.root / ".telestack").rglob("*")]
    texts = [f.read_bytes() for f in files if f.is_file() and f.stat().st_size < 20_000_000]
    assert any(b"LocalProcess" in t for t in texts), "the state file was read"
    for key in SECRET_OUTPUTS:
        value = stack.outputs[key].encode()
        assert not any(value in t for t in texts), f"{key} appears in plain text under the stack folder"


def test_up_again_changes_nothing(stack: Stack) -> None:
    before = stack.pids()
    stack.run("pulumi", "preview", "--stack", "local", "--expect-no-changes", "--non-interactive")
    stack.up()
    assert stack.pids() == before


def test_a_killed_service_is_restored_by_up_and_only_it_restarts(stack: Stack) -> None:
    before = stack.pids()
    victim = before["centrifugo"]
    assert victim
    os.killpg(victim, signal.SIGKILL)
    _wait_dead(victim)
    stack.up()
    after = stack.pids()
    assert after["centrifugo"] and after["centrifugo"] != victim
    assert {k: v for k, v in after.items() if k != "centrifugo"} == {
        k: v for k, v in before.items() if k != "centrifugo"
    }
    assert _get(_health_url(stack, "centrifugo")) == 200


def test_a_changed_spec_restarts_only_that_service(stack: Stack) -> None:
    before = stack.pids()
    data = yaml.safe_load(stack.env_file.read_text())
    data["realtime"]["allowed_origins"] = ["http://127.0.0.1", "http://localhost"]
    stack.env_file.write_text(yaml.safe_dump(data))
    stack.up()
    after = stack.pids()
    assert after["centrifugo"] != before["centrifugo"]
    assert after["seaweedfs"] == before["seaweedfs"]


def test_a_port_in_use_is_reported_by_number_and_setting(stack: Stack) -> None:
    victim = stack.pids()["centrifugo"]
    assert victim
    os.killpg(victim, signal.SIGKILL)
    _wait_dead(victim)
    port = stack.port("realtime.port")
    with _squat(port):
        proc = stack.up(check=False)
    assert proc.returncode != 0
    expected = f"port {port} (http) on 127.0.0.1 is already in use (set by local.yaml: realtime.port)"
    assert expected in proc.stderr, "\n".join(line for line in proc.stderr.splitlines() if "error" in line)
    stack.up()
    assert _get(_health_url(stack, "centrifugo")) == 200


@contextlib.contextmanager
def _squat(port: int) -> Iterator[socket.socket]:
    """Listen on ``port``; a killed server's orphaned FIN-WAIT sockets may hold it for a while first."""
    deadline = time.monotonic() + 90
    while True:
        squatter = socket.socket()
        squatter.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            squatter.bind(("127.0.0.1", port))
            break
        except OSError:
            squatter.close()
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)
    with squatter:
        squatter.listen()
        yield squatter


def test_a_malformed_setting_stops_up_naming_it(stack: Stack) -> None:
    good = stack.env_file.read_text()
    before = stack.pids()
    try:
        stack.env_file.write_text(
            re.sub(rf"port: {stack.port('gateway.port')}\b", "port: eighty", good, count=1)
        )
        proc = stack.up(check=False)
        assert proc.returncode != 0
        assert "local.yaml: gateway.port: expected an integer, got str 'eighty'" in proc.stderr
        assert "Traceback" not in proc.stderr
    finally:
        stack.env_file.write_text(good)
    assert stack.pids() == before, "a refused update leaves the running services alone"


def test_a_missing_secret_stops_up_naming_it(stack: Stack) -> None:
    stack.run("pulumi", "config", "rm", "--stack", "local", "telestack:adminKey")
    try:
        proc = stack.run(
            "pulumi", "up", "--stack", "local", "--yes", "--skip-preview", "--non-interactive", check=False
        )
        assert proc.returncode != 0
        assert "telestack:adminKey" in proc.stdout + proc.stderr
    finally:
        stack.run(
            "pulumi",
            "config",
            "set",
            "--secret",
            "--stack",
            "local",
            "telestack:adminKey",
            stdin=stack.outputs["admin_key"],
        )


def test_destroy_leaves_no_process(stack: Stack) -> None:
    pids = [p for p in stack.pids().values() if p]
    assert pids
    proc = subprocess.run(
        [str(stack.root / "scripts/down")],
        cwd=stack.root,
        env=stack.env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    for pid in pids:
        assert (
            not Path(f"/proc/{pid}").exists()
            or Path(f"/proc/{pid}/stat").read_text().split(") ")[1][0] == "Z"
        )
    for service in stack.outputs["services"]:
        assert not Path(stack.pid_file(service)).exists(), service
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # TIME_WAIT is not "in use"
        s.bind(("127.0.0.1", stack.port("realtime.port")))  # nothing listens there any more
