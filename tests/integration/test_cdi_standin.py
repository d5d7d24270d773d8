"""Stand-in specifics a real core is not asked about: restarts, strict rotation, tenants."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import httpx
import jwt

from tests.support.standin import Standin, start_standin


def _post(s: Standin, path: str, body: dict[str, Any]) -> dict[str, Any]:
    r = httpx.post(s.url + path, json=body, headers={"api-key": s.api_key, "cdi-version": "5.6"}, timeout=30)
    assert r.status_code == 200, r.text
    return r.json()


def _session(s: Standin, user_id: str) -> dict[str, Any]:
    return _post(s, "/recipe/session", {"userId": user_id, "userDataInJWT": {}, "userDataInDatabase": {},
                                        "enableAntiCsrf": False})


def _refresh(s: Standin, token: str) -> dict[str, Any]:
    return _post(s, "/recipe/session/refresh",
                 {"refreshToken": token, "enableAntiCsrf": False, "useDynamicSigningKey": True})


def test_restart_keeps_users_sessions_and_keys(standin: Standin) -> None:
    user = _post(standin, "/recipe/signup", {"email": "keep@example.com", "password": "pw-123456"})["user"]
    created = _session(standin, user["id"])
    kid = jwt.get_unverified_header(created["accessToken"]["token"])["kid"]
    _post(standin, "/recipe/signin", {"email": "keep@example.com", "password": "pw-123456"})
    standin.restart()
    assert _post(standin, "/recipe/signin",
                 {"email": "keep@example.com", "password": "pw-123456"})["user"]["id"] == user["id"]
    jwks = httpx.get(standin.url + "/.well-known/jwks.json", timeout=10).json()["keys"]
    assert kid in {k["kid"] for k in jwks}  # tokens issued before the restart still verify
    verified = _post(standin, "/recipe/session/verify", {"accessToken": created["accessToken"]["token"],
                                                         "enableAntiCsrf": False, "doAntiCsrfCheck": False,
                                                         "checkDatabase": True})
    assert verified["status"] == "OK"
    assert _refresh(standin, created["refreshToken"]["token"])["status"] == "OK"


def test_zero_grace_period_makes_any_reuse_theft(tmp_path: Path) -> None:
    s = start_standin(tmp_path, refresh_token_rotation_grace_period="0")
    try:
        created = _session(s, "strict-user")
        rt0 = created["refreshToken"]["token"]
        rt1 = _refresh(s, rt0)["refreshToken"]["token"]
        theft = _refresh(s, rt0)
        assert theft["status"] == "TOKEN_THEFT_DETECTED" and theft["recentTokenReuseSubtype"] == "RECENT_PREV"
        assert _refresh(s, rt1)["status"] == "UNAUTHORISED"  # the core revoked the whole session
    finally:
        s.stop()


def test_only_the_public_app_and_tenant_exist(standin: Standin) -> None:
    headers = {"api-key": standin.api_key}
    body = {"email": "t@example.com", "password": "pw-123456"}
    r = httpx.post(standin.url + "/tenant-b/recipe/signup", json=body, headers=headers, timeout=10)
    assert r.status_code == 400 and r.text.startswith("AppId or tenantId not found")
    r = httpx.post(standin.url + "/appid-other/recipe/signup", json=body, headers=headers, timeout=10)
    assert r.status_code == 400
    # app-level APIs refuse a tenant prefix, as the core does from CDI 5.0
    r = httpx.get(standin.url + "/tenant-b/recipe/user/metadata?userId=u", headers=headers, timeout=10)
    assert r.status_code == 403


def test_an_older_third_party_table_keeps_its_verified_emails(tmp_path: Path) -> None:
    """The first third-party layout kept `verified` on the user row; the shared verified set takes it over."""
    db = sqlite3.connect(tmp_path / "supertokens.sqlite3")
    db.executescript("""
        CREATE TABLE thirdparty_users (
          app_id TEXT NOT NULL, tenant_id TEXT NOT NULL, user_id TEXT NOT NULL,
          third_party_id TEXT NOT NULL, third_party_user_id TEXT NOT NULL,
          email TEXT NOT NULL, verified INTEGER NOT NULL, time_joined INTEGER NOT NULL,
          PRIMARY KEY (app_id, user_id), UNIQUE (app_id, third_party_id, third_party_user_id));
        INSERT INTO thirdparty_users VALUES
          ('public', 'public', 'tp-verified', 'google', 'sub-1', 'kept@example.com', 1, 1),
          ('public', 'public', 'tp-unverified', 'google', 'sub-2', 'new@example.com', 0, 2);
    """)
    db.close()
    s = start_standin(tmp_path)
    try:
        headers = {"api-key": s.api_key, "cdi-version": "5.6"}

        def verified(user_id: str) -> bool:
            r = httpx.get(f"{s.url}/user/id", params={"userId": user_id}, headers=headers, timeout=10)
            return r.json()["user"]["loginMethods"][0]["verified"]

        assert verified("tp-verified") is True and verified("tp-unverified") is False
        again = _post(s, "/recipe/signinup", {"thirdPartyId": "google", "thirdPartyUserId": "sub-1",
                                              "email": {"id": "kept@example.com", "isVerified": False}})
        assert again["createdNewUser"] is False and again["user"]["loginMethods"][0]["verified"] is True
        s.restart()  # the migration ran once; a second start finds nothing to move
        assert verified("tp-verified") is True
    finally:
        s.stop()
    db = sqlite3.connect(tmp_path / "supertokens.sqlite3")
    try:
        columns = {row[1] for row in db.execute("PRAGMA table_info(thirdparty_users)")}
    finally:
        db.close()
    assert "verified" not in columns
