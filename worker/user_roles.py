"""User roles on the verified principal: the ``st-role`` token claim, and how a change reaches sessions.

Roles live in the auth core (the CDI user-roles recipe). A session's access token carries them as the
claim SuperTokens' own SDKs write, ``"st-role": {"v": [role, ...], "t": <unix ms fetched>}``, so the
gateway reads them from the verified token with no core call per request; access rules see them as
``Principal.roles``.

When a user's roles change (the admin API or ``scripts.ops roles``), :func:`push_to_sessions` writes the
new claim into the stored payload of each of the user's live sessions: every access token minted from
then on, at the next refresh, carries the new roles. A token already issued keeps the roles it was
signed with until it expires (at most ``AUTH_ACCESS_TOKEN_VALIDITY``, 15 min by default): verification
is stateless. To take a role away at once, also revoke the user's sessions.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from worker.http import ApiError

if TYPE_CHECKING:
    from worker.supertokens import SuperTokens

ROLE_CLAIM = "st-role"
#: role names the gateway accepts: what fits a URL path segment and an access rule unescaped
_ROLE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$")


def check_role(name: str) -> str:
    if not _ROLE.match(name):
        raise ApiError(400, "invalid_role", "a role is 1-64 of A-Z a-z 0-9 _ . : - and starts alphanumeric")
    return name


def role_claim(roles: list[str], now_ms: int) -> dict[str, Any]:
    return {"v": list(roles), "t": now_ms}


def roles_from_claims(claims: Mapping[str, Any]) -> tuple[str, ...]:
    """The roles a verified token lists; () when it lists none or the claim is malformed."""
    claim = claims.get(ROLE_CLAIM)
    values = claim.get("v") if isinstance(claim, dict) else None
    if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
        return ()
    return tuple(values)


async def push_to_sessions(core: SuperTokens, user_id: str, now_ms: int) -> int:
    """Write the user's current roles into each live session's payload; returns the sessions updated."""
    roles = await core.user_roles(user_id)
    updated = 0
    for handle in await core.session_handles(user_id):
        payload = await core.session_payload(handle)
        if payload is None:  # ended meanwhile
            continue
        payload[ROLE_CLAIM] = role_claim(roles, now_ms)
        updated += await core.set_session_payload(handle, payload)
    return updated
