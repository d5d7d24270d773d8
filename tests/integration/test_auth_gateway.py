"""The Auth Engine over real HTTP: the gateway (uvicorn, ``worker.asgi``) in front of a real stand-in process.

The gateway verifies every access token locally against the stand-in's JWKS;
forged tokens must be refused with 401 before any database call (the
gateway's Database is wrapped to count calls).
"""

from __future__ import annotations

import base64
import json
import sqlite3
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from tests.support.auth_gateway import ADMIN_KEY, Gw, serve_gateway
from tests.support.paths import free_port
from tests.support.standin import Standin, start_standin


@pytest.fixture
def strict(tmp_path: Path) -> Iterator[Gw]:
    """Gateway + a stand-in with no rotation grace period: any reuse of a spent refresh token is theft."""
    s = start_standin(tmp_path, refresh_token_rotation_grace_period="0")
    try:
        yield from serve_gateway(tmp_path, s)
    finally:
        s.stop()


@pytest.fixture(scope="module")
def gw(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gw]:
    """Gateway + a stand-in with the core's defaults (30 s grace), shared by the module's tests."""
    tmp = tmp_path_factory.mktemp("gw")
    s = start_standin(tmp)
    try:
        yield from serve_gateway(tmp, s)
    finally:
        s.stop()


def _email() -> str:
    return f"user-{uuid.uuid4().hex[:10]}@example.com"


PASSWORD = "correct horse 1"


def _signup(gw: Gw, email: str | None = None) -> dict[str, Any]:
    r = gw.post("/v1/auth/signup", {"email": email or _email(), "password": PASSWORD})
    assert r.status_code == 201, r.text
    return r.json()


# --- the happy path and rotation -------------------------------------------------------------

def test_signup_signin_write_refresh_reuse_signout(strict: Gw) -> None:
    email = _email()
    up = _signup(strict, email.upper())
    assert up["user"]["email"] == email and up["token_type"] == "Bearer"
    r = strict.post("/v1/auth/signin", {"email": email, "password": "correct horse 1"})
    assert r.status_code == 200, r.text
    s1 = r.json()
    assert s1["user"]["id"] == up["user"]["id"]

    me = strict.get("/v1/auth/me", s1["access_token"]).json()
    # /me now also says whether the address is verified (a fresh account's is not)
    assert me["user"] == {"id": up["user"]["id"], "email": email, "email_verified": False}
    assert me["session_handle"]
    doc = strict.post("/v1/collections/notes/documents", {"data": {"title": "mine"}}, s1["access_token"])
    assert doc.status_code == 201, doc.text
    assert doc.json()["owner_id"] == up["user"]["id"]  # the session's user id scopes the data

    r = strict.post("/v1/auth/refresh", {"refresh_token": s1["refresh_token"]})
    assert r.status_code == 200, r.text
    s2 = r.json()
    assert s2["refresh_token"] != s1["refresh_token"] and s2["access_token"] != s1["access_token"]
    assert strict.get("/v1/auth/me", s2["access_token"]).status_code == 200

    reuse = strict.post("/v1/auth/refresh", {"refresh_token": s1["refresh_token"]})
    assert reuse.status_code == 401 and reuse.json()["error"]["code"] == "token_reuse_detected"
    dead = strict.post("/v1/auth/refresh", {"refresh_token": s2["refresh_token"]})
    assert dead.status_code == 401 and dead.json()["error"]["code"] == "session_expired"
    # documented window: an access token of a revoked session works until it expires (15 min default)
    assert strict.get("/v1/auth/me", s2["access_token"]).status_code == 200

    s3 = strict.post("/v1/auth/signin", {"email": email, "password": "correct horse 1"}).json()
    out = strict.post("/v1/auth/signout", token=s3["access_token"])
    assert out.status_code == 200 and out.json() == {"signed_out": True}
    after = strict.post("/v1/auth/refresh", {"refresh_token": s3["refresh_token"]})
    assert after.status_code == 401 and after.json()["error"]["code"] == "session_expired"


def test_default_grace_tolerates_a_racing_refresh_but_not_an_older_token(gw: Gw) -> None:
    s0 = _signup(gw)
    s1 = gw.post("/v1/auth/refresh", {"refresh_token": s0["refresh_token"]}).json()
    racing = gw.post("/v1/auth/refresh", {"refresh_token": s0["refresh_token"]})
    assert racing.status_code == 200  # within the core's 30 s grace: a second tab, not a thief
    s2 = gw.post("/v1/auth/refresh", {"refresh_token": racing.json()["refresh_token"]}).json()
    assert "refresh_token" in s1 and "refresh_token" in s2
    stale = gw.post("/v1/auth/refresh", {"refresh_token": s0["refresh_token"]})
    assert stale.status_code == 401 and stale.json()["error"]["code"] == "token_reuse_detected"
    assert gw.post("/v1/auth/refresh", {"refresh_token": s2["refresh_token"]}).status_code == 401


def test_admin_key_is_a_separate_credential(gw: Gw) -> None:
    assert gw.get("/v1/auth/me", ADMIN_KEY).json() == {"user": None, "is_admin": True}
    assert gw.get("/v1/auth/me", ADMIN_KEY + "x").status_code == 401
    assert gw.get("/v1/auth/me").status_code == 401


# --- forged tokens ---------------------------------------------------------------------------

def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _standin_key(standin: Standin) -> tuple[str, Any]:
    with sqlite3.connect(standin.db_path) as conn:
        kid, pem = conn.execute("SELECT kid, private_pem FROM signing_keys WHERE kind = 'dynamic' "
                                "ORDER BY created_at DESC LIMIT 1").fetchone()
    return kid, serialization.load_pem_private_key(pem.encode(), password=None)


def _forgeries(gw: Gw) -> dict[str, str]:
    real = _signup(gw)["access_token"]
    head, body, sig = real.split(".")
    claims = json.loads(_unb64(body))
    kid, core_key = _standin_key(gw.standin)
    other_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    public_pem = core_key.public_key().public_bytes(serialization.Encoding.PEM,
                                                    serialization.PublicFormat.SubjectPublicKeyInfo)
    now = int(time.time())

    def signed(payload: dict[str, Any], key: Any = core_key, **hdr: Any) -> str:
        return jwt.encode(payload, key, algorithm="RS256", headers={"kid": kid, "version": "5", **hdr})

    import hashlib
    import hmac

    hs_head = _b64(json.dumps({"alg": "HS256", "typ": "JWT", "kid": kid}).encode())
    hs_body = _b64(json.dumps({**claims, "sub": "victim"}).encode())
    hs_sig = _b64(hmac.new(public_pem, f"{hs_head}.{hs_body}".encode(), hashlib.sha256).digest())
    none_head = _b64(json.dumps({"alg": "none", "typ": "JWT", "kid": kid}).encode())
    return {
        "wrong key": signed(claims, other_key),
        "altered payload": f"{head}.{_b64(json.dumps({**claims, 'sub': 'victim'}).encode())}.{sig}",
        "alg none": f"{none_head}.{hs_body}.",
        "HS256 signed with the public key": f"{hs_head}.{hs_body}.{hs_sig}",
        "expired": signed({**claims, "iat": now - 7200, "exp": now - 3600}),
        "wrong issuer": signed({**claims, "iss": "https://evil.example"}),
        "other tenant": signed({**claims, "tId": "tenant-b"}),
        "not a session token": signed({"sub": "victim", "iat": now, "exp": now + 600}),
        "unknown kid": signed(claims, other_key, kid="d-1"),
        "garbage": "not.a.jwt",
    }


def test_forged_tokens_are_refused_before_the_database(gw: Gw) -> None:
    forgeries = _forgeries(gw)
    before = gw.db.calls
    for name, token in forgeries.items():
        for method, path, body in (("POST", "/v1/collections/notes/documents", {"data": {"title": "x"}}),
                                   ("GET", "/v1/auth/me", None)):
            r = gw.http.request(method, path, json=body, headers={"authorization": f"Bearer {token}"})
            assert r.status_code == 401, f"{name}: {r.status_code} {r.text}"
            assert r.json()["error"]["code"] in ("invalid_token", "token_expired"), name
    assert gw.db.calls == before, "a refused token reached the database"


# --- bad input -------------------------------------------------------------------------------

@pytest.mark.parametrize(("body", "code"), [
    ({"email": "not-an-email", "password": "correct horse 1"}, "invalid_email"),
    ({"email": "a b@example.com", "password": "correct horse 1"}, "invalid_email"),
    ({"email": "a@example", "password": "correct horse 1"}, "invalid_email"),
    ({"email": 42, "password": "correct horse 1"}, "invalid_email"),
    ({"email": "ok@example.com", "password": ""}, "invalid_password"),
    ({"email": "ok@example.com", "password": "x" * 257}, "invalid_password"),
    ({"email": "ok@example.com", "password": "short"}, "weak_password"),
    ({"email": "ok@example.com"}, "missing_field"),
    ({"password": "correct horse 1"}, "missing_field"),
    ({"email": "ok@example.com", "password": "correct horse 1", "admin": True}, "unknown_field"),
    (["ok@example.com"], "invalid_request"),
])
def test_signup_input_is_validated(gw: Gw, body: Any, code: str) -> None:
    r = gw.post("/v1/auth/signup", body)
    assert r.status_code == 400 and r.json()["error"]["code"] == code, r.text


def test_non_json_and_wrong_content_type_are_4xx(gw: Gw) -> None:
    r = gw.http.post("/v1/auth/signin", content=b"{nope", headers={"content-type": "application/json"})
    assert r.status_code == 400 and r.json()["error"]["code"] == "invalid_json"
    r = gw.http.post("/v1/auth/signin", content=b"email=a", headers={"content-type": "text/plain"})
    assert r.status_code == 415
    r = gw.http.post("/v1/auth/refresh", json={})
    assert r.status_code == 400 and r.json()["error"]["code"] == "missing_field"
    r = gw.http.post("/v1/auth/refresh", json={"refresh_token": "garbage"})
    assert r.status_code == 401


def test_wrong_password_and_unknown_user_are_indistinguishable(gw: Gw) -> None:
    email = _email()
    _signup(gw, email)
    wrong = gw.post("/v1/auth/signin", {"email": email, "password": "wrong password 1"})
    unknown = gw.post("/v1/auth/signin", {"email": _email(), "password": "wrong password 1"})
    assert wrong.status_code == unknown.status_code == 401
    # identical but for each answer's own request id
    bodies = [wrong.json(), unknown.json()]
    assert [b["error"].pop("request_id") for b in bodies] == [wrong.headers["x-request-id"],
                                                               unknown.headers["x-request-id"]]
    assert bodies[0] == bodies[1] == {"error": {"code": "invalid_credentials",
                                                "message": "email or password is incorrect"}}
    duplicate = gw.post("/v1/auth/signup", {"email": email, "password": "correct horse 1"})
    assert duplicate.status_code == 409 and duplicate.json()["error"]["code"] == "email_exists"


def test_core_unreachable_is_503_not_a_traceback(tmp_path: Path) -> None:
    gone = Standin(url=f"http://127.0.0.1:{free_port()}", api_key="k", db_path=tmp_path / "none", env={})
    for gw in serve_gateway(tmp_path, gone):
        r = gw.post("/v1/auth/signin", {"email": "a@example.com", "password": "pw-123456"})
        assert r.status_code == 503 and r.json()["error"]["code"] == "auth_unavailable"
        r = gw.get("/v1/auth/me", "eyJhbGciOiJSUzI1NiIsImtpZCI6ImQtMSJ9.e30.c2ln")
        assert r.status_code == 503
