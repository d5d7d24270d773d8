"""An email-password account whose address a provider identity (OAuth sign-in) also uses.

The core lists every recipe's users for an email (``GET /users/by-accountinfo``), oldest first, and
never links them here; the gateway's verification and reset must act on the email-password user,
never on the third-party user that signed in earlier with the same address.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from tests.support.auth_gateway import Gw, serve_gateway
from tests.support.mailpit import Mailpit, mailpit  # noqa: F401 - fixture
from tests.support.standin import Standin, start_standin

PASSWORD = "correct horse 1"
ACTION_URL = "http://127.0.0.1:5173/auth/action"


@pytest.fixture(scope="module")
def gw(tmp_path_factory: pytest.TempPathFactory, mailpit: Mailpit) -> Iterator[Gw]:  # noqa: F811
    tmp = tmp_path_factory.mktemp("shared-email")
    s = start_standin(tmp)
    try:
        yield from serve_gateway(tmp, s, smtp_host="127.0.0.1", smtp_port=str(mailpit.smtp_port),
                                 smtp_security="none", smtp_from="TelestackDB <no-reply@telestack.test>",
                                 auth_action_url=ACTION_URL)
    finally:
        s.stop()


def _provider_user_first(core: Standin, email: str) -> str:
    """A provider identity signs in with ``email`` before anyone else, as the OAuth sign-in makes it."""
    r = httpx.post(f"{core.url}/public/recipe/signinup", timeout=30,
                   headers={"api-key": core.api_key, "rid": "thirdparty", "cdi-version": "5.6"},
                   json={"thirdPartyId": "google", "thirdPartyUserId": "sub-" + uuid.uuid4().hex,
                         "email": {"id": email, "isVerified": False}})
    assert r.status_code == 200 and r.json()["createdNewUser"], r.text
    return r.json()["user"]["id"]


def _token(m: Mailpit, email: str, action: str) -> str:
    query = parse_qs(urlsplit(m.link_to(email)).query)
    assert query["action"] == [action]
    return query["token"][0]


def test_verification_acts_on_the_password_account_not_the_older_provider_user(
        gw: Gw, mailpit: Mailpit) -> None:  # noqa: F811
    email = f"shared-{uuid.uuid4().hex[:10]}@example.com"
    provider_user = _provider_user_first(gw.standin, email)
    signed_up = gw.post("/v1/auth/signup", {"email": email, "password": PASSWORD})
    assert signed_up.status_code == 201, signed_up.text
    user = signed_up.json()["user"]
    assert user["id"] != provider_user
    sent = gw.post("/v1/auth/email/verification", token=signed_up.json()["access_token"])
    assert sent.status_code == 202, sent.text
    verified = gw.post("/v1/auth/email/verify", {"token": _token(mailpit, email, "verify-email")})
    assert verified.status_code == 200, verified.text
    assert verified.json()["user"] == {"id": user["id"], "email": email, "email_verified": True}


def test_reset_reaches_the_password_account_not_the_older_provider_user(
        gw: Gw, mailpit: Mailpit) -> None:  # noqa: F811
    email = f"shared-{uuid.uuid4().hex[:10]}@example.com"
    _provider_user_first(gw.standin, email)
    assert gw.post("/v1/auth/signup", {"email": email, "password": PASSWORD}).status_code == 201
    assert gw.post("/v1/auth/password/forgot", {"email": email}).status_code == 202
    reset = gw.post("/v1/auth/password/reset",
                    {"token": _token(mailpit, email, "reset-password"), "new_password": "a brand new one"})
    assert reset.status_code == 200, reset.text
    assert gw.post("/v1/auth/signin", {"email": email, "password": "a brand new one"}).status_code == 200
    assert gw.post("/v1/auth/signin", {"email": email, "password": PASSWORD}).status_code == 401
