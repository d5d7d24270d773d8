"""CDI contract of the ThirdParty recipe (``POST /recipe/signinup``), the call OAuth sign-in makes.

Same rules as tests/integration/test_cdi_contract.py: every request and response is validated against
the vendored CDI spec with closed object schemas, against the stand-in by default or a real core with
``TELESTACK_CDI_URL``.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from tests.integration.test_cdi_contract import Cdi
from tests.support.standin import Standin


@pytest.fixture(scope="module")
def api(cdi: Standin) -> Iterator[Cdi]:
    client = Cdi(cdi)
    yield client
    client.http.close()


def _signinup(api: Cdi, provider: str, subject: str, email: str, verified: bool = True,
              path: str = "/recipe/signinup") -> dict[str, Any]:
    body = {"thirdPartyId": provider, "thirdPartyUserId": subject,
            "email": {"id": email, "isVerified": verified}}
    return api.ok("POST", path, body, rid="thirdparty", op_path="/recipe/signinup")


def test_first_call_creates_the_user_and_later_calls_return_it(api: Cdi) -> None:
    subject = uuid.uuid4().hex
    first = _signinup(api, "google", subject, " Someone@Example.COM ")
    assert first["status"] == "OK" and first["createdNewUser"] is True
    user = first["user"]
    assert user["emails"] == ["someone@example.com"] and first["recipeUserId"] == user["id"]
    assert user["thirdParty"] == [{"id": "google", "userId": subject}]
    method = user["loginMethods"][0]
    assert (method["recipeId"], method["verified"], method["thirdParty"]) == \
        ("thirdparty", True, {"id": "google", "userId": subject})
    again = _signinup(api, "google", subject, "someone@example.com", path="/public/recipe/signinup")
    assert again["createdNewUser"] is False and again["user"]["id"] == user["id"]


def test_the_providers_new_email_replaces_the_stored_one(api: Cdi) -> None:
    subject = uuid.uuid4().hex
    user_id = _signinup(api, "github", subject, "old@example.com")["user"]["id"]
    moved = _signinup(api, "github", subject, "new@example.com", verified=False)
    assert moved["user"]["id"] == user_id and moved["user"]["emails"] == ["new@example.com"]
    assert moved["user"]["loginMethods"][0]["verified"] is False


def test_same_subject_at_another_provider_or_same_email_is_another_user(api: Cdi) -> None:
    subject, email = uuid.uuid4().hex, f"u{uuid.uuid4().hex[:10]}@example.com"
    a = _signinup(api, "google", subject, email)["user"]["id"]
    b = _signinup(api, "github", subject, email)["user"]["id"]
    signed_up = api.ok("POST", "/recipe/signup", {"email": email, "password": "pw-123456"},
                       rid="emailpassword")
    assert len({a, b, signed_up["user"]["id"]}) == 3  # no implicit account linking


@pytest.mark.parametrize("body", [
    {"thirdPartyUserId": "x", "email": {"id": "a@b.co", "isVerified": True}},
    {"thirdPartyId": "google", "email": {"id": "a@b.co", "isVerified": True}},
    {"thirdPartyId": "google", "thirdPartyUserId": "x"},
    {"thirdPartyId": "google", "thirdPartyUserId": "x", "email": "a@b.co"},
    {"thirdPartyId": "google", "thirdPartyUserId": "x", "email": {"isVerified": True}},
    {"thirdPartyId": "google", "thirdPartyUserId": 1, "email": {"id": "a@b.co", "isVerified": True}},
])
def test_missing_or_mistyped_fields_are_400(api: Cdi, body: dict[str, Any]) -> None:
    r = api.call("POST", "/recipe/signinup", body, check_request=False)
    assert r.status_code == 400 and "invalid in JSON input" in r.text


def test_signinup_needs_the_api_key(api: Cdi) -> None:
    if not api.target.api_key:
        pytest.skip("the target core has no api key configured")
    body = {"thirdPartyId": "google", "thirdPartyUserId": "x", "email": {"id": "a@b.co", "isVerified": True}}
    r = api.call("POST", "/recipe/signinup", body, api_key=None)
    assert (r.status_code, r.text.strip()) == (401, "Invalid API key")
