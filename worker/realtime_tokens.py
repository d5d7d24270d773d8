"""The HS256 tokens Centrifugo accepts: one per connection, one per channel that needs a token.

Centrifugo verifies them with the shared ``CENTRIFUGO_TOKEN_SECRET``
(``client.token.hmac_secret_key`` on its side); ``sub`` is the caller's
realtime identity (:func:`worker.channels.subject`).
"""

from __future__ import annotations

import time

#: connection and subscription tokens live this long; clients fetch a new one from /v1/realtime/token
TOKEN_TTL_SECONDS = 600


def connection_token(secret: str, sub: str, *, ttl: int = TOKEN_TTL_SECONDS, now: float | None = None) -> str:
    """HS256 connection JWT: ``sub`` is the user id; ``exp`` makes the client refresh."""
    import jwt  # lazily: PyJWT is a cold-start cost under Pyodide, and only this route signs

    issued = int(now if now is not None else time.time())
    return jwt.encode({"sub": sub, "iat": issued, "exp": issued + ttl}, _secret(secret), algorithm="HS256")


def subscription_token(secret: str, sub: str, channel: str, *, ttl: int = TOKEN_TTL_SECONDS,
                       now: float | None = None) -> str:
    """HS256 subscription JWT for one channel; Centrifugo checks ``sub`` equals the connection's user."""
    import jwt

    issued = int(now if now is not None else time.time())
    claims = {"sub": sub, "channel": channel, "iat": issued, "exp": issued + ttl}
    return jwt.encode(claims, _secret(secret), algorithm="HS256")


def _secret(secret: str) -> str:
    # an empty HMAC key would sign tokens anyone can forge
    if not secret:
        raise ValueError("CENTRIFUGO_TOKEN_SECRET is not configured")
    return secret
