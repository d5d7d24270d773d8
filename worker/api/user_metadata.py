"""Handlers of ``/v1/auth/me/metadata``: the signed-in user's own metadata (worker/user_metadata.py).

- ``GET /v1/auth/me/metadata`` (Bearer) → ``{"metadata": {...}}`` (``{}`` before the first write)
- ``PATCH /v1/auth/me/metadata`` (Bearer; ``application/merge-patch+json`` or ``application/json``, an
  RFC 7386 merge patch) → ``{"metadata": <after the patch>}``; 413 over the size limit, 422 when the
  configured schema refuses the result

Only a session's own user: the admin key has no metadata of its own (400), another user's is never
reachable from here.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from worker.http import JSON, ApiError, Response, read_json
from worker.operations import Operation, documented, obj
from worker.routing import Route
from worker.user_metadata import MAX_MAX_BYTES, apply

if TYPE_CHECKING:
    from worker.context import Context

_MERGE_PATCH = "application/merge-patch+json"


async def _user_id(ctx: Context) -> str:
    principal = await ctx.principal()
    if principal.user_id is None:
        raise ApiError(400, "no_user", "the admin key is not a user and has no metadata")
    return principal.user_id

_METADATA = obj({"metadata": {"type": "object"}}, ("metadata",))
_CORE = {503: ("auth_unavailable",), 502: ("auth_error",)}
GET_METADATA = Operation("the caller's metadata", "user", {200: _METADATA}, {400: ("no_user",), **_CORE})
PATCH_METADATA = Operation("merge-patch the caller's metadata (RFC 7386)", "user", {200: _METADATA},
                           {400: ("no_user",), 413: ("metadata_too_large",), 422: ("schema_violation",),
                            **_CORE},
                           body={"type": "object"}, content_types=(JSON, _MERGE_PATCH))


@documented(GET_METADATA)
async def get_metadata(ctx: Context) -> Response:
    user_id = await _user_id(ctx)
    return Response.json({"metadata": await ctx.gateway.supertokens.metadata(user_id)})


@documented(PATCH_METADATA)
async def patch_metadata(ctx: Context) -> Response:
    user_id = await _user_id(ctx)
    patch = read_json(ctx.request, max_bytes=MAX_MAX_BYTES, content_types=(JSON, _MERGE_PATCH))
    core = ctx.gateway.supertokens
    merged, update = apply(await core.metadata(user_id), patch, ctx.gateway.metadata_rules)
    if update:
        merged = await core.update_metadata(user_id, update)
    return Response.json({"metadata": merged})


ROUTES: list[Route] = [
    Route("GET", "/v1/auth/me/metadata", get_metadata),
    Route("PATCH", "/v1/auth/me/metadata", patch_metadata),
]
