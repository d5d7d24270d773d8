"""Identity: turn a request into a Principal (admin key, SuperTokens access token, dev token).

Placeholder seam until the auth issue lands: only the admin key is accepted.
"""

from __future__ import annotations

import hmac
from typing import TYPE_CHECKING

from worker.http import ApiError, Request
from worker.principal import Authenticator, Principal

if TYPE_CHECKING:
    from worker.app import Gateway


class AdminKeyOnly:
    def __init__(self, admin_key: str) -> None:
        self._admin_key = admin_key

    async def authenticate(self, request: Request) -> Principal:
        token = bearer_token(request)
        if token and hmac.compare_digest(token.encode(), self._admin_key.encode()):
            return Principal(user_id=None, is_admin=True)
        raise ApiError(401, "unauthenticated", "a valid access token is required")


def bearer_token(request: Request) -> str | None:
    value = request.header("authorization") or ""
    scheme, _, token = value.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


def authenticator_for(gateway: Gateway) -> Authenticator:
    auth = gateway.cache.get("authenticator")
    if auth is None:
        auth = gateway.cache["authenticator"] = AdminKeyOnly(gateway.settings.admin_key)
    return auth
