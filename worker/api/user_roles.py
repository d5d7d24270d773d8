"""Handlers of the roles admin API (admin key only): roles in the auth core, assigned to users.

- ``GET /v1/auth/roles`` → ``{"roles": [...]}``
- ``PUT /v1/auth/roles/{role}`` → 201 ``{"role", "created": true}`` or 200 when it existed
- ``DELETE /v1/auth/roles/{role}`` → ``{"role", "deleted": bool}`` (its assignments go with it)
- ``GET /v1/auth/users/{user_id}/roles`` → ``{"user_id", "roles": [...]}``
- ``PUT /v1/auth/users/{user_id}/roles/{role}`` → ``{"user_id", "roles", "sessions_updated"}``; 404 for a
  role never created
- ``DELETE /v1/auth/users/{user_id}/roles/{role}`` → the same shape

An assignment change is written into the user's live sessions (worker/user_roles.py): access tokens
minted at their next refresh carry it; tokens already issued keep their roles until they expire.
A session token, any user's, is refused with 403; no token with 401.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from worker.http import ApiError, Response
from worker.operations import Operation, documented, obj
from worker.routing import Route
from worker.user_roles import check_role, push_to_sessions

if TYPE_CHECKING:
    from worker.context import Context

MAX_USER_ID = 128


async def _admin(ctx: Context) -> None:
    if not (await ctx.principal()).is_admin:
        raise ApiError(403, "forbidden", "roles are managed with the admin key")


def _user_id(ctx: Context) -> str:
    user_id = ctx.params["user_id"]
    if not 0 < len(user_id) <= MAX_USER_ID:
        raise ApiError(400, "invalid_user_id", f"a user id is 1-{MAX_USER_ID} characters")
    return user_id

_STR = {"type": "string"}
_OPEN_ROLE = {"type": "object", "properties": {"role": {"type": "string"}}}
_ROLES = {"type": "array", "items": _STR}
_CORE = {503: ("auth_unavailable",), 502: ("auth_error",)}
_ADMIN = {403: ("forbidden",), **_CORE}
_USER_ROLES = obj({"user_id": _STR, "roles": _ROLES}, ("user_id", "roles"), closed=False)
LIST_ROLES = Operation("every role", "bearer", {200: obj({"roles": _ROLES}, ("roles",))}, _ADMIN)
PUT_ROLE = Operation("create a role (idempotent)", "bearer",
                     {200: _OPEN_ROLE, 201: _OPEN_ROLE}, {400: ("invalid_role",), **_ADMIN})
DELETE_ROLE = Operation("delete a role", "bearer", {200: _OPEN_ROLE}, {400: ("invalid_role",), **_ADMIN})
USER_ROLES = Operation("a user's roles", "bearer", {200: _USER_ROLES}, {400: ("invalid_user_id",), **_ADMIN})
ASSIGN_ROLE = Operation("give a user a role (reaches their sessions at the next refresh)", "bearer",
                        {200: _USER_ROLES},
                        {400: ("invalid_role", "invalid_user_id"), 404: ("unknown_role",), **_ADMIN})
REMOVE_ROLE = Operation("take a role from a user", "bearer", {200: _USER_ROLES},
                        {400: ("invalid_role", "invalid_user_id"), 404: ("unknown_role",), **_ADMIN})


@documented(LIST_ROLES)
async def list_roles(ctx: Context) -> Response:
    await _admin(ctx)
    return Response.json({"roles": await ctx.gateway.supertokens.roles()})


@documented(PUT_ROLE)
async def put_role(ctx: Context) -> Response:
    await _admin(ctx)
    role = check_role(ctx.params["role"])
    created = await ctx.gateway.supertokens.create_role(role)
    return Response.json({"role": role, "created": created}, status=201 if created else 200)


@documented(DELETE_ROLE)
async def delete_role(ctx: Context) -> Response:
    await _admin(ctx)
    role = check_role(ctx.params["role"])
    return Response.json({"role": role, "deleted": await ctx.gateway.supertokens.delete_role(role)})


@documented(USER_ROLES)
async def user_roles(ctx: Context) -> Response:
    await _admin(ctx)
    user_id = _user_id(ctx)
    return Response.json({"user_id": user_id, "roles": await ctx.gateway.supertokens.user_roles(user_id)})


async def _changed(ctx: Context, user_id: str) -> Response:
    core = ctx.gateway.supertokens
    updated = await push_to_sessions(core, user_id, int(time.time() * 1000))
    return Response.json({"user_id": user_id, "roles": await core.user_roles(user_id),
                          "sessions_updated": updated})


@documented(ASSIGN_ROLE)
async def assign_role(ctx: Context) -> Response:
    await _admin(ctx)
    user_id, role = _user_id(ctx), check_role(ctx.params["role"])
    await ctx.gateway.supertokens.add_user_role(user_id, role)
    return await _changed(ctx, user_id)


@documented(REMOVE_ROLE)
async def remove_role(ctx: Context) -> Response:
    await _admin(ctx)
    user_id, role = _user_id(ctx), check_role(ctx.params["role"])
    await ctx.gateway.supertokens.remove_user_role(user_id, role)
    return await _changed(ctx, user_id)


ROUTES: list[Route] = [
    Route("GET", "/v1/auth/roles", list_roles),
    Route("PUT", "/v1/auth/roles/{role}", put_role),
    Route("DELETE", "/v1/auth/roles/{role}", delete_role),
    Route("GET", "/v1/auth/users/{user_id}/roles", user_roles),
    Route("PUT", "/v1/auth/users/{user_id}/roles/{role}", assign_role),
    Route("DELETE", "/v1/auth/users/{user_id}/roles/{role}", remove_role),
]
