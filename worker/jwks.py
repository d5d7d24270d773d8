"""The core's public signing keys, cached per isolate and refreshed with a bounded rate.

Verification is local (no core call per request), so this cache is the only
thing between a request and the core. It refetches when:

- the cached set is older than its TTL (the core's ``Cache-Control: max-age``,
  clamped to [30 s, 1 h]); or
- a token names a ``kid`` we do not have (the core rotated its key).

Either way at most one fetch per ``min_interval`` seconds happens, and
concurrent requests share the one in flight, so a flood of tokens with random
``kid`` values cannot turn into a flood of JWKS requests. When the core is
unreachable, cached keys keep working (stale-if-error); with no keys at all
the request gets 503, not 401.

Keys are imported by the runtime's :class:`~worker.signatures.SignatureVerifier` once per
refresh, and the same verifier checks signatures with them (:meth:`JwksCache.verify`).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

from worker.http import ApiError
from worker.signatures import SignatureVerifier

log = logging.getLogger("telestack.jwks")

Fetch = Callable[[], Awaitable[tuple[list[dict[str, Any]], int | None]]]


async def rsa_keys(jwks: list[dict[str, Any]], signatures: SignatureVerifier) -> dict[str, Any]:
    """kid → imported public key for every RS256 signing key in a JWKS; anything else is ignored."""
    out: dict[str, Any] = {}
    for jwk in jwks:
        kid = jwk.get("kid")
        if (jwk.get("kty") != "RSA" or jwk.get("alg", "RS256") != "RS256"
                or jwk.get("use", "sig") != "sig" or not isinstance(kid, str) or not kid):
            continue
        key = await signatures.import_key(jwk)
        if key is None:
            log.warning("ignoring malformed JWK %s", kid)
        else:
            out[kid] = key
    return out


class JwksCache:
    def __init__(self, fetch: Fetch, signatures: SignatureVerifier, *, min_interval: float = 10.0,
                 default_ttl: float = 300.0, clock: Callable[[], float] = time.monotonic) -> None:
        self._fetch = fetch
        self._signatures = signatures
        self.min_interval = min_interval
        self.default_ttl = default_ttl
        self._clock = clock
        self._keys: dict[str, Any] = {}
        self._fetched_at: float | None = None
        self._ttl = default_ttl
        self._last_attempt: float | None = None
        self._inflight: asyncio.Future[None] | None = None
        #: number of fetches made (tests and metrics)
        self.fetches = 0

    def _fresh(self, now: float) -> bool:
        return self._fetched_at is not None and now - self._fetched_at < self._ttl

    def _may_fetch(self, now: float) -> bool:
        return self._last_attempt is None or now - self._last_attempt >= self.min_interval

    async def key(self, kid: str) -> Any | None:
        """The public key for ``kid``, or None when the core does not (or no longer) publish it."""
        now = self._clock()
        if kid in self._keys and self._fresh(now):
            return self._keys[kid]
        if self._inflight is not None:
            await asyncio.shield(self._inflight)
        elif self._may_fetch(now):
            await self._refresh(now)
        if not self._keys and self._fetched_at is None:
            raise ApiError(503, "auth_unavailable", "the auth service's signing keys are unavailable")
        return self._keys.get(kid)

    async def verify(self, key: Any, signing_input: bytes, signature: bytes) -> bool:
        """Whether ``key`` (as :meth:`key` returned it) signed ``signing_input`` with RS256."""
        return await self._signatures.verify_rs256(key, signing_input, signature)

    async def _refresh(self, now: float) -> None:
        self._last_attempt = now
        loop = asyncio.get_running_loop()
        self._inflight = loop.create_future()
        try:
            self.fetches += 1
            keys, max_age = await self._fetch()
            self._keys = await rsa_keys(keys, self._signatures)
            self._fetched_at = self._clock()
            self._ttl = float(min(max(max_age, 30), 3600)) if max_age is not None else self.default_ttl
        except ApiError as exc:
            log.warning("JWKS refresh failed (%s); keeping %d cached keys", exc.code, len(self._keys))
        finally:
            self._inflight.set_result(None)
            self._inflight = None
