"""Identity: turn a request into a Principal (the admin key, or a SuperTokens access token).

Access tokens are verified locally on every request, before anything touches
the database: RS256 only (``none`` and HMAC are refused before a key is even
looked up, so a public key can never be used as an HMAC secret), signature
against the core's JWKS (:mod:`worker.jwks`), ``exp``/``iat``/``nbf`` with
:data:`LEEWAY_S` of clock skew, and the token's origin (below). ``sub`` becomes
:attr:`Principal.user_id`, the owner id the document store scopes by, and the ``st-role`` claim
:attr:`Principal.roles` (:mod:`worker.user_roles`). These
checks are this module's, the same on both runtimes; only the signature check
is the runtime's (:mod:`worker.signatures`: WebCrypto on Workers, PyJWT on
CPython).

Origin ("issuer"). SuperTokens session tokens carry **no** ``iss``; only the
core's JWT recipe adds one. So by default a token is accepted only if a key
from the configured core's JWKS signed it, it has the session-token shape
(``sessionHandle``, ``refreshTokenHash1``, ``rsub``, ``tId``), its tenant is
one we serve, and it has **no** ``iss`` and no ``aud`` (a JWT minted by the JWT
recipe with the same keys is not a session). If ``AUTH_ISSUER`` is set,
``iss`` must equal it instead (for a core that stamps one).

Revocation window. Verification is stateless, so a revoked session's access
token keeps working until it expires; its refresh fails at once. The gateway
asks the core for ``AUTH_ACCESS_TOKEN_VALIDITY`` seconds (default 900 = 15 min,
sent as CDI 5.6 ``accessTokenValidity``; the core can only shorten its own
default of 1 h). That is the longest a signed-out or stolen session survives.

Verified-token cache. A client reuses one access token for many requests, and
the RSA signature check plus the token's decoding is most of a request's CPU, so
:class:`VerifiedTokens` remembers, per isolate, tokens that passed the full
check above: keyed by SHA-256 of the *whole* token string (so a forged,
tampered or different token can never hit; failures are never cached), bounded
(LRU eviction), and re-checked on every hit: the entry dies at ``exp`` +
:data:`LEEWAY_S` exactly like the full check, and the signing key must still be
the one the JWKS cache holds for its ``kid`` (a JWKS refresh or key removal
sends the token through the full check again). Revocation is unchanged: the
cache never extends a token's life past its own ``exp``.

The admin key is a separate credential, compared in constant time; a
previous key (``ADMIN_KEY_PREVIOUS``) is honoured until ``ADMIN_KEY_PREVIOUS_UNTIL``
for rotation without downtime.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from worker.http import ApiError, Request
from worker.jws import MalformedToken, parse
from worker.principal import Principal
from worker.settings import Settings
from worker.user_roles import roles_from_claims

if TYPE_CHECKING:
    from worker.jwks import JwksCache

#: clock skew tolerated on exp/iat (seconds)
LEEWAY_S = 30
#: tenants whose sessions this gateway serves
TENANTS = frozenset({"public"})
_SESSION_CLAIMS = ("sub", "sessionHandle", "refreshTokenHash1", "rsub", "tId")
#: verified tokens remembered per isolate (each entry ~300 bytes)
TOKEN_CACHE_SIZE = 4096


def unauthenticated(message: str, code: str = "unauthenticated") -> ApiError:
    return ApiError(401, code, message, headers={"www-authenticate": 'Bearer error="invalid_token"'})


class VerifiedTokens:
    """Bounded LRU of fully verified tokens: sha256(token) -> (principal, dies_at, kid, key)."""

    def __init__(self, max_entries: int = TOKEN_CACHE_SIZE) -> None:
        self.max_entries = max_entries
        self._entries: OrderedDict[bytes, tuple[Principal, float, str, Any]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._entries)

    @staticmethod
    def _key(token: str) -> bytes:
        return hashlib.sha256(token.encode()).digest()

    def get(self, token: str, now: float) -> tuple[Principal, str, Any] | None:
        """This exact token's entry while ``now`` < exp + leeway; an expired entry is dropped."""
        k = self._key(token)
        entry = self._entries.get(k)
        if entry is None:
            return None
        principal, dies_at, kid, key = entry
        if now >= dies_at:
            del self._entries[k]
            return None
        self._entries.move_to_end(k)
        return principal, kid, key

    def put(self, token: str, principal: Principal, exp: float, kid: str, key: Any) -> None:
        k = self._key(token)
        self._entries[k] = (principal, float(exp) + LEEWAY_S, kid, key)
        self._entries.move_to_end(k)
        while len(self._entries) > self.max_entries:
            self._entries.popitem(last=False)

    def discard(self, token: str) -> None:
        self._entries.pop(self._key(token), None)


class SessionAuthenticator:
    def __init__(self, settings: Settings, jwks: JwksCache | None,
                 clock: Callable[[], float] = time.time,
                 token_cache_size: int = TOKEN_CACHE_SIZE) -> None:
        self._settings = settings
        self._jwks = jwks
        self._clock = clock
        #: None (size 0) disables the cache: benchmarks measure the uncached path with it
        self.tokens = VerifiedTokens(token_cache_size) if token_cache_size > 0 else None

    async def authenticate(self, request: Request) -> Principal:
        """The caller, or ApiError(401) before anything touches the database."""
        token = bearer_token(request)
        if token is None:
            raise unauthenticated("a valid access token is required")
        if self._is_admin_key(token):
            return Principal(user_id=None, is_admin=True)
        cache = self.tokens
        if cache is not None:
            hit = cache.get(token, self._clock())
            if hit is not None:
                principal, kid, key = hit
                # the signing key must still be the one published now (a refresh/rotation re-verifies)
                if self._jwks is not None and await self._jwks.key(kid) is key:
                    return principal
                cache.discard(token)
        claims, kid, key = await self._verify(token)
        email = claims.get("email")
        principal = Principal(user_id=claims["sub"], session_handle=claims["sessionHandle"],
                              email=email if isinstance(email, str) else None,
                              email_verified=claims.get("email_verified") is True,
                              roles=roles_from_claims(claims))
        if cache is not None:
            cache.put(token, principal, claims["exp"], kid, key)
        return principal

    def _is_admin_key(self, token: str) -> bool:
        s = self._settings
        given = token.encode()
        # both comparisons always run, so timing says nothing about which key (if any) matched
        current = hmac.compare_digest(given, s.admin_key.encode()) and bool(s.admin_key)
        previous = hmac.compare_digest(given, s.admin_key_previous.encode()) and bool(s.admin_key_previous)
        return current or (previous and self._clock() < s.admin_key_previous_until)

    async def verify(self, token: str) -> dict[str, Any]:
        """The claims of a valid session access token; ApiError(401) otherwise (always the full check)."""
        return (await self._verify(token))[0]

    async def _verify(self, token: str) -> tuple[dict[str, Any], str, Any]:
        """Full verification: the claims plus the ``kid`` and key that signed them."""
        try:
            jws = parse(token)
        except MalformedToken:
            raise unauthenticated("the access token is malformed", "invalid_token") from None
        if jws.header.get("alg") != "RS256":
            raise unauthenticated("the access token's algorithm is not accepted", "invalid_token")
        kid = jws.header.get("kid")
        if not isinstance(kid, str) or not kid:
            raise unauthenticated("the access token names no signing key", "invalid_token")
        if self._jwks is None:
            raise ApiError(503, "auth_not_configured", "AUTH_URL is not set on the gateway")
        key = await self._jwks.key(kid)
        if key is None:
            raise unauthenticated("the access token's signing key is unknown", "invalid_token")
        if not await self._jwks.verify(key, jws.signing_input, jws.signature):
            raise unauthenticated("the access token is invalid", "invalid_token")
        claims = jws.claims
        self._check_times(claims)
        self._check_origin(claims)
        return claims, kid, key

    def _check_times(self, claims: dict[str, Any]) -> None:
        """``exp`` and ``iat`` required, ``nbf`` optional: NumericDates, each allowed LEEWAY_S of skew."""
        now = self._clock()
        times: dict[str, float] = {}
        for name in ("exp", "iat", "nbf"):
            value = claims.get(name)
            if value is None and name == "nbf":
                continue
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise unauthenticated(f"the access token's {name} is not a number", "invalid_token")
            times[name] = value
        if times["exp"] <= now - LEEWAY_S:
            raise unauthenticated("the access token has expired; refresh it", "token_expired")
        if times["iat"] > now + LEEWAY_S or times.get("nbf", now) > now + LEEWAY_S:
            raise unauthenticated("the access token is not valid yet", "invalid_token")

    def _check_origin(self, claims: dict[str, Any]) -> None:
        issuer = self._settings.auth_issuer
        if issuer and claims.get("iss") != issuer:
            raise unauthenticated("the access token was not issued by this deployment's auth service",
                                  "invalid_token")
        if not issuer and "iss" in claims:
            raise unauthenticated("the token is not a session access token", "invalid_token")
        if "aud" in claims:  # a session token names no audience; a token meant for someone else does
            raise unauthenticated("the token is not a session access token", "invalid_token")
        if not all(isinstance(claims.get(c), str) and claims[c] for c in _SESSION_CLAIMS):
            raise unauthenticated("the token is not a session access token", "invalid_token")
        if claims["tId"] not in TENANTS:
            raise unauthenticated("the access token belongs to another tenant", "invalid_token")


def bearer_token(request: Request) -> str | None:
    value = request.header("authorization") or ""
    scheme, _, token = value.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()
