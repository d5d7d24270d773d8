"""JWKS cache: refresh on unknown kid, a bounded refresh rate, stale-if-error, TTL from max-age."""

from __future__ import annotations

import asyncio
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from worker.adapters.pyjwt_signatures import PyJwtSignatures
from worker.http import ApiError
from worker.jwks import JwksCache, rsa_keys

SIGNATURES = PyJwtSignatures()


def _jwk(kid: str) -> dict[str, Any]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048).public_key()
    jwk = jwt.algorithms.RSAAlgorithm.to_jwk(key, as_dict=True)
    return {**jwk, "kid": kid, "alg": "RS256", "use": "sig"}


class FakeCore:
    def __init__(self, keys: list[dict[str, Any]], max_age: int | None = 60) -> None:
        self.keys = keys
        self.max_age = max_age
        self.calls = 0
        self.fail = False

    async def fetch(self) -> tuple[list[dict[str, Any]], int | None]:
        self.calls += 1
        await asyncio.sleep(0)
        if self.fail:
            raise ApiError(503, "auth_unavailable", "down")
        return list(self.keys), self.max_age


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


KEY_A, KEY_B = _jwk("d-1"), _jwk("d-2")


async def test_unknown_kid_triggers_one_refresh_then_is_served_from_cache() -> None:
    core, clock = FakeCore([KEY_A]), Clock()
    cache = JwksCache(core.fetch, SIGNATURES, min_interval=10, clock=clock)
    assert await cache.key("d-1") is not None and core.calls == 1
    assert await cache.key("d-1") is not None and core.calls == 1
    core.keys = [KEY_A, KEY_B]  # the core rotated
    clock.now += 11
    assert await cache.key("d-2") is not None and core.calls == 2


async def test_unknown_kids_cannot_force_more_than_one_fetch_per_interval() -> None:
    core, clock = FakeCore([KEY_A]), Clock()
    cache = JwksCache(core.fetch, SIGNATURES, min_interval=10, clock=clock)
    await cache.key("d-1")
    clock.now += 10
    results = await asyncio.gather(*(cache.key(f"bogus-{i}") for i in range(50)))
    assert results == [None] * 50 and core.calls == 2  # 50 unknown kids, one shared fetch
    clock.now += 5
    assert await cache.key("bogus-x") is None and core.calls == 2  # still inside the interval
    clock.now += 5
    assert await cache.key("bogus-y") is None and core.calls == 3


async def test_ttl_follows_max_age_clamped() -> None:
    core, clock = FakeCore([KEY_A], max_age=5), Clock()  # 5 s is clamped up to 30 s
    cache = JwksCache(core.fetch, SIGNATURES, min_interval=1, clock=clock)
    await cache.key("d-1")
    clock.now += 29
    await cache.key("d-1")
    assert core.calls == 1
    clock.now += 2
    await cache.key("d-1")
    assert core.calls == 2


async def test_stale_keys_survive_an_unreachable_core_but_no_keys_is_503() -> None:
    core, clock = FakeCore([KEY_A], max_age=30), Clock()
    cache = JwksCache(core.fetch, SIGNATURES, min_interval=1, clock=clock)
    await cache.key("d-1")
    core.fail = True
    clock.now += 100
    assert await cache.key("d-1") is not None  # stale-if-error
    empty = JwksCache(core.fetch, SIGNATURES, min_interval=1, clock=clock)
    with pytest.raises(ApiError) as err:
        await empty.key("d-1")
    assert err.value.status == 503


async def test_only_rs256_rsa_signing_keys_are_kept() -> None:
    keys = await rsa_keys(
        [
            KEY_A,
            {**KEY_B, "alg": "HS256"},
            {**KEY_B, "kid": "enc", "use": "enc"},
            {"kty": "oct", "kid": "sym", "k": "c2VjcmV0"},
            {"kty": "RSA", "kid": "broken", "n": "!!", "e": "AQAB"},
            {**KEY_B, "kid": ""},
        ],
        SIGNATURES,
    )
    assert list(keys) == ["d-1"]
