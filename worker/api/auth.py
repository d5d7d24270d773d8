"""HTTP handlers for auth: thin — validate, call SuperTokens Core (CDI), shape the JSON.

- ``POST /v1/auth/signup`` ``{"email", "password"}`` → 201 tokens + user
- ``POST /v1/auth/signin`` ``{"email", "password"}`` → 200 tokens + user
- ``POST /v1/auth/refresh`` ``{"refresh_token"}`` → 200 new tokens (the old refresh token is spent:
  reusing it after the core's grace period revokes the whole session)
- ``POST /v1/auth/signout`` (Bearer access token) → 200; the session's refresh token dies at once,
  its access token at expiry (``AUTH_ACCESS_TOKEN_VALIDITY``, see ``worker/auth.py``)
- ``GET /v1/auth/me`` (Bearer) → the caller as the verified token says, no core call

Tokens: ``{"user": {"id", "email"}, "access_token", "access_token_expires_at", "refresh_token",
"refresh_token_expires_at", "token_type": "Bearer"}`` (expiries in unix ms, as the core gives them).
An unknown email and a wrong password give the same 401 after the same work (one core call
that runs one Argon2 verification either way), so accounts cannot be enumerated. Sign-in and sign-up
attempts are counted per account and per client address (:mod:`worker.rate_limits`): over a window,
``429`` with ``Retry-After``, the same for an unknown email as for a real one.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from worker.auth import bearer_token
from worker.http import ApiError, Response, read_object
from worker.operations import Operation, documented, obj
from worker.routing import Route
from worker.sessions import access_validity_ms, start_session
from worker.supertokens import CoreSession, CoreUser

if TYPE_CHECKING:
    from worker.context import Context

MAX_BODY_BYTES = 16 * 1024
MIN_PASSWORD = 8
#: longer passwords are refused before they reach the KDF (hashing cost grows with length)
MAX_PASSWORD = 256
MAX_EMAIL = 254
_LABEL = r"[a-z0-9](?:[a-z0-9-]*[a-z0-9])?"
_EMAIL = re.compile(rf"^[^\s@\"(),:;<>\[\]\\]+@{_LABEL}(?:\.{_LABEL})+$")
_TOKEN = re.compile(r"^[A-Za-z0-9._~+/=-]{1,4096}$")

# --- what each handler promises (worker/operations.py; served in /v1/openapi.json) ---------------
_STRING = {"type": "string"}
_MS = {"type": "integer", "description": "unix milliseconds"}
_CREDENTIALS = obj({"email": {"type": "string", "maxLength": MAX_EMAIL},
                    "password": {"type": "string", "minLength": 1, "maxLength": MAX_PASSWORD}},
                   ("email", "password"))
_USER = obj({"id": _STRING, "email": _STRING, "time_joined": _MS}, ("id", "email", "time_joined"))
_TOKEN_FIELDS = {"access_token": _STRING, "access_token_expires_at": _MS, "refresh_token": _STRING,
                 "refresh_token_expires_at": _MS, "token_type": {"const": "Bearer"}}
_TOKENS = obj({**_TOKEN_FIELDS, "user": _USER}, tuple(_TOKEN_FIELDS))
_CORE_ERRORS = {502: ("auth_upstream_error", "auth_misconfigured"),
                503: ("auth_unavailable", "auth_not_configured")}
SIGNUP = Operation("create an account and its first session", "none", {201: _TOKENS},
                   {400: ("invalid_email", "invalid_password", "weak_password"), 409: ("email_exists",),
                    429: ("rate_limited",), **_CORE_ERRORS}, body=_CREDENTIALS)
SIGNIN = Operation("start a session with email and password", "none", {200: _TOKENS},
                   {400: ("invalid_email", "invalid_password"), 401: ("invalid_credentials",),
                    429: ("rate_limited",), **_CORE_ERRORS}, body=_CREDENTIALS)
REFRESH = Operation("spend a refresh token for new tokens (rotation; reuse revokes the session)", "none",
                    {200: _TOKENS}, {401: ("session_expired", "token_reuse_detected"), **_CORE_ERRORS},
                    body=obj({"refresh_token": _STRING}, ("refresh_token",)))
SIGNOUT = Operation("end the caller's session", "user",
                    {200: obj({"signed_out": {"const": True}}, ("signed_out",))},
                    {400: ("no_session",), **_CORE_ERRORS})
ME = Operation("the caller, as its verified token says", "bearer", {200: {"oneOf": [
    obj({"user": obj({"id": _STRING, "email": {"type": ["string", "null"]},
                      "email_verified": {"type": "boolean"}}, ("id", "email", "email_verified")),
         "session_handle": _STRING, "is_admin": {"const": False},
         "roles": {"type": "array", "items": _STRING}, "expires_at": _MS},
        ("user", "session_handle", "is_admin", "roles", "expires_at")),
    obj({"user": {"type": "null"}, "is_admin": {"const": True}}, ("user", "is_admin")),
]}})


def _body(ctx: Context, allowed: set[str]) -> dict[str, Any]:
    return read_object(ctx.request, allowed, required=sorted(allowed), max_bytes=MAX_BODY_BYTES)


def _credentials(ctx: Context, *, signup: bool) -> tuple[str, str]:
    body = _body(ctx, {"email", "password"})
    email, password = body["email"], body["password"]
    if not isinstance(email, str):
        raise ApiError(400, "invalid_email", "email must be a string")
    email = email.strip().lower()  # the core normalises the same way
    if len(email) > MAX_EMAIL or not _EMAIL.match(email):
        raise ApiError(400, "invalid_email", "email is not a valid address")
    if not isinstance(password, str) or password == "":
        raise ApiError(400, "invalid_password", "password must be a non-empty string")
    if len(password) > MAX_PASSWORD:
        raise ApiError(400, "invalid_password", f"password must be at most {MAX_PASSWORD} characters")
    if signup and len(password) < MIN_PASSWORD:
        raise ApiError(400, "weak_password", f"password must be at least {MIN_PASSWORD} characters")
    return email, password


def tokens_json(session: CoreSession, user: dict[str, Any] | None = None) -> dict[str, Any]:
    """The tokens every route that starts or refreshes a session answers with (``user`` when known)."""
    out: dict[str, Any] = {}
    if user is not None:
        out["user"] = user
    out.update({
        "access_token": session.access_token,
        "access_token_expires_at": session.access_token_expiry,
        "refresh_token": session.refresh_token,
        "refresh_token_expires_at": session.refresh_token_expiry,
        "token_type": "Bearer",
    })
    return out


def _user(user: CoreUser) -> dict[str, Any]:
    return {"id": user.id, "email": user.email, "time_joined": user.time_joined}


async def _session_for(ctx: Context, user: CoreUser, *, new_user: bool = False) -> CoreSession:
    # the sign-in answer already says whether the core verified the email: no extra call
    return await start_session(ctx.gateway.supertokens, ctx.settings, user.id, user.email,
                               email_verified=user.email_verified, new_user=new_user)


async def count_attempt(ctx: Context, action: str, email: str) -> None:
    """One attempt in the database's rate-limit windows (429 with Retry-After once a window is full)."""
    await ctx.gateway.rate_limiter.hit(ctx.db, action, account=email, address=ctx.request.client_address)


@documented(SIGNUP)
async def signup(ctx: Context) -> Response:
    email, password = _credentials(ctx, signup=True)
    await count_attempt(ctx, "signup", email)
    user = await ctx.gateway.supertokens.sign_up(email, password)
    session = await _session_for(ctx, user, new_user=True)
    return Response.json(tokens_json(session, _user(user)), status=201)


@documented(SIGNIN)
async def signin(ctx: Context) -> Response:
    email, password = _credentials(ctx, signup=False)
    await count_attempt(ctx, "signin", email)
    user = await ctx.gateway.supertokens.sign_in(email, password)
    session = await _session_for(ctx, user)
    return Response.json(tokens_json(session, _user(user)))


@documented(REFRESH)
async def refresh(ctx: Context) -> Response:
    token = _body(ctx, {"refresh_token"})["refresh_token"]
    if not isinstance(token, str) or not _TOKEN.match(token):
        raise ApiError(401, "session_expired", "the refresh token is invalid or the session has ended")
    session = await ctx.gateway.supertokens.refresh_session(
        token, access_token_validity_ms=access_validity_ms(ctx.settings))
    return Response.json(tokens_json(session))


@documented(SIGNOUT)
async def signout(ctx: Context) -> Response:
    principal = await ctx.principal()
    if principal.session_handle is None:
        raise ApiError(400, "no_session", "the admin key has no session to sign out of")
    await ctx.gateway.supertokens.revoke_sessions([principal.session_handle])
    return Response.json({"signed_out": True})


@documented(ME)
async def me(ctx: Context) -> Response:
    principal = await ctx.principal()
    if principal.is_admin:
        return Response.json({"user": None, "is_admin": True})
    # verified again for the claims the Principal does not carry (cached key: microseconds)
    claims = await ctx.gateway.authenticator.verify(bearer_token(ctx.request) or "")
    return Response.json({"user": {"id": principal.user_id, "email": claims.get("email"),
                                   "email_verified": principal.email_verified},
                          "session_handle": principal.session_handle, "is_admin": False,
                          "roles": list(principal.roles),
                          "expires_at": int(claims["exp"]) * 1000})


ROUTES: list[Route] = [
    Route("POST", "/v1/auth/signup", signup),
    Route("POST", "/v1/auth/signin", signin),
    Route("POST", "/v1/auth/refresh", refresh),
    Route("POST", "/v1/auth/signout", signout),
    Route("GET", "/v1/auth/me", me),
]
