"""SessionAuthenticator in-process: algorithm pinning, skew, origin rules, configured issuer, admin keys."""

from __future__ import annotations

import time
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from worker.auth import LEEWAY_S, SessionAuthenticator
from worker.http import ApiError, Request
from worker.jwks import JwksCache
from worker.settings import Settings

KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
JWK = {
    **jwt.algorithms.RSAAlgorithm.to_jwk(KEY.public_key(), as_dict=True),
    "kid": "d-1",
    "alg": "RS256",
    "use": "sig",
}
ADMIN = "admin-key-0123456789abcdef"


async def _fetch() -> tuple[list[dict[str, Any]], int | None]:
    return [JWK], 60


def _auth(**settings: Any) -> SessionAuthenticator:
    s = Settings(admin_key=ADMIN, collections_json="{}", **settings)
    return SessionAuthenticator(s, JwksCache(_fetch))


def _claims(**over: Any) -> dict[str, Any]:
    now = int(time.time())
    claims = {
        "sub": "user-1",
        "iat": now,
        "exp": now + 600,
        "tId": "public",
        "rsub": "user-1",
        "sessionHandle": "h-1",
        "refreshTokenHash1": "ab" * 32,
        "parentRefreshTokenHash1": None,
        "antiCsrfToken": None,
    }
    claims.update(over)
    return {k: v for k, v in claims.items() if v is not ...}


def _token(claims: dict[str, Any], kid: str = "d-1") -> str:
    return jwt.encode(claims, KEY, algorithm="RS256", headers={"kid": kid, "version": "5"})


def _req(token: str) -> Request:
    return Request("GET", "/", headers={"authorization": f"Bearer {token}"})


async def test_valid_session_token_becomes_the_principal() -> None:
    p = await _auth().authenticate(_req(_token(_claims())))
    assert (p.user_id, p.session_handle, p.is_admin) == ("user-1", "h-1", False)


async def test_clock_skew_is_tolerated_only_up_to_the_leeway() -> None:
    now = int(time.time())
    ok = _token(_claims(exp=now - LEEWAY_S + 5))
    assert (await _auth().authenticate(_req(ok))).user_id == "user-1"
    late = _token(_claims(exp=now - LEEWAY_S - 5))
    with pytest.raises(ApiError) as err:
        await _auth().authenticate(_req(late))
    assert (err.value.status, err.value.code) == (401, "token_expired")


@pytest.mark.parametrize(
    "over",
    [
        {"iss": "https://anything"},  # the JWT recipe stamps iss; session tokens never carry one
        {"aud": "someone"},
        {"tId": "tenant-b"},
        {"sessionHandle": ...},
        {"refreshTokenHash1": ...},
        {"sub": ""},
        {"exp": ...},
    ],
)
async def test_tokens_that_are_not_our_session_tokens_are_401(over: dict[str, Any]) -> None:
    with pytest.raises(ApiError) as err:
        await _auth().authenticate(_req(_token(_claims(**over))))
    assert err.value.status == 401


async def test_a_configured_issuer_is_required_exactly() -> None:
    auth = _auth(auth_issuer="https://auth.example.com")
    good = _token(_claims(iss="https://auth.example.com"))
    assert (await auth.authenticate(_req(good))).user_id == "user-1"
    for bad in (_claims(iss="https://evil.example"), _claims()):
        with pytest.raises(ApiError) as err:
            await auth.authenticate(_req(_token(bad)))
        assert err.value.status == 401


async def test_algorithm_is_pinned_before_any_key_lookup() -> None:
    fetches = 0

    async def counting() -> tuple[list[dict[str, Any]], int | None]:
        nonlocal fetches
        fetches += 1
        return [JWK], 60

    auth = SessionAuthenticator(Settings(admin_key=ADMIN, collections_json="{}"), JwksCache(counting))
    hs = jwt.encode(_claims(), "secret", algorithm="HS256", headers={"kid": "d-1"})
    unsigned = jwt.encode(_claims(), None, algorithm="none", headers={"kid": "d-1"})
    for token in (hs, unsigned, "a.b.c", "", "x" * 50):
        with pytest.raises(ApiError) as err:
            await auth.authenticate(_req(token))
        assert err.value.status == 401
    assert fetches == 0


async def test_admin_key_and_previous_key_window() -> None:
    now = int(time.time())
    auth = _auth(admin_key_previous="old-admin-key-0123456789", admin_key_previous_until=now + 60)
    assert (await auth.authenticate(_req(ADMIN))).is_admin
    assert (await auth.authenticate(_req("old-admin-key-0123456789"))).is_admin
    expired = _auth(admin_key_previous="old-admin-key-0123456789", admin_key_previous_until=now - 1)
    with pytest.raises(ApiError):
        await expired.authenticate(_req("old-admin-key-0123456789"))
    with pytest.raises(ApiError):
        await auth.authenticate(Request("GET", "/", headers={"authorization": f"Basic {ADMIN}"}))
