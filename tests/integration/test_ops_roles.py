"""``python -m scripts.ops roles`` against a real gateway process and stand-in."""

from __future__ import annotations

import io
import json
import secrets
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest

from scripts.ops.cli import main
from scripts.ops.console import Console
from tests.support.gateway import serve
from tests.support.process import stop_process
from tests.support.standin import start_standin


@dataclass
class Stack:
    url: str
    admin_key: str


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    tmp = tmp_path_factory.mktemp("ops-roles")
    core = start_standin(tmp)
    admin_key = "admin-" + secrets.token_hex(16)
    proc, url = serve(tmp, {"TELESTACK_ADMIN_KEY": admin_key, "TELESTACK_AUTH_URL": core.url,
                            "TELESTACK_AUTH_API_KEY": core.api_key,
                            "TELESTACK_DB_PATH": str(tmp / "gateway.sqlite3")})
    try:
        yield Stack(url, admin_key)
    finally:
        stop_process(proc)
        core.stop()


def _ops(monkeypatch: pytest.MonkeyPatch, stack: Stack, *argv: str,
         key: str | None = None) -> tuple[int, str]:
    monkeypatch.setenv("TELESTACK_GATEWAY_URL", stack.url)
    monkeypatch.setenv("TELESTACK_ADMIN_KEY", key or stack.admin_key)
    console = Console(stdout=io.StringIO(), stderr=io.StringIO())
    code = main(["roles", *argv, "--json"], console)
    return code, console.stdout.getvalue()  # type: ignore[attr-defined]


def test_create_assign_show_remove_delete(monkeypatch: pytest.MonkeyPatch, stack: Stack) -> None:
    with httpx.Client(base_url=stack.url, timeout=30) as http:
        user = http.post("/v1/auth/signup", json={"email": f"ops-{uuid.uuid4().hex[:8]}@example.com",
                                                  "password": "correct horse 1"}).json()
        uid = user["user"]["id"]
        role = f"ops-{uuid.uuid4().hex[:6]}"
        code, out = _ops(monkeypatch, stack, "assign", uid, role)
        assert code == 2 and "unknown_role" in out  # not created yet: a usage error, nothing written
        assert _ops(monkeypatch, stack, "create", role)[0] == 0
        code, out = _ops(monkeypatch, stack, "assign", uid, role)
        assert code == 0 and json.loads(out) == {"user_id": uid, "roles": [role], "sessions_updated": 1}
        refreshed = http.post("/v1/auth/refresh", json={"refresh_token": user["refresh_token"]}).json()
        me = http.get("/v1/auth/me", headers={"authorization": f"Bearer {refreshed['access_token']}"}).json()
        assert me["roles"] == [role]
        assert json.loads(_ops(monkeypatch, stack, "show", uid)[1])["roles"] == [role]
        code, out = _ops(monkeypatch, stack, "remove", uid, role, "--dry-run")
        assert code == 0 and json.loads(out)["dry_run"] is True
        # the dry run wrote nothing
        assert json.loads(_ops(monkeypatch, stack, "show", uid)[1])["roles"] == [role]
        assert json.loads(_ops(monkeypatch, stack, "remove", uid, role)[1])["roles"] == []
        assert json.loads(_ops(monkeypatch, stack, "delete", role)[1]) == {"role": role, "deleted": True}
        assert role not in json.loads(_ops(monkeypatch, stack, "list")[1])["roles"]


def test_a_wrong_admin_key_is_refused(monkeypatch: pytest.MonkeyPatch, stack: Stack) -> None:
    code, out = _ops(monkeypatch, stack, "create", "never", key="not-the-admin-key-" + "x" * 20)
    assert code == 1 and "401" in out
    assert "never" not in json.loads(_ops(monkeypatch, stack, "list")[1])["roles"]


def test_wrong_arity_is_a_usage_error(monkeypatch: pytest.MonkeyPatch, stack: Stack) -> None:
    assert _ops(monkeypatch, stack, "assign", "only-a-user")[0] == 2
