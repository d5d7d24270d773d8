"""CDI contract: every request we send and every response we get is validated against the CDI spec.

Runs against the stand-in by default; ``TELESTACK_CDI_URL=http://host:3567
TELESTACK_CDI_API_KEY=...`` runs the same cases against a real SuperTokens Core.

Validation (tests/support/cdi_spec.py) is schema-level and *stricter* than the
spec: object schemas are closed, so an undocumented field fails; what CDI 5.6 or
the core adds beyond the 5.3 spec is declared there with its source.
Known spec-vs-core differences, asserted the core's way:
- error bodies are ``text/html`` (spec: ``text/plain``), ``Hello`` is text (spec: JSON string);
- 404 says ``Not found`` (spec enum: ``Not Found``) — only the status is asserted.
"""

from __future__ import annotations

import base64
import json
import re
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest

from tests.support.cdi_spec import CDI_VERSION, response_schema, spec, validate
from tests.support.standin import Standin, start_standin


class Cdi:
    """An httpx client that checks each call against the spec operation it targets."""

    def __init__(self, target: Standin) -> None:
        self.target = target
        # loopback only: a proxy from the environment (HTTP_PROXY) must not sit between us and the CDI
        self.http = httpx.Client(base_url=target.url, timeout=30, trust_env=False)

    def call(self, method: str, path: str, body: Any = None, *, op_path: str | None = None,
             query: dict[str, str] | None = None, api_key: str | None = "default",
             version: str | None = CDI_VERSION, rid: str | None = None, raw: bytes | None = None,
             check_request: bool = True) -> httpx.Response:
        op_key = (method.lower(), op_path or re.sub(r"^(/appid-[a-z0-9-]+)?(/public)?(?=/)", "", path))
        op = spec()["ops"].get(op_key)
        assert op is not None, f"{op_key} is not in the CDI spec"
        headers = {}
        if api_key == "default":
            api_key = self.target.api_key
        if api_key:
            headers["api-key"] = api_key
        if version:
            headers["cdi-version"] = version
        if rid:
            headers["rid"] = rid
        content = raw
        if body is not None:
            if check_request:
                schema = op["requestBody"]["content"]["application/json"]["schema"]
                validate(schema, body, f"{op_key} request")
            content = json.dumps(body).encode()
            headers["content-type"] = "application/json"
        r = self.http.request(method, path, content=content, params=query, headers=headers)
        if r.status_code == 404:  # the core's text is "Not found", the spec's enum "Not Found"
            return r
        ctype, schema = response_schema(op, r.status_code)
        if ctype == "application/json" and r.headers["content-type"].startswith("application/json"):
            validate(schema, r.json(), f"{op_key} {r.status_code} response")
        else:  # the core sends text bodies (text/html) for errors and Hello
            ctype_sent = r.headers["content-type"]
            assert ctype_sent.startswith(("text/html", "text/plain")), ctype_sent
            validate(schema, r.text.strip(), f"{op_key} {r.status_code} response")
        return r

    def ok(self, method: str, path: str, body: Any = None, **kw: Any) -> dict[str, Any]:
        r = self.call(method, path, body, **kw)
        assert r.status_code == 200, f"{method} {path}: {r.status_code} {r.text[:200]}"
        return r.json()


@pytest.fixture(scope="module")
def api(cdi: Standin) -> Iterator[Cdi]:
    client = Cdi(cdi)
    yield client
    client.http.close()


def _email() -> str:
    return f"u{uuid.uuid4().hex[:12]}@example.com"


def _session(api: Cdi, user_id: str = "user-1", **extra: Any) -> dict[str, Any]:
    body = {"userId": user_id, "userDataInJWT": {"role": "tester"}, "userDataInDatabase": {},
            "enableAntiCsrf": False, **extra}
    return api.ok("POST", "/recipe/session", body, rid="session")


def _refresh(api: Cdi, token: str) -> dict[str, Any]:
    body = {"refreshToken": token, "enableAntiCsrf": False, "useDynamicSigningKey": True}
    return api.ok("POST", "/recipe/session/refresh", body, rid="session")


def _b64json(part: str) -> dict[str, Any]:
    return json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))


# --- core ------------------------------------------------------------------------------------

def test_hello_needs_no_api_key_and_accepts_prefixes(api: Cdi) -> None:
    for path in ("/hello", "/appid-public/public/hello", "/public/hello"):
        r = api.call("GET", path, api_key=None, version=None, op_path="/hello")
        assert (r.status_code, r.text.strip()) == (200, "Hello")


def test_api_key_is_enforced_with_the_cores_text(api: Cdi) -> None:
    if not api.target.api_key:
        pytest.skip("the target core has no api key configured")
    for key in (None, "wrong-key-0123456789abcdef"):
        r = api.call("GET", "/apiversion", api_key=key, version=None)
        assert (r.status_code, r.text.strip()) == (401, "Invalid API key")
    r = api.http.get("/apiversion", headers={"authorization": f"Bearer {api.target.api_key}"})
    assert r.status_code == 200


def test_apiversion_lists_5_6(api: Cdi) -> None:
    assert CDI_VERSION in api.ok("GET", "/apiversion", version=None)["versions"]


@pytest.mark.parametrize("version", ["99.0", "abc", "5"])
def test_unsupported_or_malformed_cdi_version_is_400(api: Cdi, version: str) -> None:
    r = api.call("POST", "/recipe/signin", {"email": _email(), "password": "pw-123456"}, version=version)
    assert r.status_code == 400


def test_unknown_path_is_404_and_wrong_method_405(api: Cdi) -> None:
    assert api.http.get("/recipe/nothing-here", headers={"api-key": api.target.api_key}).status_code == 404
    r = api.http.delete("/recipe/signin", headers={"api-key": api.target.api_key})
    assert (r.status_code, r.text.strip()) == (405, "Method not supported")


# --- email password --------------------------------------------------------------------------

def test_signup_normalises_email_and_refuses_duplicates(api: Cdi) -> None:
    email = _email()
    data = api.ok("POST", "/recipe/signup", {"email": f"  {email.upper()} ", "password": "pw-123456"},
                  rid="emailpassword")
    assert data["status"] == "OK"
    assert data["user"]["emails"] == [email] and data["recipeUserId"] == data["user"]["id"]
    assert data["user"]["loginMethods"][0]["recipeId"] == "emailpassword"
    again = api.ok("POST", "/public/recipe/signup", {"email": email, "password": "other-pass"},
                   rid="emailpassword")
    assert again == {"status": "EMAIL_ALREADY_EXISTS_ERROR"}


def test_signin_wrong_password_and_unknown_user_look_the_same(api: Cdi) -> None:
    email = _email()
    user = api.ok("POST", "/recipe/signup", {"email": email, "password": "pw-123456"})["user"]
    ok = api.ok("POST", "/appid-public/public/recipe/signin",
                {"email": email.upper(), "password": "pw-123456"}, rid="emailpassword")
    assert ok["status"] == "OK" and ok["user"]["id"] == user["id"]
    wrong = api.ok("POST", "/recipe/signin", {"email": email, "password": "pw-1234567"})
    unknown = api.ok("POST", "/recipe/signin", {"email": _email(), "password": "pw-123456"})
    assert wrong == unknown == {"status": "WRONG_CREDENTIALS_ERROR"}


@pytest.mark.parametrize("body", [{"email": "a@b.co"}, {"password": "x"}, {"email": 1, "password": "x"},
                                  {"email": "a@b.co", "password": ""}])
def test_signup_bad_fields_are_400(api: Cdi, body: dict[str, Any]) -> None:
    r = api.call("POST", "/recipe/signup", body, check_request=False)
    assert r.status_code == 400


def test_non_json_body_is_400(api: Cdi) -> None:
    r = api.call("POST", "/recipe/signin", raw=b"{not json")
    assert r.status_code == 400


# --- sessions --------------------------------------------------------------------------------

@pytest.mark.parametrize("missing", ["userId", "userDataInJWT", "userDataInDatabase", "enableAntiCsrf"])
def test_session_create_requires_what_the_core_requires(api: Cdi, missing: str) -> None:
    body = {"userId": "u", "userDataInJWT": {}, "userDataInDatabase": {}, "enableAntiCsrf": False}
    del body[missing]
    assert api.call("POST", "/recipe/session", body).status_code == 400


def test_access_token_is_v5_rs256_verifiable_with_the_jwks(api: Cdi) -> None:
    created = _session(api, "user-v5")
    token = created["accessToken"]["token"]
    head, payload = (_b64json(p) for p in token.split(".")[:2])
    assert head["alg"] == "RS256" and head["typ"] == "JWT" and head["version"] == "5"
    assert re.fullmatch(r"d-\d{13}", head["kid"])
    assert {"sub", "exp", "iat", "tId", "rsub", "sessionHandle", "refreshTokenHash1",
            "parentRefreshTokenHash1", "antiCsrfToken"} <= payload.keys()
    assert "iss" not in payload and payload["role"] == "tester" and payload["sub"] == "user-v5"
    assert payload["sessionHandle"] == created["session"]["handle"] and payload["tId"] == "public"
    assert "antiCsrfToken" not in created  # Gson leaves nulls out

    r = api.call("GET", "/.well-known/jwks.json", api_key=None, version=None)
    assert re.fullmatch(r"max-age=\d+, must-revalidate", r.headers["cache-control"])
    jwks = {k["kid"]: k for k in r.json()["keys"]}
    legacy = api.ok("GET", "/recipe/jwt/jwks", rid="jwt")
    assert head["kid"] in jwks and head["kid"] in {k["kid"] for k in legacy["keys"]}
    key = jwt.PyJWK(jwks[head["kid"]]).key
    assert jwt.decode(token, key, algorithms=["RS256"])["sub"] == "user-v5"


def test_verify_session_checks_signature_and_database(api: Cdi) -> None:
    created = _session(api, "user-verify")
    body = {"accessToken": created["accessToken"]["token"], "enableAntiCsrf": False, "doAntiCsrfCheck": False,
            "checkDatabase": True}
    ok = api.ok("POST", "/recipe/session/verify", body, rid="session")
    assert ok["status"] == "OK" and ok["session"]["handle"] == created["session"]["handle"]
    assert "accessToken" not in ok  # 5.6: verify never issues tokens
    head, payload, sig = created["accessToken"]["token"].split(".")
    forged = payload[:-4] + ("AAAA" if payload[-4:] != "AAAA" else "BBBB")
    bad = api.ok("POST", "/recipe/session/verify", {**body, "accessToken": f"{head}.{forged}.{sig}"})
    assert bad["status"] == "TRY_REFRESH_TOKEN"
    api.ok("POST", "/recipe/session/remove", {"sessionHandles": [created["session"]["handle"]]})
    gone = api.ok("POST", "/recipe/session/verify", body)
    assert gone["status"] == "UNAUTHORISED"


def test_refresh_rotates_and_reuse_outside_grace_revokes_the_session(api: Cdi) -> None:
    created = _session(api, "user-refresh")
    handle = created["session"]["handle"]
    rt0 = created["refreshToken"]["token"]
    r1 = _refresh(api, rt0)
    assert r1["status"] == "OK" and r1["refreshToken"]["token"] != rt0
    assert _b64json(r1["accessToken"]["token"].split(".")[1])["parentRefreshTokenHash1"] is None
    r2 = _refresh(api, r1["refreshToken"]["token"])
    assert r2["status"] == "OK"
    # rt0 is two rotations old: not current, not the grace-period `prev` -> theft, session revoked
    theft = _refresh(api, rt0)
    assert theft["status"] == "TOKEN_THEFT_DETECTED"
    assert theft["session"]["handle"] == handle and theft["session"]["userId"] == "user-refresh"
    assert _refresh(api, r2["refreshToken"]["token"])["status"] == "UNAUTHORISED"
    assert api.ok("GET", "/recipe/session", query={"sessionHandle": handle})["status"] == "UNAUTHORISED"


def test_previous_refresh_token_is_accepted_within_the_grace_period(api: Cdi) -> None:
    created = _session(api, "user-grace")
    rt0 = created["refreshToken"]["token"]
    r1 = _refresh(api, rt0)
    again = _refresh(api, rt0)  # a concurrent tab still held rt0: 5.6 re-rotates instead of revoking
    assert again["status"] == "OK"
    assert again["refreshToken"]["token"] not in (rt0, r1["refreshToken"]["token"])
    assert again["session"]["handle"] == created["session"]["handle"]


def test_refresh_requires_use_dynamic_signing_key_and_refuses_garbage(api: Cdi) -> None:
    r = api.call("POST", "/recipe/session/refresh", {"refreshToken": "x", "enableAntiCsrf": False},
                 check_request=False)
    assert r.status_code == 400
    assert _refresh(api, "not-a-refresh-token")["status"] == "UNAUTHORISED"


def test_access_token_validity_can_only_shorten(api: Cdi) -> None:
    created = _session(api, "user-short", accessTokenValidity=60_000)
    payload = _b64json(created["accessToken"]["token"].split(".")[1])
    assert payload["exp"] - payload["iat"] <= 60
    body = {"userId": "u", "userDataInJWT": {}, "userDataInDatabase": {}, "enableAntiCsrf": False,
            "accessTokenValidity": 10 * 365 * 24 * 3600 * 1000}
    assert api.call("POST", "/recipe/session", body).status_code == 400


def test_session_info_and_user_handles(api: Cdi) -> None:
    user = f"user-{uuid.uuid4().hex[:8]}"
    a, b = _session(api, user), _session(api, user)
    info = api.ok("GET", "/recipe/session", query={"sessionHandle": a["session"]["handle"]}, rid="session")
    assert info["status"] == "OK" and info["userId"] == user and info["userDataInJWT"] == {"role": "tester"}
    assert info["tenantId"] == "public" and info["expiry"] > info["timeCreated"]
    handles = api.ok("GET", "/public/recipe/session/user", query={"userId": user},
                     rid="session")["sessionHandles"]
    assert set(handles) == {a["session"]["handle"], b["session"]["handle"]}
    missing = api.ok("GET", "/recipe/session", query={"sessionHandle": str(uuid.uuid4())})
    assert missing == {"status": "UNAUTHORISED", "message": "Session does not exist."}


def test_remove_sessions_by_handle_and_by_user(api: Cdi) -> None:
    user = f"user-{uuid.uuid4().hex[:8]}"
    a, b, c = (_session(api, user)["session"]["handle"] for _ in range(3))
    out = api.ok("POST", "/recipe/session/remove", {"sessionHandles": [a, "no-such-handle"]}, rid="session")
    assert out["sessionHandlesRevoked"] == [a]
    out = api.ok("POST", "/public/recipe/session/remove", {"userId": user, "revokeAcrossAllTenants": True})
    assert set(out["sessionHandlesRevoked"]) == {b, c}


@pytest.mark.parametrize("body", [{}, {"sessionHandles": ["h"], "userId": "u"},
                                  {"sessionHandles": ["h"], "revokeAcrossAllTenants": True}])
def test_remove_sessions_needs_exactly_one_selector(api: Cdi, body: dict[str, Any]) -> None:
    assert api.call("POST", "/recipe/session/remove", body, check_request=False).status_code == 400


# --- metadata and users ----------------------------------------------------------------------

def test_user_metadata_shallow_merge_and_remove(api: Cdi) -> None:
    user = f"user-{uuid.uuid4().hex[:8]}"
    empty = api.ok("GET", "/recipe/user/metadata", query={"userId": user}, rid="usermetadata")
    assert empty["metadata"] == {}
    api.ok("PUT", "/recipe/user/metadata",
           {"userId": user, "metadataUpdate": {"prefs": {"theme": "dark"}, "todos": ["a"]}})
    merged = api.ok("PUT", "/recipe/user/metadata",
                    {"userId": user, "metadataUpdate": {"prefs": {"sms": True}, "todos": None}})
    assert merged["metadata"] == {"prefs": {"sms": True}}
    assert api.ok("POST", "/recipe/user/metadata/remove", {"userId": user}) == {"status": "OK"}
    assert api.ok("GET", "/recipe/user/metadata", query={"userId": user})["metadata"] == {}


def test_user_remove_is_ok_even_for_unknown_users_and_ends_sessions(api: Cdi) -> None:
    email = _email()
    user = api.ok("POST", "/recipe/signup", {"email": email, "password": "pw-123456"})["user"]["id"]
    created = _session(api, user)
    assert api.ok("POST", "/user/remove", {"userId": user}) == {"status": "OK"}
    assert api.ok("POST", "/user/remove", {"userId": str(uuid.uuid4())}) == {"status": "OK"}
    assert api.ok("POST", "/recipe/signin", {"email": email, "password": "pw-123456"})["status"] == \
        "WRONG_CREDENTIALS_ERROR"
    assert _refresh(api, created["refreshToken"]["token"])["status"] == "UNAUTHORISED"


# --- account recipes: email verification, password reset, user update, JWT payload ----------------

def _ep_signup(api: Cdi) -> tuple[str, str]:
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
    user_id, email = _ep_signup(api)
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
    # the core joins the verification into the user it answers (sign-in, lookups): loginMethods[].verified
    signin = api.ok("POST", "/recipe/signin", {"email": email, "password": "pw-123456"}, rid="emailpassword")
    assert signin["user"]["loginMethods"][0]["verified"] is True
    # verification belongs to (user, email): another address of the same user is not verified
    assert _is_verified(api, user_id, "other-" + email) is False


def test_verification_token_remove_and_unverify(api: Cdi) -> None:
    user_id, email = _ep_signup(api)
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
    user_id, email = _ep_signup(api)
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
    user_id, email = _ep_signup(api)
    out = api.ok(
        "PUT", "/recipe/user", {"recipeUserId": user_id, "password": "new-pass-123"}, rid="emailpassword"
    )
    assert out == {"status": "OK"}
    assert (
        api.ok("POST", "/recipe/signin", {"email": email, "password": "pw-123456"})["status"]
        == "WRONG_CREDENTIALS_ERROR"
    )
    assert api.ok("POST", "/recipe/signin", {"email": email, "password": "new-pass-123"})["status"] == "OK"
    _, taken = _ep_signup(api)
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
    user_id, email = _ep_signup(api)
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
        user_id, email = _ep_signup(api)
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
def test_user_by_id_answers_the_user_or_unknown(api: Cdi) -> None:
    email = _email()
    user = api.ok("POST", "/recipe/signup", {"email": email, "password": "pw-123456"})["user"]
    found = api.ok("GET", "/user/id", query={"userId": user["id"]})
    assert found["status"] == "OK" and found["user"]["id"] == user["id"]
    assert found["user"]["emails"] == [email]
    unknown = api.ok("GET", "/user/id", query={"userId": str(uuid.uuid4())})
    assert unknown == {"status": "UNKNOWN_USER_ID_ERROR"}
    assert api.call("GET", "/user/id").status_code == 400  # the query parameter is required


def test_apiversion_lists_every_version_the_core_lists(api: Cdi) -> None:
    versions = api.ok("GET", "/apiversion", version=None)["versions"]
    # core 12.1.1's coreDriverInterfaceSupported.json; official SDKs pick the newest they share
    assert {"2.21", "3.0", "4.0", "5.0", "5.1", "5.2", "5.3", "5.4", "5.5", "5.6"} <= set(versions)
    for sdk_version in ("5.4", "3.0"):
        assert api.call("GET", "/recipe/roles", version=sdk_version).status_code == 200


# --- user roles ------------------------------------------------------------------------------

def test_roles_permissions_and_assignments(api: Cdi) -> None:
    role = f"role-{uuid.uuid4().hex[:8]}"
    assert api.ok("PUT", "/recipe/role", {"role": f" {role} ", "permissions": ["write"]},
                  rid="userroles") == {"status": "OK", "createdNewRole": True}
    assert api.ok("PUT", "/recipe/role", {"role": role, "permissions": ["read"]})["createdNewRole"] is False
    assert sorted(api.ok("GET", "/recipe/role/permissions", query={"role": role})["permissions"]) == \
        ["read", "write"]
    assert role in api.ok("GET", "/recipe/permission/roles", query={"permission": "read"})["roles"]
    assert role in api.ok("GET", "/recipe/roles")["roles"]
    user = f"user-{uuid.uuid4().hex[:8]}"
    assert api.ok("PUT", "/public/recipe/user/role", {"userId": user, "role": role}) == \
        {"status": "OK", "didUserAlreadyHaveRole": False}
    again = api.ok("PUT", "/recipe/user/role", {"userId": user, "role": role})
    assert again["didUserAlreadyHaveRole"] is True
    assert api.ok("GET", "/recipe/user/roles", query={"userId": user})["roles"] == [role]
    assert api.ok("GET", "/recipe/role/users", query={"role": role})["users"] == [user]
    assert api.ok("POST", "/recipe/role/permissions/remove", {"role": role, "permissions": ["read"]}) == \
        {"status": "OK"}
    assert api.ok("GET", "/recipe/role/permissions", query={"role": role})["permissions"] == ["write"]
    assert api.ok("POST", "/recipe/user/role/remove", {"userId": user, "role": role}) == \
        {"status": "OK", "didUserHaveRole": True}
    assert api.ok("POST", "/recipe/role/remove", {"role": role}) == {"status": "OK", "didRoleExist": True}
    assert api.ok("POST", "/recipe/role/remove", {"role": role})["didRoleExist"] is False


def test_unknown_roles_and_empty_names(api: Cdi) -> None:
    unknown = {"status": "UNKNOWN_ROLE_ERROR"}
    assert api.ok("PUT", "/recipe/user/role", {"userId": "u", "role": "no-such-role"}) == unknown
    assert api.ok("POST", "/recipe/user/role/remove", {"userId": "u", "role": "no-such-role"}) == unknown
    assert api.ok("GET", "/recipe/role/permissions", query={"role": "no-such-role"}) == unknown
    assert api.ok("GET", "/recipe/role/users", query={"role": "no-such-role"}) == unknown
    assert api.call("PUT", "/recipe/role", {"role": "  "}).status_code == 400
    assert api.call("PUT", "/recipe/role", {"role": "r", "permissions": [" "]}).status_code == 400


def test_deleting_a_user_removes_their_roles(api: Cdi) -> None:
    role = f"role-{uuid.uuid4().hex[:8]}"
    api.ok("PUT", "/recipe/role", {"role": role})
    user = api.ok("POST", "/recipe/signup", {"email": _email(), "password": "pw-123456"})["user"]["id"]
    api.ok("PUT", "/recipe/user/role", {"userId": user, "role": role})
    api.ok("POST", "/user/remove", {"userId": user})
    assert api.ok("GET", "/recipe/user/roles", query={"userId": user})["roles"] == []


# --- session payload updates -----------------------------------------------------------------

def test_jwt_data_update_rides_the_next_refresh(api: Cdi) -> None:
    created = _session(api, "user-jwt-data")
    handle = created["session"]["handle"]
    update = {"sessionHandle": handle, "userDataInJWT": {"st-role": {"v": ["a"]}}}
    assert api.ok("PUT", "/recipe/jwt/data", update, rid="session") == {"status": "OK"}
    assert api.ok("GET", "/recipe/jwt/data", query={"sessionHandle": handle})["userDataInJWT"] == \
        {"st-role": {"v": ["a"]}}
    refreshed = _refresh(api, created["refreshToken"]["token"])
    assert _b64json(refreshed["accessToken"]["token"].split(".")[1])["st-role"] == {"v": ["a"]}
    gone = api.ok("PUT", "/recipe/jwt/data", {"sessionHandle": str(uuid.uuid4()), "userDataInJWT": {}})
    assert gone["status"] == "UNAUTHORISED"
    assert api.call("PUT", "/recipe/jwt/data", {"sessionHandle": handle, "userDataInJWT": {"sub": "x"}},
                    check_request=False).status_code == 400


def test_regenerate_issues_a_token_with_the_new_payload(api: Cdi) -> None:
    created = _session(api, "user-regen")
    old = created["accessToken"]["token"]
    out = api.ok("POST", "/recipe/session/regenerate", {"accessToken": old, "userDataInJWT": {"plan": "pro"}},
                 rid="session")
    assert out["status"] == "OK" and out["session"]["userDataInJWT"] == {"plan": "pro"}
    payload = _b64json(out["accessToken"]["token"].split(".")[1])
    assert payload["plan"] == "pro" and payload["sessionHandle"] == created["session"]["handle"]
    assert payload["exp"] == _b64json(old.split(".")[1])["exp"]  # same lifetime, new payload
    head, body, sig = old.split(".")
    forged = body[:-4] + ("AAAA" if body[-4:] != "AAAA" else "BBBB")
    bad = api.ok("POST", "/recipe/session/regenerate", {"accessToken": f"{head}.{forged}.{sig}"})
    assert bad["status"] == "UNAUTHORISED"
# --- third party (POST /recipe/signinup, what OAuth sign-in calls) ----------------------------

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


def test_a_provider_verified_email_is_verified_in_the_email_verification_recipe(api: Cdi) -> None:
    """As the core's ThirdParty.signInUp: ``isVerified`` marks the pair through the email-verification
    recipe, and a login method's ``verified`` is that recipe's answer (a mailed token counts too)."""
    vouched = _signinup(api, "google", uuid.uuid4().hex, f"v{uuid.uuid4().hex[:10]}@example.com")
    assert _is_verified(api, vouched["user"]["id"], vouched["user"]["emails"][0]) is True
    subject, email = uuid.uuid4().hex, f"u{uuid.uuid4().hex[:10]}@example.com"
    unvouched = _signinup(api, "github", subject, email, verified=False)
    user_id = unvouched["user"]["id"]
    assert unvouched["user"]["loginMethods"][0]["verified"] is False
    assert _is_verified(api, user_id, email) is False
    token = _verify_token(api, user_id, email)["token"]
    api.ok("POST", "/recipe/user/email/verify", {"method": "token", "token": token}, rid="emailverification")
    again = _signinup(api, "github", subject, email, verified=False)
    assert again["user"]["loginMethods"][0]["verified"] is True


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


# --- users of every recipe: by id, by account info, listed, counted, removed --------------------

def _users_page(api: Cdi, **query: str) -> dict[str, Any]:
    return api.ok("GET", "/users", query=query)


def _all_users(api: Cdi, **query: str) -> list[dict[str, Any]]:
    users, token = [], None
    while True:
        page = _users_page(api, limit="2", **query, **({"paginationToken": token} if token else {}))
        users += page["users"]
        token = page.get("nextPaginationToken")
        if token is None:
            return users


def test_user_by_id_finds_third_party_users_with_their_verification(api: Cdi) -> None:
    email = _email()
    user_id = _signinup(api, "google", uuid.uuid4().hex, email, verified=False)["user"]["id"]
    found = api.ok("GET", "/user/id", query={"userId": user_id})["user"]

    def verified() -> bool:
        return api.ok("GET", "/user/id", query={"userId": user_id})["user"]["loginMethods"][0]["verified"]

    assert found["loginMethods"][0]["recipeId"] == "thirdparty" and verified() is False
    token = _verify_token(api, user_id, email)["token"]
    api.ok("POST", "/recipe/user/email/verify", {"method": "token", "token": token})
    assert verified() is True
    api.ok("POST", "/recipe/user/email/verify/remove", {"userId": user_id, "email": email})
    assert verified() is False
    # isVerified from the provider marks the same (user, email) pair the verification recipe reads
    _signinup(api, "google", found["thirdParty"][0]["userId"], email, verified=True)
    assert _is_verified(api, user_id, email) is True


def test_users_by_account_info_across_recipes(api: Cdi) -> None:
    email, subject = _email(), uuid.uuid4().hex
    third = _signinup(api, "google", subject, email)["user"]["id"]
    password = api.ok("POST", "/recipe/signup", {"email": email, "password": "pw-123456"})["user"]["id"]
    other = _signinup(api, "github", uuid.uuid4().hex, _email())["user"]["id"]

    def ids(**query: str) -> list[str]:
        return [u["id"] for u in api.ok("GET", "/users/by-accountinfo", query=query)["users"]]

    assert ids(email=email, doUnionOfAccountInfo="false") == [third, password]  # oldest first
    assert ids(thirdPartyId="google", thirdPartyUserId=subject, doUnionOfAccountInfo="false") == [third]
    assert ids(email=email, thirdPartyId="google", thirdPartyUserId=subject,
               doUnionOfAccountInfo="false") == [third]
    other_subject = api.ok("GET", "/user/id", query={"userId": other})["user"]["thirdParty"][0]["userId"]
    both = {"email": email, "thirdPartyId": "github", "thirdPartyUserId": other_subject}
    assert ids(**both, doUnionOfAccountInfo="false") == []
    assert set(ids(**both, doUnionOfAccountInfo="true")) == {third, password, other}
    assert ids(phoneNumber="+14155550100", doUnionOfAccountInfo="false") == []


_BOTH_THIRD_PARTY = "If 'thirdPartyId' is provided, 'thirdPartyUserId' must also be provided, and vice versa"


@pytest.mark.parametrize(("query", "message"), [
    ({"email": "a@b.co"}, "Field name 'doUnionOfAccountInfo' is missing in GET request"),
    ({"email": "a@b.co", "doUnionOfAccountInfo": "maybe"}, "'doUnionOfAccountInfo' should be either"),
    ({"thirdPartyId": "google", "doUnionOfAccountInfo": "false"}, _BOTH_THIRD_PARTY),
    ({"thirdPartyUserId": "x", "doUnionOfAccountInfo": "true"}, _BOTH_THIRD_PARTY),
])
def test_users_by_account_info_refuses_bad_queries(api: Cdi, query: dict[str, str], message: str) -> None:
    r = api.call("GET", "/users/by-accountinfo", query=query)
    assert r.status_code == 400 and r.text.startswith(message), r.text


def test_users_list_pages_in_time_joined_order_and_counts_agree(api: Cdi) -> None:
    made = [api.ok("POST", "/recipe/signup", {"email": _email(), "password": "pw-123456"})["user"]["id"],
            _signinup(api, "google", uuid.uuid4().hex, _email())["user"]["id"]]
    oldest = _all_users(api)
    ids = [u["id"] for u in oldest]
    assert len(ids) == len(set(ids)) and set(made) <= set(ids)
    # the core's order (UsersAPI's query): time joined, then user id descending within the same ms
    def reverse(text: str) -> tuple[int, ...]:
        return (*(-ord(c) for c in text), 1)

    assert ids == [u["id"] for u in sorted(oldest, key=lambda u: (u["timeJoined"], reverse(u["id"])))]
    newest = [u["id"] for u in sorted(oldest, key=lambda u: (-u["timeJoined"], reverse(u["id"])))]
    assert [u["id"] for u in _all_users(api, timeJoinedOrder="DESC")] == newest
    assert api.ok("GET", "/users/count")["count"] == len(ids)
    third_party = _all_users(api, includeRecipeIds="thirdparty")
    assert {u["loginMethods"][0]["recipeId"] for u in third_party} == {"thirdparty"}
    assert made[1] in {u["id"] for u in third_party} and made[0] not in {u["id"] for u in third_party}
    counted = api.ok("GET", "/users/count", query={"includeRecipeIds": "thirdparty"})["count"]
    assert counted == len(third_party)
    assert api.ok("GET", "/users/count", query={"includeRecipeIds": "emailpassword,thirdparty",
                                                "includeAllTenants": "true"})["count"] == len(ids)
    approximate = {"allowApproximate": "true"}
    exact = api.ok("GET", "/users/count", query=approximate, version="5.6")
    # an exact count says so; a real core may serve a cached one (approximate: true) on a busy tenant
    assert exact["approximate"] is True or exact["count"] == len(ids)
    assert isinstance(exact["approximate"], bool) and exact["asOf"] > 0
    assert "approximate" not in api.ok("GET", "/users/count", query=approximate, version="5.5")
    first = _users_page(api, limit="1")
    assert len(first["users"]) == 1 and first["users"][0]["id"] == ids[0]
    second = _users_page(api, limit="1", paginationToken=first["nextPaginationToken"])
    assert second["users"][0]["id"] == ids[1]


@pytest.mark.parametrize(("path", "query", "message"), [
    ("/users", {"limit": "0"}, "limit must a positive integer with min value 1"),
    ("/users", {"limit": "1001"}, "max limit allowed is 1000"),
    ("/users", {"limit": "ten"}, "Field name 'limit' must be an int in the GET request"),
    ("/users", {"timeJoinedOrder": "NEWEST"}, "timeJoinedOrder can be either ASC OR DESC"),
    ("/users", {"includeRecipeIds": "emailpassword,sms"}, "Unknown recipe ID: sms"),
    ("/users", {"paginationToken": "not-a-token"}, "invalid pagination token"),
    ("/users/count", {"includeRecipeIds": "sms"}, "Unknown recipe ID: sms"),
])
def test_users_list_and_count_refuse_bad_queries(api: Cdi, path: str, query: dict[str, str],
                                                 message: str) -> None:
    r = api.call("GET", path, query=query)
    assert (r.status_code, r.text.strip()) == (400, message)  # the core's texts (UsersAPI, InputParser)


def test_user_remove_takes_a_third_party_user_with_everything_it_had(api: Cdi) -> None:
    email, subject = _email(), uuid.uuid4().hex
    user_id = _signinup(api, "github", subject, email, verified=True)["user"]["id"]
    role = f"r{uuid.uuid4().hex[:8]}"
    api.ok("PUT", "/recipe/role", {"role": role})
    api.ok("PUT", "/recipe/user/role", {"userId": user_id, "role": role})
    api.ok("PUT", "/recipe/user/metadata", {"userId": user_id, "metadataUpdate": {"plan": "pro"}})
    created = _session(api, user_id)
    pending = api.ok("POST", "/recipe/user/password/reset/token", {"userId": user_id, "email": email})
    assert pending["status"] == "OK"  # a reset token may name any auth recipe's user
    assert api.ok("POST", "/user/remove", {"userId": user_id}) == {"status": "OK"}
    assert api.ok("GET", "/user/id", query={"userId": user_id}) == {"status": "UNKNOWN_USER_ID_ERROR"}
    assert api.ok("GET", "/recipe/user/metadata", query={"userId": user_id})["metadata"] == {}
    assert api.ok("GET", "/recipe/user/roles", query={"userId": user_id})["roles"] == []
    assert _is_verified(api, user_id, email) is False
    assert _refresh(api, created["refreshToken"]["token"])["status"] == "UNAUTHORISED"
    spent = api.ok("POST", "/recipe/user/password/reset/token/consume", {"token": pending["token"]})
    assert spent == {"status": "RESET_PASSWORD_INVALID_TOKEN_ERROR"}
    query = {"thirdPartyId": "github", "thirdPartyUserId": subject, "doUnionOfAccountInfo": "false"}
    assert api.ok("GET", "/users/by-accountinfo", query=query)["users"] == []
    again = _signinup(api, "github", subject, email, verified=False)
    assert again["createdNewUser"] is True and again["user"]["id"] != user_id


def test_user_remove_of_an_id_no_recipe_knows_deletes_nothing(api: Cdi) -> None:
    stranger = str(uuid.uuid4())  # e.g. metadata kept for an id from outside SuperTokens
    api.ok("PUT", "/recipe/user/metadata", {"userId": stranger, "metadataUpdate": {"kept": True}})
    assert api.ok("POST", "/user/remove", {"userId": stranger}) == {"status": "OK"}
    assert api.ok("GET", "/recipe/user/metadata", query={"userId": stranger})["metadata"] == {"kept": True}


@pytest.mark.parametrize(("path", "query"), [
    ("/users", {}), ("/users/count", {}), ("/user/id", {"userId": "u"}),
    ("/users/by-accountinfo", {"email": "a@b.co", "doUnionOfAccountInfo": "false"}),
])
def test_user_lookups_need_the_api_key(api: Cdi, path: str, query: dict[str, str]) -> None:
    if not api.target.api_key:
        pytest.skip("the target core has no api key configured")
    r = api.call("GET", path, query=query, api_key=None)
    assert (r.status_code, r.text.strip()) == (401, "Invalid API key")
# --- the fixture's own promise -----------------------------------------------------------------

def test_a_stand_in_whose_port_another_server_holds_is_never_taken_for_ready(cdi: Standin,
                                                                             tmp_path: Path) -> None:
    """Another session's server on our port answers ``/hello`` too: start-up must fail, not pass.

    Ports are picked free, then bound a moment later; on a shared machine another test session can
    bind the same one in between. Readiness by ``/hello`` alone then took the other stand-in for
    ours, and this module's first test talked to a server that could stop at any moment.
    """
    if not cdi.is_standin:
        pytest.skip("the target is a real core, not a stand-in this suite starts")
    env = {**cdi.env, "SUPERTOKENS_API_KEYS": "other-" + uuid.uuid4().hex}
    loser = Standin(url=cdi.url, api_key=env["SUPERTOKENS_API_KEYS"], db_path=tmp_path / "other.sqlite3",
                    env=env)
    with pytest.raises(RuntimeError, match="stand-in exited"):
        loser.restart()  # starts a second stand-in on the port the module's stand-in holds
    assert loser.process is None
    assert api_version_answers(cdi)


def api_version_answers(target: Standin) -> bool:
    r = httpx.get(target.url + "/apiversion", headers={"api-key": target.api_key}, timeout=10,
                  trust_env=False)
    return r.status_code == 200
