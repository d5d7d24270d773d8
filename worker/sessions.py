"""Starting a user's session: the claims its access token carries, signed by the auth core.

Every way of signing in (email and password, an identity provider) opens its session here, so every
session says the same about its user, read from the verified token with no core call per request:

- ``email`` and ``email_verified`` (:func:`worker.account.session_claims`): whether the core's
  email-verification recipe holds this address as verified for this user; a provider that vouches
  for the address counts, since the core records that at third-party sign-in;
- ``st-role``, the user's roles as SuperTokens' SDKs write them (:mod:`worker.user_roles`).

Later changes reach live sessions through their stored payload (``account.refresh_claims``,
``user_roles.push_to_sessions``), signed into each one's next access token.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from worker.account import session_claims
from worker.user_roles import ROLE_CLAIM, role_claim

if TYPE_CHECKING:
    from worker.settings import Settings
    from worker.supertokens import CoreSession, SuperTokens


def access_validity_ms(settings: Settings) -> int:
    """How long an access token lives (``AUTH_ACCESS_TOKEN_VALIDITY`` seconds), in the core's unit."""
    return max(1, settings.auth_access_token_validity) * 1000


def claims(email: str, email_verified: bool, roles: list[str], now_ms: int) -> dict[str, Any]:
    """The payload a new session's access token carries about its user."""
    return {**session_claims(email, email_verified), ROLE_CLAIM: role_claim(roles, now_ms)}


async def start_session(core: SuperTokens, settings: Settings, user_id: str, email: str, *,
                        email_verified: bool, new_user: bool) -> CoreSession:
    """A new session for the user, its token carrying :func:`claims`.

    A user the core created a moment ago has no roles yet, so ``new_user`` skips asking for them.
    """
    roles = [] if new_user else await core.user_roles(user_id)
    return await core.create_session(user_id, jwt_data=claims(email, email_verified, roles,
                                                              int(time.time() * 1000)),
                                     access_token_validity_ms=access_validity_ms(settings))
