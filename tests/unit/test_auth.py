"""auth.py: SessionAuthenticator's checks (algorithm pinning, skew, origin rules, configured issuer, admin
keys) and its verified-token cache (only the exact token hits, never past exp + leeway, never after a
key change)."""

from __future__ import annotations

import time
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from worker.adapters.pyjwt_signatures import PyJwtSignatures
from worker.auth import LEEWAY_S, TOKEN_CACHE_SIZE, SessionAuthenticator, VerifiedTokens
from worker.http import ApiError, Request
from worker.jwks import JwksCache
from worker.principal import Principal
from worker.settings import Settings

KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
OTHER_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
ADMIN = "admin-key-0123456789abcdef"


def _jwk(key: Any, kid: str) -> dict[str, Any]:
    return {**jwt.algorithms.RSAAlgorithm.to_jwk(key.public_key(), as_dict=True), "kid": kid,
            "alg": "RS256", "use": "sig"}


JWK = _jwk(KEY, "d-1")


class Core:
    """A JWKS source whose published keys a test can change."""

    def __init__(self) -> None:
        self.jwks = [JWK]
        self.calls = 0

    async def fetch(self) -> tuple[list[dict[str, Any]], int | None]:
        self.calls += 1
        return list(self.jwks), 60


class Clock:
    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now


def _auth(core: Core | None = None, clock: Clock | None = None, *, token_cache_size: int = TOKEN_CACHE_SIZE,
          **settings: Any) -> SessionAuthenticator:
    s = Settings(admin_key=ADMIN, collections_json="{}", **settings)
    jwks = JwksCache((core or Core()).fetch, PyJwtSignatures(), min_interval=0.0)
    return SessionAuthenticator(s, jwks, clock=clock or time.time, token_cache_size=token_cache_size)


def _claims(**over: Any) -> dict[str, Any]:
    """A SuperTokens session token's claims; a value of ``...`` removes that claim."""
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


def _token(claims: dict[str, Any], key: Any = KEY, kid: str = "d-1") -> str:
    return jwt.encode(claims, key, algorithm="RS256", headers={"kid": kid, "version": "5"})


def _session(sub: str = "user-1", key: Any = KEY, **over: Any) -> str:
    """A session token of ``sub`` (session handle ``h-<sub>``)."""
    return _token(_claims(sub=sub, rsub=sub, sessionHandle=f"h-{sub}", **over), key=key)


def _req(token: str) -> Request:
    return Request("GET", "/", headers={"authorization": f"Bearer {token}"})


def _count_full_checks(auth: SessionAuthenticator) -> list[str]:
    """Wrap the full verification so a test sees which requests paid for it."""
    seen: list[str] = []
    full = auth._verify

    async def spy(token: str) -> Any:
        seen.append(token)
        return await full(token)

    auth._verify = spy  # type: ignore[method-assign]
    return seen


# ---------------------------------------------------------------- verification


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


#: stands for "a minute past the leeway from now", resolved when the test runs
_BEYOND_LEEWAY = object()


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
        {"iat": ...},
        {"exp": "9999999999"},  # a NumericDate is a JSON number
        {"iat": _BEYOND_LEEWAY},  # issued in the future
        {"nbf": _BEYOND_LEEWAY},  # not valid yet
    ],
)
async def test_tokens_that_are_not_our_session_tokens_are_401(over: dict[str, Any]) -> None:
    # times are taken now, not at collection: a long suite would otherwise age them into validity
    now = int(time.time())
    over = {k: now + LEEWAY_S + 60 if v is _BEYOND_LEEWAY else v for k, v in over.items()}
    with pytest.raises(ApiError) as err:
        await _auth().authenticate(_req(_token(_claims(**over))))
    assert err.value.status == 401


async def test_a_tampered_payload_or_another_keys_signature_is_401() -> None:
    token = _token(_claims())
    header, _, signature = token.split(".")
    other_claims = _token(_claims(sub="admin", rsub="admin")).split(".")[1]
    for bad in (f"{header}.{other_claims}.{signature}", _token(_claims(), key=OTHER_KEY)):
        with pytest.raises(ApiError) as err:
            await _auth().authenticate(_req(bad))
        assert (err.value.status, err.value.code) == (401, "invalid_token")


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

    auth = SessionAuthenticator(Settings(admin_key=ADMIN, collections_json="{}"),
                                JwksCache(counting, PyJwtSignatures()))
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


# ---------------------------------------------------------------- the verified-token cache


async def test_a_repeated_token_is_verified_once() -> None:
    auth = _auth()
    full = _count_full_checks(auth)
    token = _session()
    first = await auth.authenticate(_req(token))
    second = await auth.authenticate(_req(token))
    assert first == second == Principal(user_id="user-1", session_handle="h-user-1")
    assert len(full) == 1


async def test_a_different_token_never_hits_even_with_the_same_claims() -> None:
    auth = _auth()
    full = _count_full_checks(auth)
    token = _session()
    await auth.authenticate(_req(token))
    # the same header and claims signed by another key: only the signature differs
    forged = _session(key=OTHER_KEY)
    assert forged.rsplit(".", 1)[0] == token.rsplit(".", 1)[0]
    with pytest.raises(ApiError) as err:
        await auth.authenticate(_req(forged))
    assert (err.value.status, err.value.code) == (401, "invalid_token")
    # a token for another user is verified on its own and yields its own principal
    other = await auth.authenticate(_req(_session("user-2")))
    assert other.user_id == "user-2"
    assert len(full) == 3
    # a truncated / altered copy of the cached token does not hit either
    with pytest.raises(ApiError):
        await auth.authenticate(_req(token[:-2]))


async def test_an_expired_token_is_never_served_from_the_cache() -> None:
    clock = Clock()
    auth = _auth(clock=clock)
    exp = int(clock.now) + 120
    token = _session(exp=exp)
    assert (await auth.authenticate(_req(token))).user_id == "user-1"
    full = _count_full_checks(auth)
    clock.now = exp + LEEWAY_S - 1  # still inside the leeway PyJWT grants
    assert (await auth.authenticate(_req(token))).user_id == "user-1"
    assert full == []
    clock.now = exp + LEEWAY_S  # past it: the cache must not answer; the full check decides
    with pytest.raises(ApiError) as err:  # on the same clock as the cache: expired
        await auth.authenticate(_req(token))
    assert err.value.code == "token_expired"
    assert full == [token]
    assert auth.tokens is not None and auth.tokens.get(token, exp + LEEWAY_S + 1) is None


async def test_expired_entry_leads_to_the_full_checks_401() -> None:
    now = int(time.time())
    clock = Clock()
    auth = _auth(clock=clock)
    token = _session(exp=now - LEEWAY_S + 30)  # valid now (within leeway) for the real clock
    await auth.authenticate(_req(token))
    clock.now = now + 60  # the cache's clock says it is past exp + leeway

    async def expired(_: str) -> Any:
        raise ApiError(401, "token_expired", "expired")

    auth._verify = expired  # type: ignore[method-assign]
    with pytest.raises(ApiError) as err:
        await auth.authenticate(_req(token))
    assert err.value.code == "token_expired"


async def test_a_key_rotation_sends_cached_tokens_through_the_full_check() -> None:
    core = Core()
    clock = Clock()
    auth = _auth(core, clock)
    token = _session()
    await auth.authenticate(_req(token))
    # the core stops publishing d-1; once the JWKS is refetched, the cached token must fail
    core.jwks = [_jwk(OTHER_KEY, "d-2")]
    assert auth._jwks is not None
    auth._jwks._fetched_at = -1e12  # expire the JWKS cache (its TTL passed)
    with pytest.raises(ApiError) as err:
        await auth.authenticate(_req(token))
    assert (err.value.status, err.value.code) == (401, "invalid_token")
    assert auth.tokens is not None and len(auth.tokens) == 0


async def test_failures_are_not_cached() -> None:
    auth = _auth()
    bad = _session(tId="other-tenant")
    for _ in range(2):
        with pytest.raises(ApiError):
            await auth.authenticate(_req(bad))
    assert auth.tokens is not None and len(auth.tokens) == 0


async def test_the_cache_is_bounded_and_evicts_least_recently_used() -> None:
    auth = _auth(token_cache_size=3)
    full = _count_full_checks(auth)
    tokens = [_session(f"user-{i}") for i in range(4)]
    for t in tokens[:3]:
        await auth.authenticate(_req(t))
    await auth.authenticate(_req(tokens[0]))  # touch: user-1 is now the least recently used
    await auth.authenticate(_req(tokens[3]))  # evicts user-1
    assert auth.tokens is not None and len(auth.tokens) == 3
    n = len(full)
    await auth.authenticate(_req(tokens[0]))
    await auth.authenticate(_req(tokens[2]))
    assert len(full) == n  # both still cached
    await auth.authenticate(_req(tokens[1]))
    assert full[-1] == tokens[1] and len(full) == n + 1  # was evicted: verified again


async def test_size_zero_disables_the_cache() -> None:
    auth = _auth(token_cache_size=0)
    full = _count_full_checks(auth)
    token = _session()
    await auth.authenticate(_req(token))
    await auth.authenticate(_req(token))
    assert auth.tokens is None and len(full) == 2


def test_entries_are_keyed_by_a_digest_not_the_token() -> None:
    cache = VerifiedTokens(4)
    token = _session()
    cache.put(token, Principal(user_id="u"), time.time() + 60, "d-1", object())
    assert all(isinstance(k, bytes) and len(k) == 32 for k in cache._entries)
    assert token not in cache._entries


async def test_admin_key_is_not_cached_and_still_checked_first() -> None:
    auth = _auth()
    p = await auth.authenticate(_req(ADMIN))
    assert p.is_admin
    assert auth.tokens is not None and len(auth.tokens) == 0


# ---------------------------------------------------------------- email claims


@pytest.mark.parametrize(("claims", "expected"), [
    ({"email": "ada@example.com", "email_verified": True}, ("ada@example.com", True)),
    ({"email": "ada@example.com", "email_verified": False}, ("ada@example.com", False)),
    ({"email": "ada@example.com", "email_verified": "true"}, ("ada@example.com", False)),  # only JSON true
    ({"email": "ada@example.com"}, ("ada@example.com", False)),
    ({"email": 42, "email_verified": True}, (None, True)),
    ({}, (None, False)),
])
async def test_the_principal_carries_the_tokens_email_claims(claims: dict[str, Any],
                                                             expected: tuple[Any, bool]) -> None:
    p = await _auth().authenticate(_req(_token(_claims(**claims))))
    assert (p.email, p.email_verified) == expected
