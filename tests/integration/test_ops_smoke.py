"""The smoke suite as CI runs it (``python -m tests.smoke --json``) against a real mini stack.

The stack: the gateway's ASGI app (uvicorn, SQLite file), the SuperTokens
stand-in, Centrifugo and SeaweedFS, each a real process on 127.0.0.1 started
by the shared fixtures. The suite passes against it; it fails, naming the
check, when row-level security is broken on purpose (a patched
``worker.documents.read_scope`` that no longer narrows reads to the owner) or
when a service is stopped.
"""

from __future__ import annotations

import gc
import json
import os
import secrets
import subprocess
import sys
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.smoke.checks import CHECKS
from tests.support.centrifugo import Centrifugo, start_centrifugo
from tests.support.gateway import serve
from tests.support.mailpit import self_signed_certificate, start_mailpit, start_relay_to
from tests.support.paths import CONFIG, ROOT, free_port
from tests.support.process import Process, stop_process
from tests.support.seaweedfs import SeaweedFS, start_seaweedfs
from tests.support.standin import Standin, start_standin

pytestmark = pytest.mark.stack

_LAUNCH = """
import os, sys, uvicorn
if os.environ.get("SMOKE_BREAK_RLS"):
    import worker.documents as documents
    _real = documents.read_scope
    def read_scope(principal, collection):  # still authenticates, but never narrows to the owner
        _real(principal, collection)
        return None
    documents.read_scope = read_scope
from worker.asgi import create_app
uvicorn.run(create_app(), host="127.0.0.1", port=int(os.environ["TELESTACK_PORT"]), log_level="warning")
"""


@dataclass
class MiniStack:
    workdir: Path
    s3: SeaweedFS
    auth: Standin
    centrifugo: Centrifugo
    admin_key: str

    def gateway_env(self, db: Path) -> dict[str, str]:
        return {
            "TELESTACK_DB_PATH": str(db),
            "TELESTACK_CONFIG_DIR": str(CONFIG),
            "TELESTACK_ADMIN_KEY": self.admin_key,
            "TELESTACK_AUTH_URL": self.auth.url,
            "TELESTACK_AUTH_API_KEY": self.auth.api_key,
            "TELESTACK_CENTRIFUGO_API_URL": self.centrifugo.api_url,
            "TELESTACK_CENTRIFUGO_API_KEY": self.centrifugo.api_key,
            "TELESTACK_CENTRIFUGO_TOKEN_SECRET": self.centrifugo.token_secret,
            "TELESTACK_CENTRIFUGO_WS_URL": self.centrifugo.ws_url,
            "TELESTACK_S3_ENDPOINT": self.s3.endpoint,
            "TELESTACK_S3_PUBLIC_ENDPOINT": self.s3.endpoint,
            "TELESTACK_S3_BUCKET": self.s3.bucket,
            "TELESTACK_S3_ACCESS_KEY_ID": self.s3.access_key,
            "TELESTACK_S3_SECRET_ACCESS_KEY": self.s3.secret_key,
        }

    def smoke_env(self, gateway_url: str) -> dict[str, str]:
        """What CI exports for a stack it did not deploy (the suite's env mode)."""
        return {
            "TELESTACK_GATEWAY_URL": gateway_url,
            "TELESTACK_ADMIN_KEY": self.admin_key,
            "TELESTACK_CENTRIFUGO_WS_URL": self.centrifugo.ws_url,
            "TELESTACK_AUTH_URL": self.auth.url,
            "TELESTACK_AUTH_API_KEY": self.auth.api_key,
            "TELESTACK_S3_ENDPOINT": self.s3.endpoint,
            "TELESTACK_S3_BUCKET": self.s3.bucket,
            "TELESTACK_S3_ACCESS_KEY_ID": self.s3.access_key,
            "TELESTACK_S3_SECRET_ACCESS_KEY": self.s3.secret_key,
            "TELESTACK_STATE_DIR": str(self.workdir),
        }


@pytest.fixture(scope="module")
def mini(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MiniStack]:
    workdir = tmp_path_factory.mktemp("smoke-stack")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ResourceWarning)  # earlier async tests' loop sockets (notes)
        s3 = start_seaweedfs(workdir, bucket="smoke")
        gc.collect()
    started: list[object] = [s3]
    try:
        (workdir / "auth").mkdir()
        auth = start_standin(workdir / "auth")
        started.append(auth)
        rt = start_centrifugo(workdir / "centrifugo")
        started.append(rt)
        yield MiniStack(workdir, s3, auth, rt, "admin-" + secrets.token_urlsafe(24))
    finally:
        for service in reversed(started):
            service.stop()  # type: ignore[attr-defined]


@pytest.fixture
def gateway_factory(mini: MiniStack, tmp_path: Path) -> Iterator[object]:
    procs: list[Process] = []

    def start(*, break_rls: bool = False, **overrides: str) -> str:
        settings = {**mini.gateway_env(tmp_path / f"gateway-{len(procs)}.sqlite3"), **overrides}
        if break_rls:
            settings["SMOKE_BREAK_RLS"] = "1"
        proc, url = serve(tmp_path, settings, argv=("-c", _LAUNCH))
        procs.append(proc)
        return url

    yield start
    for proc in procs:
        stop_process(proc)


def run_smoke(env: dict[str, str], *args: str) -> tuple[int, dict[str, object], str]:
    full = {k: v for k, v in os.environ.items() if not k.startswith("TELESTACK_")} | env
    proc = subprocess.run(
        [sys.executable, "-m", "tests.smoke", "--json", *args],
        env=full,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    report = json.loads(proc.stdout) if proc.stdout.strip().startswith("{") else {}
    return proc.returncode, report, proc.stderr


def _users(standin: Standin) -> int:
    import sqlite3

    con = sqlite3.connect(standin.db_path)
    try:
        return int(con.execute("SELECT count(*) FROM users WHERE email LIKE 'smoke+%'").fetchone()[0])
    finally:
        con.close()


def _objects(s3: SeaweedFS) -> list[str]:
    listing = s3.client().list_objects_v2(Bucket=s3.bucket)
    return [o["Key"] for o in listing.get("Contents", [])]


def test_smoke_passes_against_a_healthy_stack_and_cleans_up(mini: MiniStack, gateway_factory) -> None:  # type: ignore[no-untyped-def]
    url = gateway_factory()
    code, report, stderr = run_smoke(mini.smoke_env(url))
    assert code == 0, f"{report.get('summary')}\n{stderr}"
    # every check of the suite ran (the rules examples added two)
    assert report["passed"] is True and len(report["checks"]) == len(CHECKS)  # type: ignore[arg-type]
    assert all(
        line.startswith("PASS ") for line in stderr.splitlines() if line[:5] in ("PASS ", "FAIL ", "SKIP ")
    )
    assert report["cleanup"]["left"] == []  # type: ignore[index]
    # A, B, and C (deleted by its own check; the journal still names it and /user/remove is idempotent)
    assert report["cleanup"]["removed"]["users"] == 3  # type: ignore[index]
    assert _users(mini.auth) == 0 and _objects(mini.s3) == []
    assert not list((mini.workdir / "smoke-runs").glob("*.json"))
    for secret in (mini.admin_key, mini.s3.secret_key, mini.auth.api_key):
        assert secret not in stderr and secret not in json.dumps(report)


def test_broken_rls_fails_the_rls_check_by_name(mini: MiniStack, gateway_factory) -> None:  # type: ignore[no-untyped-def]
    url = gateway_factory(break_rls=True)
    code, report, stderr = run_smoke(mini.smoke_env(url))
    assert code == 1
    assert "documents.rls" in report["failed"]  # type: ignore[operator]
    assert any(
        line.startswith("FAIL documents.rls: user B read A's private document")
        for line in stderr.splitlines()
    )
    assert "failed: documents.rls" in str(report["summary"])
    assert report["cleanup"]["left"] == []  # type: ignore[index]


def test_a_stopped_auth_service_fails_signup_and_skips_what_needs_it(
    mini: MiniStack, gateway_factory
) -> None:  # type: ignore[no-untyped-def]
    url = gateway_factory(TELESTACK_AUTH_URL=f"http://127.0.0.1:{free_port()}")  # nothing listens there
    code, report, stderr = run_smoke(mini.smoke_env(url))
    assert code == 1
    assert report["failed"] == ["health", "auth.signup"]  # type: ignore[comparison-overlap]
    assert set(report["skipped"]) == {c["name"] for c in report["checks"]} - {"health", "auth.signup"}  # type: ignore[union-attr,index]
    assert "FAIL health" in stderr and "auth=" in stderr


def test_cleanup_stale_removes_what_a_crashed_run_left(mini: MiniStack, gateway_factory) -> None:  # type: ignore[no-untyped-def]
    url = gateway_factory()
    env = mini.smoke_env(url)
    code, report, _ = run_smoke(env, "--keep")
    assert code == 0 and _users(mini.auth) == 2 and _objects(mini.s3)
    assert list((mini.workdir / "smoke-runs").glob("*.json"))  # the journal of the "crashed" run

    code, left, stderr = run_smoke(env, "--cleanup-stale")
    assert code == 0, stderr
    assert left["left"] == [] and left["removed"]["users"] == 3  # type: ignore[index]  # A, B, C (see above)
    assert _users(mini.auth) == 0 and _objects(mini.s3) == []
    assert not list((mini.workdir / "smoke-runs").glob("*.json"))
    admin = {"Authorization": f"Bearer {mini.admin_key}"}
    q = httpx.post(
        f"{url}/v1/collections/notes/query",
        json={"where": [["meta.smoke_run", "exists", True]]},
        headers=admin,
        timeout=10,
    )
    assert q.status_code == 200 and q.json()["documents"] == []


MAIL_CHECKS = "auth.signup,auth.signin,auth.verification,auth.reset"


def _smoke_mail_checks_pass(env: dict[str, str]) -> tuple[dict[str, Any], str]:
    """The smoke suite's mail checks against ``env``: all pass, a link verified and a password reset."""
    code, report, stderr = run_smoke(env, "--only", MAIL_CHECKS)
    assert code == 0, f"{report.get('summary')}\n{stderr}"
    lines = [line for line in stderr.splitlines() if line.startswith("PASS auth.")]
    assert any("link mailed, verified once" in line for line in lines), stderr
    assert any("new password set once" in line for line in lines), stderr
    return report, stderr


def test_smoke_reads_verification_and_reset_mail_from_the_stacks_mailpit(
    mini: MiniStack, gateway_factory, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    mail = start_mailpit(tmp_path)
    try:
        url = gateway_factory(TELESTACK_SMTP_HOST="127.0.0.1", TELESTACK_SMTP_PORT=str(mail.smtp_port),
                              TELESTACK_SMTP_SECURITY="none", TELESTACK_SMTP_FROM="smoke@telestack.test",
                              TELESTACK_AUTH_ACTION_URL="http://127.0.0.1:5173/auth/action")
        env = {**mini.smoke_env(url), "TELESTACK_MAIL_UI_URL": mail.api_url}
        _smoke_mail_checks_pass(env)
    finally:
        mail.stop()


def test_smoke_reads_a_cloud_stacks_mail_through_its_relay_with_the_relay_key(
    mini: MiniStack, gateway_factory, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    """A cloud stack with mail: the gateway posts to the relay (as the Worker does), the relay hands the
    mail to the provider and keeps the newest copy, which the smoke suite reads with the relay key (the
    stack outputs mail_ui_url and the secret mail_relay_key). Without the key the relay refuses it."""
    login, key = ("provider-user", "provider-password-0123"), "smoke-relay-key-0123456789abcdefgh"
    provider = start_mailpit(tmp_path, smtp_login=login, tls=self_signed_certificate(tmp_path))
    (tmp_path / "relay").mkdir()
    relay = start_relay_to(provider, tmp_path / "relay", key, login)
    try:
        url = gateway_factory(TELESTACK_MAIL_RELAY_URL=relay.api_url, TELESTACK_MAIL_RELAY_KEY=key,
                              TELESTACK_SMTP_FROM="smoke@telestack.test",
                              TELESTACK_AUTH_ACTION_URL="https://app.telestack.test/auth/action")
        env = {**mini.smoke_env(url), "TELESTACK_MAIL_UI_URL": relay.api_url, "TELESTACK_MAIL_RELAY_KEY": key}
        report, stderr = _smoke_mail_checks_pass(env)
        assert key not in stderr and key not in json.dumps(report)
        env["TELESTACK_MAIL_RELAY_KEY"] = "not-the-key"
        code, _, stderr = run_smoke(env, "--only", MAIL_CHECKS)
        assert code != 0 and "FAIL auth.verification" in stderr, stderr
    finally:
        relay.stop()
        provider.stop()
