"""Smoke checks of account management: verification and reset mail (read from the stack's Mailpit when it
has one: the local stack's, or a cloud stack's mail relay, which keeps the newest message it relayed to
the provider and asks for its key), and account deletion. A stack without mail must say so (503
``mail_not_configured``); a check that cannot prove its feature fails rather than passes."""

from __future__ import annotations

import asyncio
import re
import secrets
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlsplit

from tests.smoke.client import User, describe
from tests.smoke.runner import expect
from worker.mail_relay import RELAY_USER

if TYPE_CHECKING:
    from tests.smoke.checks import Smoke

MAIL_TIMEOUT_S = 15.0
_LINK = re.compile(r"https?://\S+")


async def _mail_token(s: Smoke, to: str, action: str) -> str:
    """The token of the newest link mailed to ``to`` for ``action``, read through Mailpit's HTTP API."""
    base = s.target.mail_ui_url.rstrip("/")
    # a cloud stack's relay: its API needs the relay key (the send API's credential, RELAY_USER:<key>)
    auth = (RELAY_USER, s.target.mail_relay_key) if s.target.mail_relay_key else None
    deadline = asyncio.get_running_loop().time() + MAIL_TIMEOUT_S
    while True:
        found = await s.api.http.get(f"{base}/api/v1/search", params={"query": f'to:"{to}"'}, auth=auth)
        messages: list[dict[str, Any]] = (
            (found.json().get("messages") or []) if found.status_code == 200 else []
        )
        for m in messages:
            message = await s.api.http.get(f"{base}/api/v1/message/{m['ID']}", auth=auth)
            text = message.json().get("Text", "")
            for link in _LINK.findall(text):
                query = parse_qs(urlsplit(link).query)
                if query.get("action") == [action] and query.get("token"):
                    return query["token"][0]
        expect(
            asyncio.get_running_loop().time() < deadline,
            f"no {action} mail to {to} in Mailpit after {MAIL_TIMEOUT_S:.0f}s",
        )
        await asyncio.sleep(0.2)


async def _no_mail(s: Smoke, user: User, path: str, body: dict[str, Any] | None) -> str:
    r = await s.api.call("POST", path, token=user.access_token, json=body)
    expect(
        r.status_code == 503 and r.json()["error"]["code"] == "mail_not_configured",
        f"{path} on a stack without mail → {describe(r)} (expected 503 mail_not_configured)",
    )
    return "this stack sends no mail: 503 mail_not_configured, as documented"


async def check_verification(s: Smoke) -> str:
    a = s.users["A"]
    if not s.target.mail_ui_url:
        return await _no_mail(s, a, "/v1/auth/email/verification", None)
    r = await s.api.call("POST", "/v1/auth/email/verification", token=a.access_token)
    expect(r.status_code == 202, f"verification request → {describe(r)}")
    token = await _mail_token(s, a.email, "verify-email")
    ok = await s.api.call("POST", "/v1/auth/email/verify", json={"token": token})
    expect(ok.status_code == 200 and ok.json()["user"]["email_verified"] is True, f"verify → {describe(ok)}")
    again = await s.api.call("POST", "/v1/auth/email/verify", json={"token": token})
    expect(again.status_code == 400, f"the spent link used again → {describe(again)} (expected 400)")
    r = await s.api.call("POST", "/v1/auth/refresh", json={"refresh_token": a.refresh_token})
    expect(r.status_code == 200, f"refresh after verifying → {describe(r)}")
    a.access_token, a.refresh_token = r.json()["access_token"], r.json()["refresh_token"]
    me = await s.api.call("GET", "/v1/auth/me", token=a.access_token)
    expect(me.json()["user"].get("email_verified") is True, f"/me after refresh → {me.json()}")
    return "link mailed, verified once, spent link refused, the refreshed session says email_verified"


async def check_reset(s: Smoke) -> str:
    b = s.users["B"]
    if not s.target.mail_ui_url:
        r = await s.api.call("POST", "/v1/auth/password/forgot", json={"email": b.email})
        expect(
            r.status_code == 503, f"password/forgot on a stack without mail → {describe(r)} (expected 503)"
        )
        return "this stack sends no mail: 503 mail_not_configured, as documented"
    unknown = await s.api.call(
        "POST", "/v1/auth/password/forgot", json={"email": f"nobody+{s.run_id}@smoke.telestack.test"}
    )
    r = await s.api.call("POST", "/v1/auth/password/forgot", json={"email": b.email})
    expect(
        r.status_code == 202 and (unknown.status_code, unknown.content) == (r.status_code, r.content),
        f"forgot: known → {describe(r)}, unknown → {describe(unknown)} (expected the same 202)",
    )
    token = await _mail_token(s, b.email, "reset-password")
    new_password = secrets.token_urlsafe(18)
    ok = await s.api.call(
        "POST", "/v1/auth/password/reset", json={"token": token, "new_password": new_password}
    )
    expect(ok.status_code == 200, f"reset → {describe(ok)}")
    reused = await s.api.call(
        "POST", "/v1/auth/password/reset", json={"token": token, "new_password": secrets.token_urlsafe(18)}
    )
    expect(reused.status_code == 400, f"the spent reset link used again → {describe(reused)} (expected 400)")
    old = await s.api.call("POST", "/v1/auth/signin", json={"email": b.email, "password": b.password})
    expect(old.status_code == 401, f"sign-in with the old password → {describe(old)} (expected 401)")
    b.password = new_password
    r = await s.api.call("POST", "/v1/auth/signin", json={"email": b.email, "password": b.password})
    expect(r.status_code == 200, f"sign-in with the new password → {describe(r)}")
    b.access_token, b.refresh_token = r.json()["access_token"], r.json()["refresh_token"]
    return "same answer for an unknown address; link mailed; new password set once; old one refused"


async def check_deletion(s: Smoke) -> str:
    user = User("C", f"smoke+{s.run_id}-c@smoke.telestack.test", secrets.token_urlsafe(18))
    if s.journal:
        s.journal.add("emails", user.email)
    r = await s.api.call("POST", "/v1/auth/signup", json={"email": user.email, "password": user.password})
    expect(r.status_code == 201, f"sign-up of user C → {describe(r)}")
    user.id, user.access_token = r.json()["user"]["id"], r.json()["access_token"]
    refresh = r.json()["refresh_token"]
    if s.journal:
        s.journal.add("users", user.id)
    doc_id = s.new_id()
    s.docs.append((s.collection, doc_id, "C"))
    if s.journal:
        s.journal.add("docs", [s.collection, doc_id])
    r = await s.api.call(
        "POST",
        s.api.doc_path(s.collection),
        token=user.access_token,
        json={"id": doc_id, "data": s.body("to be deleted")},
    )
    expect(r.status_code == 201, f"user C create → {describe(r)}")
    wrong = await s.api.call(
        "POST", "/v1/auth/account/delete", token=user.access_token, json={"password": "not-the-password-1"}
    )
    expect(wrong.status_code == 401, f"deletion with a wrong password → {describe(wrong)} (expected 401)")
    r = await s.api.call(
        "POST", "/v1/auth/account/delete", token=user.access_token, json={"password": user.password}
    )
    expect(
        r.status_code == 200 and r.json().get("deleted") is True and r.json()["documents_deleted"] >= 1,
        f"account deletion → {describe(r)}",
    )
    signin = await s.api.call(
        "POST", "/v1/auth/signin", json={"email": user.email, "password": user.password}
    )
    expect(signin.status_code == 401, f"sign-in of the deleted user → {describe(signin)} (expected 401)")
    again = await s.api.call("POST", "/v1/auth/refresh", json={"refresh_token": refresh})
    expect(
        again.status_code == 401, f"refresh of the deleted user's session → {describe(again)} (expected 401)"
    )
    if s.target.admin_key:
        doc = await s.api.call("GET", s.api.doc_path(s.collection, doc_id), token=s.target.admin_key)
        expect(
            doc.status_code == 404, f"the deleted user's document, read with the admin key → {describe(doc)}"
        )
        return "C deleted: sign-in and refresh refused, their document gone (admin read 404)"
    return "C deleted: sign-in and refresh refused"
