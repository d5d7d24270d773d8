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
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import yaml

from infra.secret_keys import SECRET_OUTPUTS
from tests.support.local_stack import Stack, running_stack

pytestmark = pytest.mark.stack

HEALTH = {"centrifugo": "/health", "seaweedfs": "/healthz", "auth": "/hello", "gateway": "/v1/health",
          "mailpit": "/livez"}


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
        "mailpit": "mail.ui_port",
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
    assert {"centrifugo", "seaweedfs", "mailpit"} <= set(stack.outputs["services"])
    for service in stack.outputs["services"]:
        ok = (200, 503) if service == "gateway" else (200,)
        assert _get(_health_url(stack, service)) in ok, service


def test_up_puts_the_bucket_rules_of_storage_yaml_on_the_bucket(stack: Stack) -> None:
    """A browser's CORS preflight: an origin config/storage.yaml allows is answered, any other refused
    (SeaweedFS without bucket rules answers every origin)."""
    allowed = yaml.safe_load(stack.env_file.read_text())["allowed_origins"][0]
    url = f"{stack.outputs['s3_endpoint']}/{stack.outputs['s3_bucket']}/users/u1/photo.png"

    def preflight(origin: str) -> httpx.Response:
        headers = {"Origin": origin, "Access-Control-Request-Method": "PUT"}
        return httpx.options(url, headers=headers, trust_env=False, timeout=10)

    ok = preflight(allowed)
    assert ok.status_code == 200 and ok.headers.get("access-control-allow-origin") in (allowed, "*"), ok
    refused = preflight("http://evil.test")
    assert refused.status_code == 403 and "access-control-allow-origin" not in refused.headers, refused


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


def test_the_gateway_mails_through_the_stacks_mailpit(stack: Stack) -> None:
    gateway, ui = stack.outputs["gateway_url"], stack.outputs["mail_ui_url"]
    assert ui == f"http://127.0.0.1:{stack.port('mail.ui_port')}"
    email = f"local-{os.getpid()}-{int(time.time())}@example.com"
    up = httpx.post(f"{gateway}/v1/auth/signup", json={"email": email, "password": "local stack 1"},
                    timeout=30)
    assert up.status_code == 201, up.text
    r = httpx.post(f"{gateway}/v1/auth/email/verification", timeout=30,
                   headers={"authorization": f"Bearer {up.json()['access_token']}"})
    assert r.status_code == 202, r.text
    deadline = time.monotonic() + 15
    while True:
        found = httpx.get(f"{ui}/api/v1/search", params={"query": f'to:"{email}"'}, timeout=10).json()
        if found["messages"]:
            break
        assert time.monotonic() < deadline, "the verification mail never reached Mailpit"
        time.sleep(0.2)
    assert found["messages"][0]["Subject"] == "Verify your email address"


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
    # the origins are in two specs (Centrifugo's config, the gateway's env) and in the bucket rules
    data["allowed_origins"] = ["http://127.0.0.1", "http://localhost"]
    stack.env_file.write_text(yaml.safe_dump(data))
    stack.up()
    after = stack.pids()
    assert after["centrifugo"] != before["centrifugo"] and after["gateway"] != before["gateway"]
    assert after["seaweedfs"] == before["seaweedfs"] and after["auth"] == before["auth"]
    url = f"{stack.outputs['s3_endpoint']}/{stack.outputs['s3_bucket']}/users/u1/photo.png"
    preflight = {"Origin": "http://localhost", "Access-Control-Request-Method": "PUT"}
    assert httpx.options(url, headers=preflight, trust_env=False, timeout=10).status_code == 200, \
        "the bucket rules are put again with the new origins, the server left running"


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
