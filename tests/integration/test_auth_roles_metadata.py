"""Roles (admin API, on the principal after refresh) and the user's own metadata, against a real stand-in."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.inprocess_gateway import AuthGateway, open_gateway
from tests.support.standin import Standin, start_standin
from worker.http import Request

PASSWORD = "correct horse 1"


@pytest.fixture(scope="module")
def core(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Standin]:
    s = start_standin(tmp_path_factory.mktemp("core"))
    yield s
    s.stop()


@pytest.fixture
async def gw(tmp_path: Path, core: Standin) -> AsyncIterator[AuthGateway]:
    g = await open_gateway(tmp_path, core)
    yield g
    await g.close()


async def _user(gw: AuthGateway) -> dict[str, Any]:
    email = f"r-{uuid.uuid4().hex[:10]}@example.com"
    a = await gw.call("POST", "/v1/auth/signup", {"email": email, "password": PASSWORD},
                      address=f"10.9.{uuid.uuid4().int % 250}.1")
    assert a.status == 201, a.body
    return a.body


def _role() -> str:
    return f"editor-{uuid.uuid4().hex[:6]}"


def _forged(token: str) -> str:
    return token[:-6] + ("AAAAAA" if not token.endswith("AAAAAA") else "BBBBBB")


# --- roles -----------------------------------------------------------------------------------

async def test_an_assigned_role_reaches_the_principal_at_the_next_refresh(gw: AuthGateway) -> None:
    user = await _user(gw)
    uid, token = user["user"]["id"], user["access_token"]
    role = _role()
    created = await gw.call("PUT", f"/v1/auth/roles/{role}", token=gw.admin_key)
    assert (created.status, created.body) == (201, {"role": role, "created": True})
    assert (await gw.call("PUT", f"/v1/auth/roles/{role}", token=gw.admin_key)).status == 200
    assert role in (await gw.call("GET", "/v1/auth/roles", token=gw.admin_key)).body["roles"]
    assigned = await gw.call("PUT", f"/v1/auth/users/{uid}/roles/{role}", token=gw.admin_key)
    assert assigned.status == 200
    assert assigned.body == {"user_id": uid, "roles": [role], "sessions_updated": 1}
    # the token already issued keeps the roles it was signed with...
    assert (await gw.call("GET", "/v1/auth/me", token=token)).body["roles"] == []
    # ...the next refresh carries the new ones, and a new sign-in does too
    refreshed = await gw.call("POST", "/v1/auth/refresh", {"refresh_token": user["refresh_token"]})
    assert refreshed.status == 200
    bearer = Request("GET", "/", headers={"authorization": f"Bearer {refreshed.body['access_token']}"})
    assert (await gw.gateway.authenticator.authenticate(bearer)).roles == (role,)
    credentials = {"email": user["user"]["email"], "password": PASSWORD}
    signed_in = await gw.call("POST", "/v1/auth/signin", credentials)
    assert (await gw.call("GET", "/v1/auth/me", token=signed_in.body["access_token"])).body["roles"] == [role]
    removed = await gw.call("DELETE", f"/v1/auth/users/{uid}/roles/{role}", token=gw.admin_key)
    assert removed.body["roles"] == [] and removed.body["sessions_updated"] == 2
    again = await gw.call("POST", "/v1/auth/refresh", {"refresh_token": refreshed.body["refresh_token"]})
    assert (await gw.call("GET", "/v1/auth/me", token=again.body["access_token"])).body["roles"] == []
    listed = await gw.call("GET", f"/v1/auth/users/{uid}/roles", token=gw.admin_key)
    assert listed.body == {"user_id": uid, "roles": []}
    deleted = await gw.call("DELETE", f"/v1/auth/roles/{role}", token=gw.admin_key)
    assert deleted.body == {"role": role, "deleted": True}


async def test_unknown_and_malformed_roles_are_4xx(gw: AuthGateway) -> None:
    user = await _user(gw)
    uid = user["user"]["id"]
    unknown = await gw.call("PUT", f"/v1/auth/users/{uid}/roles/never-made", token=gw.admin_key)
    assert (unknown.status, unknown.body["error"]["code"]) == (404, "unknown_role")
    bad = await gw.call("PUT", "/v1/auth/roles/-bad", token=gw.admin_key)
    assert (bad.status, bad.body["error"]["code"]) == (400, "invalid_role")


@pytest.mark.parametrize(("method", "path"), [
    ("GET", "/v1/auth/roles"), ("PUT", "/v1/auth/roles/x1"), ("DELETE", "/v1/auth/roles/x1"),
    ("GET", "/v1/auth/users/u1/roles"), ("PUT", "/v1/auth/users/u1/roles/x1"),
    ("DELETE", "/v1/auth/users/u1/roles/x1"),
])
async def test_roles_api_refuses_users_and_anonymous_callers(gw: AuthGateway, method: str, path: str) -> None:
    user = await _user(gw)
    as_user = await gw.call(method, path, token=user["access_token"])
    assert (as_user.status, as_user.body["error"]["code"]) == (403, "forbidden")
    assert (await gw.call(method, path)).status == 401
    assert (await gw.call(method, path, token=_forged(user["access_token"]))).status == 401
    assert (await gw.call(method, path, token=gw.admin_key + "x")).status == 401


# --- metadata --------------------------------------------------------------------------------

async def test_metadata_merge_patch_is_the_users_own(gw: AuthGateway) -> None:
    alice, bob = await _user(gw), await _user(gw)
    token = alice["access_token"]
    assert (await gw.call("GET", "/v1/auth/me/metadata", token=token)).body == {"metadata": {}}
    patch = {"display_name": "Alice", "prefs": {"a": 1, "b": 2}}
    first = await gw.call("PATCH", "/v1/auth/me/metadata", patch, token=token,
                          content_type="application/merge-patch+json")
    assert first.status == 200
    assert first.body["metadata"] == {"display_name": "Alice", "prefs": {"a": 1, "b": 2}}
    # nested keys merge (RFC 7386), a null removes
    second = await gw.call("PATCH", "/v1/auth/me/metadata", {"prefs": {"a": None, "c": 3}}, token=token)
    assert second.body["metadata"] == {"display_name": "Alice", "prefs": {"b": 2, "c": 3}}
    assert (await gw.call("GET", "/v1/auth/me/metadata", token=token)).body == second.body
    assert (await gw.call("GET", "/v1/auth/me/metadata", token=bob["access_token"])).body == {"metadata": {}}


async def test_metadata_over_the_size_limit_or_against_the_schema_is_refused_and_unchanged(
        gw: AuthGateway) -> None:
    user = await _user(gw)
    token = user["access_token"]
    await gw.call("PATCH", "/v1/auth/me/metadata", {"locale": "de"}, token=token)
    limit = gw.gateway.metadata_rules.max_bytes
    big = await gw.call("PATCH", "/v1/auth/me/metadata", {"notes": "x" * limit}, token=token)
    assert (big.status, big.body["error"]["code"]) == (413, "metadata_too_large")
    # config/auth.yaml's schema: display_name is a string of at most 100
    bad = await gw.call("PATCH", "/v1/auth/me/metadata", {"display_name": 42}, token=token)
    assert (bad.status, bad.body["error"]["code"]) == (422, "schema_violation")
    assert (await gw.call("PATCH", "/v1/auth/me/metadata", ["x"], token=token)).status == 400
    assert (await gw.call("GET", "/v1/auth/me/metadata", token=token)).body == {"metadata": {"locale": "de"}}


@pytest.mark.parametrize("method", ["GET", "PATCH"])
async def test_metadata_refuses_anonymous_forged_and_admin_callers(gw: AuthGateway, method: str) -> None:
    user = await _user(gw)
    body = {"locale": "fr"} if method == "PATCH" else None
    assert (await gw.call(method, "/v1/auth/me/metadata", body)).status == 401
    forged = await gw.call(method, "/v1/auth/me/metadata", body, token=_forged(user["access_token"]))
    assert forged.status == 401
    admin = await gw.call(method, "/v1/auth/me/metadata", body, token=gw.admin_key)
    assert (admin.status, admin.body["error"]["code"]) == (400, "no_user")
