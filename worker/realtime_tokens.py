"""The HS256 tokens Centrifugo accepts: one per connection, one per channel that needs a token.

Centrifugo verifies them with the shared ``CENTRIFUGO_TOKEN_SECRET``
(``client.token.hmac_secret_key`` on its side); ``sub`` is the caller's
realtime identity (:func:`worker.channels.subject`). Signed by :func:`worker.jws.encode_hs256`
(the standard library's HMAC), so no JWT package travels in the Worker bundle.
"""

from __future__ import annotations

import time

from worker.jws import encode_hs256

#: connection and subscription tokens live this long; clients fetch a new one from /v1/realtime/token
TOKEN_TTL_SECONDS = 600


def connection_token(secret: str, sub: str, *, ttl: int = TOKEN_TTL_SECONDS, now: float | None = None) -> str:
    """HS256 connection JWT: ``sub`` is the user id; ``exp`` makes the client refresh."""
    issued = int(now if now is not None else time.time())
    return encode_hs256({"sub": sub, "iat": issued, "exp": issued + ttl}, _secret(secret))


def subscription_token(secret: str, sub: str, channel: str, *, ttl: int = TOKEN_TTL_SECONDS,
                       now: float | None = None) -> str:
    """HS256 subscription JWT for one channel; Centrifugo checks ``sub`` equals the connection's user."""
    issued = int(now if now is not None else time.time())
    claims = {"sub": sub, "channel": channel, "iat": issued, "exp": issued + ttl}
    return encode_hs256(claims, _secret(secret))


def _secret(secret: str) -> str:
    # an empty HMAC key would sign tokens anyone can forge
    if not secret:
        raise ValueError("CENTRIFUGO_TOKEN_SECRET is not configured")
    return secret
