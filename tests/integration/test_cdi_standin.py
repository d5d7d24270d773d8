"""Stand-in specifics a real core is not asked about: restarts, strict rotation, tenants."""

from __future__ import annotations

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
