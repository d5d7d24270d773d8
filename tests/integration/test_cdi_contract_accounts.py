"""CDI contract of the account recipes: email verification, password reset, user update, JWT payload.

Same checker as test_cdi_contract.py (every request and response validated against the vendored
spec, closed objects); same target (the stand-in, or a real core with ``TELESTACK_CDI_URL``).
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.integration.test_cdi_contract import Cdi, _b64json, _refresh, _session
from tests.support.standin import Standin, start_standin


@pytest.fixture(scope="module")
def api(cdi: Standin) -> Iterator[Cdi]:
    client = Cdi(cdi)
    yield client
    client.http.close()


def _signup(api: Cdi) -> tuple[str, str]:
    email = f"u{uuid.uuid4().hex[:12]}@example.com"
    user = api.ok("POST", "/recipe/signup", {"email": email, "password": "pw-123456"}, rid="emailpassword")[
        "user"
    ]
    return user["id"], email


def _verify_token(api: Cdi, user_id: str, email: str) -> dict[str, Any]:
    return api.ok(
        "POST",
        "/recipe/user/email/verify/token",
        {"userId": user_id, "email": email},
        rid="emailverification",
    )


def _is_verified(api: Cdi, user_id: str, email: str) -> bool:
    return api.ok(
        "GET", "/recipe/user/email/verify", query={"userId": user_id, "email": email}, rid="emailverification"
    )["isVerified"]


# --- email verification ----------------------------------------------------------------------


def test_verification_token_is_single_use_and_marks_the_pair_verified(api: Cdi) -> None:
    user_id, email = _signup(api)
    assert _is_verified(api, user_id, email) is False
    first, second = _verify_token(api, user_id, email), _verify_token(api, user_id, email)
    assert first["status"] == second["status"] == "OK" and first["token"] != second["token"]
    done = api.ok("POST", "/public/recipe/user/email/verify", {"method": "token", "token": first["token"]})
    assert done == {"status": "OK", "userId": user_id, "email": email}
    assert _is_verified(api, user_id, email) is True
    # the sibling token died with the first use, and the used one is spent
    for token in (first["token"], second["token"]):
        again = api.ok("POST", "/recipe/user/email/verify", {"method": "token", "token": token})
        assert again == {"status": "EMAIL_VERIFICATION_INVALID_TOKEN_ERROR"}
    assert _verify_token(api, user_id, email) == {"status": "EMAIL_ALREADY_VERIFIED_ERROR"}
    # verification belongs to (user, email): another address of the same user is not verified
    assert _is_verified(api, user_id, "other-" + email) is False


def test_verification_token_remove_and_unverify(api: Cdi) -> None:
    user_id, email = _signup(api)
    token = _verify_token(api, user_id, email)["token"]
    body = {"userId": user_id, "email": email}
    assert api.ok("POST", "/recipe/user/email/verify/token/remove", body) == {"status": "OK"}
    assert (
        api.ok("POST", "/recipe/user/email/verify", {"method": "token", "token": token})["status"]
        == "EMAIL_VERIFICATION_INVALID_TOKEN_ERROR"
    )
    fresh = _verify_token(api, user_id, email)["token"]
    api.ok("POST", "/recipe/user/email/verify", {"method": "token", "token": fresh})
    assert api.ok("POST", "/recipe/user/email/verify/remove", body) == {"status": "OK"}
    assert _is_verified(api, user_id, email) is False


def test_forged_verification_token_is_refused(api: Cdi) -> None:
    out = api.ok(
        "POST", "/recipe/user/email/verify", {"method": "token", "token": "forged-" + uuid.uuid4().hex}
    )
    assert out == {"status": "EMAIL_VERIFICATION_INVALID_TOKEN_ERROR"}


@pytest.mark.parametrize("body", [{}, {"userId": "u"}, {"email": "a@b.co"}, {"userId": 1, "email": "a@b.co"}])
def test_verification_token_needs_user_and_email(api: Cdi, body: dict[str, Any]) -> None:
    assert api.call("POST", "/recipe/user/email/verify/token", body, check_request=False).status_code == 400


# --- password reset and user update ----------------------------------------------------------


def test_reset_token_is_single_use_and_names_the_user(api: Cdi) -> None:
    user_id, email = _signup(api)
    made = api.ok(
        "POST", "/recipe/user/password/reset/token", {"userId": user_id, "email": email}, rid="emailpassword"
    )
    assert made["status"] == "OK"
    used = api.ok("POST", "/recipe/user/password/reset/token/consume", {"token": made["token"]})
    assert used == {"status": "OK", "userId": user_id, "email": email}
    again = api.ok("POST", "/recipe/user/password/reset/token/consume", {"token": made["token"]})
    assert again == {"status": "RESET_PASSWORD_INVALID_TOKEN_ERROR"}


def test_reset_token_for_an_unknown_user_is_refused(api: Cdi) -> None:
    out = api.ok(
        "POST", "/recipe/user/password/reset/token", {"userId": str(uuid.uuid4()), "email": "x@y.co"}
    )
    assert out == {"status": "UNKNOWN_USER_ID_ERROR"}


def test_update_user_password_and_email(api: Cdi) -> None:
    user_id, email = _signup(api)
    out = api.ok(
        "PUT", "/recipe/user", {"recipeUserId": user_id, "password": "new-pass-123"}, rid="emailpassword"
    )
    assert out == {"status": "OK"}
    assert (
        api.ok("POST", "/recipe/signin", {"email": email, "password": "pw-123456"})["status"]
        == "WRONG_CREDENTIALS_ERROR"
    )
    assert api.ok("POST", "/recipe/signin", {"email": email, "password": "new-pass-123"})["status"] == "OK"
    _, taken = _signup(api)
    assert api.ok("PUT", "/recipe/user", {"recipeUserId": user_id, "email": taken}) == {
        "status": "EMAIL_ALREADY_EXISTS_ERROR"
    }
    moved = "moved-" + email
    assert api.ok("PUT", "/recipe/user", {"recipeUserId": user_id, "email": moved}) == {"status": "OK"}
    assert (
        api.ok("POST", "/recipe/signin", {"email": moved, "password": "new-pass-123"})["user"]["id"]
        == user_id
    )
    assert api.ok("PUT", "/recipe/user", {"recipeUserId": str(uuid.uuid4()), "password": "x-123456"}) == {
        "status": "UNKNOWN_USER_ID_ERROR"
    }


def test_users_by_account_info_finds_by_email(api: Cdi) -> None:
    user_id, email = _signup(api)
    found = api.ok(
        "GET", "/users/by-accountinfo", query={"email": email.upper(), "doUnionOfAccountInfo": "false"}
    )
    assert [u["id"] for u in found["users"]] == [user_id]
    none = api.ok(
        "GET", "/users/by-accountinfo", query={"email": "no-" + email, "doUnionOfAccountInfo": "false"}
    )
    assert none == {"status": "OK", "users": []}


# --- the session payload ---------------------------------------------------------------------


def test_jwt_data_put_reaches_the_next_refresh_only(api: Cdi) -> None:
    created = _session(api, "user-payload")
    handle = created["session"]["handle"]
    out = api.ok(
        "PUT",
        "/recipe/jwt/data",
        {"sessionHandle": handle, "userDataInJWT": {"email_verified": True}},
        rid="session",
    )
    assert out == {"status": "OK"}
    assert api.ok("GET", "/recipe/jwt/data", query={"sessionHandle": handle})["userDataInJWT"] == {
        "email_verified": True
    }
    refreshed = _refresh(api, created["refreshToken"]["token"])
    assert _b64json(refreshed["accessToken"]["token"].split(".")[1])["email_verified"] is True
    gone = api.ok("PUT", "/recipe/jwt/data", {"sessionHandle": str(uuid.uuid4()), "userDataInJWT": {}})
    assert gone["status"] == "UNAUTHORISED"
    protected = {"sessionHandle": handle, "userDataInJWT": {"sub": "someone-else"}}
    assert api.call("PUT", "/recipe/jwt/data", protected).status_code == 400


# --- expiry and deletion (stand-in only: lifetimes set through its configuration) ----------------


def test_expired_tokens_are_refused_and_user_remove_forgets_them(tmp_path: Path) -> None:
    s = start_standin(tmp_path, email_verification_token_lifetime="1", password_reset_token_lifetime="1")
    api = Cdi(s)
    try:
        user_id, email = _signup(api)
        verify = _verify_token(api, user_id, email)["token"]
        reset = api.ok("POST", "/recipe/user/password/reset/token", {"userId": user_id, "email": email})[
            "token"
        ]
        time.sleep(0.01)  # both lived 1 ms
        assert (
            api.ok("POST", "/recipe/user/email/verify", {"method": "token", "token": verify})["status"]
            == "EMAIL_VERIFICATION_INVALID_TOKEN_ERROR"
        )
        assert (
            api.ok("POST", "/recipe/user/password/reset/token/consume", {"token": reset})["status"]
            == "RESET_PASSWORD_INVALID_TOKEN_ERROR"
        )
    finally:
        api.http.close()
        s.stop()
