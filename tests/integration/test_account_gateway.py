"""Account management through a real gateway, a CDI stand-in and Mailpit (real SMTP): verification,
reset, password and email change, sign-out everywhere, deletion, and the callers each must refuse."""

from __future__ import annotations

import base64
import json
import sqlite3
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from tests.support.auth_gateway import ADMIN_KEY, Gw, serve_gateway
from tests.support.mailpit import Mailpit, mailpit  # noqa: F401 - fixture
from tests.support.own_loop import run_on_own_loop
from tests.support.standin import start_standin

PASSWORD = "correct horse 1"
ACTION_URL = "http://127.0.0.1:5173/auth/action"


def _mail_settings(m: Mailpit) -> dict[str, str]:
    return {
        "smtp_host": "127.0.0.1",
        "smtp_port": str(m.smtp_port),
        "smtp_security": "none",
        "smtp_from": "TelestackDB <no-reply@telestack.test>",
        "auth_action_url": ACTION_URL,
    }


@pytest.fixture(scope="module")
def gw(tmp_path_factory: pytest.TempPathFactory, mailpit: Mailpit) -> Iterator[Gw]:  # noqa: F811
    tmp = tmp_path_factory.mktemp("account")
    s = start_standin(tmp, password_reset_token_lifetime="2000")  # 2 s: the expiry test waits it out
    try:
        yield from serve_gateway(tmp, s, **_mail_settings(mailpit))
    finally:
        s.stop()


def _email() -> str:
    return f"user-{uuid.uuid4().hex[:10]}@example.com"


def _signup(gw: Gw, email: str | None = None) -> dict[str, Any]:
    r = gw.post("/v1/auth/signup", {"email": email or _email(), "password": PASSWORD})
    assert r.status_code == 201, r.text
    return r.json()


def _signin(gw: Gw, email: str, password: str = PASSWORD) -> Any:
    return gw.post("/v1/auth/signin", {"email": email, "password": password})


def _claims(token: str) -> dict[str, Any]:
    part = token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))


def _token_of(link: str, action: str) -> str:
    assert link.startswith(ACTION_URL + "?"), link
    query = parse_qs(urlsplit(link).query)
    assert query["action"] == [action]
    return query["token"][0]


# --- email verification ------------------------------------------------------------------------


def test_verification_link_verifies_once_and_reaches_the_session(gw: Gw, mailpit: Mailpit) -> None:  # noqa: F811
    user = _signup(gw)
    email, access = user["user"]["email"], user["access_token"]
    assert _claims(access)["email_verified"] is False
    assert gw.get("/v1/auth/me", access).json()["user"]["email_verified"] is False
    assert gw.post("/v1/auth/email/verification", token=access).status_code == 202
    token = _token_of(mailpit.link_to(email), "verify-email")
    ok = gw.post("/v1/auth/email/verify", {"token": token})
    assert ok.status_code == 200, ok.text
    assert ok.json()["user"] == {"id": user["user"]["id"], "email": email, "email_verified": True}
    again = gw.post("/v1/auth/email/verify", {"token": token})
    assert (again.status_code, again.json()["error"]["code"]) == (400, "invalid_token")
    # the session's next access token says so; a fresh sign-in too
    refreshed = gw.post("/v1/auth/refresh", {"refresh_token": user["refresh_token"]}).json()
    assert gw.get("/v1/auth/me", refreshed["access_token"]).json()["user"]["email_verified"] is True
    assert _claims(_signin(gw, email).json()["access_token"])["email_verified"] is True
    done = gw.post("/v1/auth/email/verification", token=refreshed["access_token"])
    assert (done.status_code, done.json()["error"]["code"]) == (409, "already_verified")


def test_verification_refuses_forged_tokens_and_callers_without_a_session(gw: Gw) -> None:
    forged = gw.post("/v1/auth/email/verify", {"token": "forged-" + uuid.uuid4().hex})
    assert (forged.status_code, forged.json()["error"]["code"]) == (400, "invalid_token")
    assert gw.post("/v1/auth/email/verify", {}).status_code == 400
    assert gw.post("/v1/auth/email/verification").status_code == 401
    assert gw.post("/v1/auth/email/verification", token="not.a.jwt").status_code == 401
    admin = gw.post("/v1/auth/email/verification", token=ADMIN_KEY)
    assert admin.status_code == 403


# --- password reset ----------------------------------------------------------------------------


def test_reset_link_sets_a_new_password_once_and_ends_every_session(gw: Gw, mailpit: Mailpit) -> None:  # noqa: F811
    user = _signup(gw)
    email = user["user"]["email"]
    r = gw.post("/v1/auth/password/forgot", {"email": email.upper()})
    assert (r.status_code, r.json()) == (202, {"sent": True})
    token = _token_of(mailpit.link_to(email), "reset-password")
    weak = gw.post("/v1/auth/password/reset", {"token": token, "new_password": "short"})
    assert (weak.status_code, weak.json()["error"]["code"]) == (400, "weak_password")  # and spent no token
    ok = gw.post("/v1/auth/password/reset", {"token": token, "new_password": "a brand new one"})
    assert ok.status_code == 200 and ok.json()["sessions_revoked"] == 1
    reused = gw.post("/v1/auth/password/reset", {"token": token, "new_password": "yet another one"})
    assert (reused.status_code, reused.json()["error"]["code"]) == (400, "invalid_token")
    assert _signin(gw, email).status_code == 401
    assert _signin(gw, email, "a brand new one").status_code == 200
    old_session = gw.post("/v1/auth/refresh", {"refresh_token": user["refresh_token"]})
    assert old_session.status_code == 401


def test_unknown_email_gets_the_same_answer_and_no_mail(gw: Gw, mailpit: Mailpit) -> None:  # noqa: F811
    email = _email()
    known = _signup(gw)["user"]["email"]
    a = gw.post("/v1/auth/password/forgot", {"email": email})
    b = gw.post("/v1/auth/password/forgot", {"email": known})
    assert (a.status_code, a.content) == (b.status_code, b.content)
    mailpit.wait_for(known)
    assert mailpit.messages_to(email) == []


def test_expired_reset_token_is_refused(gw: Gw, mailpit: Mailpit) -> None:  # noqa: F811
    email = _signup(gw)["user"]["email"]
    gw.post("/v1/auth/password/forgot", {"email": email})
    token = _token_of(mailpit.link_to(email), "reset-password")
    time.sleep(2.1)  # the stand-in here gives reset tokens 2 s
    r = gw.post("/v1/auth/password/reset", {"token": token, "new_password": "a brand new one"})
    assert (r.status_code, r.json()["error"]["code"]) == (400, "invalid_token")
    assert _signin(gw, email).status_code == 200


# --- password change, email change, sign-out everywhere --------------------------------------------


def test_change_password_needs_the_current_one_and_ends_the_other_sessions(gw: Gw) -> None:
    user = _signup(gw)
    email, access = user["user"]["email"], user["access_token"]
    other = _signin(gw, email).json()
    body = {"current_password": "wrong password", "new_password": "the next password"}
    wrong = gw.post("/v1/auth/password/change", body, token=access)
    assert (wrong.status_code, wrong.json()["error"]["code"]) == (401, "invalid_credentials")
    assert gw.post("/v1/auth/password/change", {**body, "current_password": PASSWORD}).status_code == 401
    ok = gw.post("/v1/auth/password/change", {**body, "current_password": PASSWORD}, token=access)
    assert ok.status_code == 200 and ok.json()["sessions_revoked"] == 1
    assert gw.post("/v1/auth/refresh", {"refresh_token": other["refresh_token"]}).status_code == 401
    assert gw.post("/v1/auth/refresh", {"refresh_token": user["refresh_token"]}).status_code == 200
    assert _signin(gw, email, "the next password").status_code == 200


def test_change_email_takes_effect_only_once_the_new_address_is_verified(gw: Gw, mailpit: Mailpit) -> None:  # noqa: F811
    user = _signup(gw)
    email, access = user["user"]["email"], user["access_token"]
    new = _email()
    assert gw.post("/v1/auth/email/verification", token=access).status_code == 202
    stale = _token_of(mailpit.link_to(email), "verify-email")  # a link for the address being replaced
    wrong = gw.post("/v1/auth/email/change", {"new_email": new, "password": "wrong password"}, token=access)
    assert wrong.status_code == 401
    taken_email = _signup(gw)["user"]["email"]
    taken = gw.post("/v1/auth/email/change", {"new_email": taken_email, "password": PASSWORD}, token=access)
    assert (taken.status_code, taken.json()["error"]["code"]) == (409, "email_exists")
    r = gw.post("/v1/auth/email/change", {"new_email": new, "password": PASSWORD}, token=access)
    assert r.status_code == 202, r.text
    assert _signin(gw, email).status_code == 200 and _signin(gw, new).status_code == 401  # not yet
    token = _token_of(mailpit.link_to(new), "verify-email")
    assert gw.post("/v1/auth/email/verify", {"token": token}).status_code == 200
    assert _signin(gw, email).status_code == 401
    signed_in = _signin(gw, new).json()
    assert signed_in["user"]["id"] == user["user"]["id"]
    claims = _claims(signed_in["access_token"])
    assert (claims["email"], claims["email_verified"]) == (new, True)
    # the old address's pending link died with the change: it cannot switch the account back
    back = gw.post("/v1/auth/email/verify", {"token": stale})
    assert (back.status_code, back.json()["error"]["code"]) == (400, "invalid_token")
    assert _signin(gw, new).status_code == 200


def test_signout_everywhere_ends_every_session(gw: Gw) -> None:
    user = _signup(gw)
    other = _signin(gw, user["user"]["email"]).json()
    assert gw.post("/v1/auth/signout/all").status_code == 401
    r = gw.post("/v1/auth/signout/all", token=user["access_token"])
    assert r.status_code == 200 and r.json()["sessions_revoked"] == 2
    for session in (user, other):
        assert gw.post("/v1/auth/refresh", {"refresh_token": session["refresh_token"]}).status_code == 401


# --- deletion ----------------------------------------------------------------------------------------


def test_delete_account_removes_user_documents_and_emits_deleted_events(gw: Gw) -> None:
    user = _signup(gw)
    bystander = gw.post("/v1/auth/signup", {"email": _email(), "password": "bystander pass 2"}).json()
    access = user["access_token"]
    ids = []
    for i in range(3):
        r = gw.http.post(
            "/v1/collections/notes/documents",
            json={"data": {"title": f"n{i}", "body": "x"}},
            headers={"authorization": f"Bearer {access}"},
        )
        assert r.status_code == 201, r.text
        ids.append(r.json()["id"])
    kept = gw.http.post(
        "/v1/collections/notes/documents",
        json={"data": {"title": "theirs"}},
        headers={"authorization": f"Bearer {bystander['access_token']}"},
    ).json()["id"]
    other = gw.post("/v1/auth/account/delete", {"password": PASSWORD}, token=bystander["access_token"])
    assert other.status_code == 401  # another user's session cannot delete with this user's password
    wrong = gw.post("/v1/auth/account/delete", {"password": "wrong password"}, token=access)
    assert wrong.status_code == 401
    assert gw.post("/v1/auth/account/delete", {"password": PASSWORD}).status_code == 401
    r = gw.post("/v1/auth/account/delete", {"password": PASSWORD}, token=access)
    assert r.status_code == 200, r.text
    assert r.json() == {"deleted": True, "documents_deleted": 3, "objects_deleted": 0}
    assert _signin(gw, user["user"]["email"]).status_code == 401
    assert gw.post("/v1/auth/refresh", {"refresh_token": user["refresh_token"]}).status_code == 401
    rows = _rows(gw, "SELECT id FROM documents WHERE owner_id = ?", (user["user"]["id"],))
    assert rows == []
    assert [r["id"] for r in _rows(gw, "SELECT id FROM documents WHERE id = ?", (kept,))] == [kept]
    events = _rows(
        gw, "SELECT doc_id FROM outbox WHERE op = 'deleted' AND owner_id = ?", (user["user"]["id"],)
    )
    assert sorted(e["doc_id"] for e in events) == sorted(ids)
    finished = _rows(gw, "SELECT finished_at FROM account_deletions WHERE user_id = ?", (user["user"]["id"],))
    assert finished and finished[0]["finished_at"] is not None


def _rows(gw: Gw, sql: str, params: tuple[Any, ...]) -> list[dict[str, Any]]:
    return run_on_own_loop(_query(gw, sql, params))


async def _query(gw: Gw, sql: str, params: tuple[Any, ...]) -> list[dict[str, Any]]:
    return (await gw.db.execute(sql, params)).rows


def test_mail_endpoints_answer_503_without_smtp(tmp_path: Path) -> None:
    s = start_standin(tmp_path)
    try:
        for gw in serve_gateway(tmp_path, s):
            user = _signup(gw)
            r = gw.post("/v1/auth/email/verification", token=user["access_token"])
            assert (r.status_code, r.json()["error"]["code"]) == (503, "mail_not_configured")
            r = gw.post("/v1/auth/password/forgot", {"email": user["user"]["email"]})
            assert r.status_code == 503
    finally:
        s.stop()


# --- refused callers, every Bearer endpoint ----------------------------------------------------------

BEARER_ENDPOINTS = {
    "/v1/auth/email/verification": None,
    "/v1/auth/email/change": {"new_email": "new-address@example.com", "password": PASSWORD},
    "/v1/auth/password/change": {"current_password": PASSWORD, "new_password": "the next password"},
    "/v1/auth/signout/all": None,
    "/v1/auth/account/delete": {"password": PASSWORD},
}


def _bad_tokens(gw: Gw, victim: dict[str, Any]) -> dict[str, str]:
    """Tokens a caller may hold that must not act on ``victim``'s account."""
    claims = _claims(victim["access_token"])
    with sqlite3.connect(gw.standin.db_path) as conn:
        kid, pem = conn.execute(
            "SELECT kid, private_pem FROM signing_keys WHERE kind = 'dynamic' "
            "ORDER BY created_at DESC LIMIT 1"
        ).fetchone()
    core_key = serialization.load_pem_private_key(pem.encode(), password=None)
    other_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    now = int(time.time())

    def signed(payload: dict[str, Any], key: Any = core_key) -> str:
        return jwt.encode(payload, key, algorithm="RS256", headers={"kid": kid, "version": "5"})

    head, _, sig = victim["access_token"].split(".")
    altered = base64.urlsafe_b64encode(json.dumps({**claims, "email_verified": True}).encode()).rstrip(b"=")
    return {
        "expired": signed({**claims, "iat": now - 7200, "exp": now - 3600}),
        "signed with another key": signed(claims, other_key),
        "altered payload": f"{head}.{altered.decode()}.{sig}",
        "garbage": "not.a.jwt",
    }


@pytest.mark.parametrize("path", sorted(BEARER_ENDPOINTS))
def test_bearer_endpoints_refuse_missing_forged_and_expired_tokens_and_the_admin_key(
    gw: Gw, path: str
) -> None:
    victim = _signup(gw)
    body = BEARER_ENDPOINTS[path]
    assert gw.post(path, body).status_code == 401
    for what, token in _bad_tokens(gw, victim).items():
        r = gw.post(path, body, token=token)
        assert r.status_code == 401, f"{what}: {r.status_code} {r.text}"
    admin = gw.post(path, body, token=ADMIN_KEY)
    assert (admin.status_code, admin.json()["error"]["code"]) == (403, "forbidden")
    # nothing happened to the account: it still signs in with its password, its session still refreshes
    assert _signin(gw, victim["user"]["email"]).status_code == 200
    assert gw.post("/v1/auth/refresh", {"refresh_token": victim["refresh_token"]}).status_code == 200


def test_another_users_session_cannot_change_this_users_password(gw: Gw) -> None:
    victim = _signup(gw)
    intruder = gw.post("/v1/auth/signup", {"email": _email(), "password": "intruder pass 3"}).json()
    body = {"current_password": PASSWORD, "new_password": "taken over 123"}
    r = gw.post("/v1/auth/password/change", body, token=intruder["access_token"])
    assert r.status_code == 401  # checked against the intruder's own account, where it is wrong
    assert _signin(gw, victim["user"]["email"]).status_code == 200


def test_forged_reset_token_is_refused(gw: Gw) -> None:
    r = gw.post(
        "/v1/auth/password/reset", {"token": "forged-" + uuid.uuid4().hex, "new_password": "long enough 1"}
    )
    assert (r.status_code, r.json()["error"]["code"]) == (400, "invalid_token")
