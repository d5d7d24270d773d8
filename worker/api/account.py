"""HTTP handlers for account management: email verification, password reset and change, email change,
sign-out everywhere, account deletion. Thin: validate, call the core (CDI) and the mailer, shape the JSON.

- ``POST /v1/auth/email/verification`` (Bearer) → 202; mails a verification link to the caller's address
- ``POST /v1/auth/email/verify`` ``{"token"}`` → 200; spends the link's token (no Bearer: the link may be
  opened on another device); a pending email change takes effect here
- ``POST /v1/auth/email/change`` (Bearer) ``{"new_email", "password"}`` → 202; mails a link to the new
  address; the account keeps its old address until that link is used
- ``POST /v1/auth/password/forgot`` ``{"email"}`` → 202, the same answer whether the account exists or not
- ``POST /v1/auth/password/reset`` ``{"token", "new_password"}`` → 200; every session of the user ends
- ``POST /v1/auth/password/change`` (Bearer) ``{"current_password", "new_password"}`` → 200; every other
  session of the user ends
- ``POST /v1/auth/signout/all`` (Bearer) → 200; every session of the user ends
- ``POST /v1/auth/account/delete`` (Bearer) ``{"password"}`` → 200; see worker/account.py

Links in mail lead to ``AUTH_ACTION_URL`` (the app's page) with ``?action=...&token=...``; the page
posts the token to the endpoint above. Tokens are single-use and expire (the core's lifetimes: 1 day
for verification, 1 hour for reset); a forged, spent or expired one gets the same 400 ``invalid_token``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from worker import account, mail
from worker.api.auth import _EMAIL as EMAIL_PATTERN
from worker.api.auth import MAX_BODY_BYTES, MAX_EMAIL, MAX_PASSWORD, MIN_PASSWORD, count_attempt
from worker.http import ApiError, Response, read_object
from worker.operations import Operation, documented, obj
from worker.principal import Principal
from worker.routing import Route
from worker.supertokens import invalid_credentials

if TYPE_CHECKING:
    from worker.context import Context

_MAX_TOKEN = 4096


def _body(ctx: Context, fields: set[str]) -> dict[str, Any]:
    return read_object(ctx.request, fields, required=sorted(fields), max_bytes=MAX_BODY_BYTES)


def _email(value: Any, field: str = "email") -> str:
    if not isinstance(value, str):
        raise ApiError(400, "invalid_email", f"{field} must be a string")
    value = value.strip().lower()
    if len(value) > MAX_EMAIL or not EMAIL_PATTERN.match(value):
        raise ApiError(400, "invalid_email", f"{field} is not a valid address")
    return value


def _new_password(value: Any, field: str = "new_password") -> str:
    if not isinstance(value, str) or not MIN_PASSWORD <= len(value) <= MAX_PASSWORD:
        raise ApiError(400, "weak_password", f"{field} must be {MIN_PASSWORD}-{MAX_PASSWORD} characters")
    return value


def _password(value: Any) -> str:
    """A current password as given; anything that cannot be one is simply wrong (the same 401)."""
    if not isinstance(value, str) or not value or len(value) > MAX_PASSWORD:
        raise invalid_credentials()
    return value


def _token(value: Any) -> str:
    if not isinstance(value, str) or not value or len(value) > _MAX_TOKEN:
        raise ApiError(400, "invalid_token", "this link is invalid, used or expired; ask for a new one")
    return value


async def _user(ctx: Context) -> tuple[Principal, str, str]:
    """The signed-in caller (not the admin key): principal, user id, the token's email."""
    principal = await ctx.principal()
    if principal.user_id is None or principal.email is None:
        raise ApiError(403, "forbidden", "this needs a user's session, not the admin key")
    return principal, principal.user_id, principal.email


async def _check_password(ctx: Context, user_id: str, email: str, password: str) -> None:
    """401 unless ``password`` is the caller's current one (one core sign-in: Argon2 either way)."""
    user = await ctx.gateway.supertokens.sign_in(email, password)
    if user.id != user_id:
        raise invalid_credentials()


def _mailer(ctx: Context) -> mail.Mailer:
    mailer = ctx.gateway.mailer
    if mailer is None or not ctx.settings.auth_action_url:
        raise mail.not_configured()
    return mailer


async def _send(mailer: mail.Mailer, message: mail.Message) -> None:
    try:
        await mailer.send(message)
    except mail.MailError:
        raise ApiError(503, "mail_unavailable",
                       "the mail server did not accept the message; try again") from None

_STR = {"type": "string"}
_OPEN = {"type": "object"}
_CORE = {503: ("auth_unavailable",), 502: ("auth_error",)}
_MAIL = {503: ("auth_unavailable", "mail_unavailable", "mail_not_configured"), 502: ("auth_error",)}
_SENT = obj({"sent": {"const": True}}, ("sent",))
_REVOKED = obj({"sessions_revoked": {"type": "integer"}}, ("sessions_revoked",), closed=False)
REQUEST_VERIFICATION = Operation("mail the caller a link verifying their address", "user", {202: _SENT},
                                 {403: ("forbidden",), 409: ("already_verified",), 429: ("rate_limited",),
                                  **_MAIL})
VERIFY = Operation("spend a verification link's token", "none", {200: _OPEN},
                   {400: ("invalid_token",), 409: ("email_exists",), **_CORE},
                   body=obj({"token": _STR}, ("token",)))
CHANGE_EMAIL = Operation("change the caller's address (effective once the new one is verified)", "user",
                         {200: _OPEN, 202: _SENT},
                         {400: ("invalid_email",), 401: ("invalid_credentials",), 403: ("forbidden",),
                          409: ("email_exists",), **_MAIL},
                         body=obj({"new_email": _STR, "password": _STR}, ("new_email", "password")))
FORGOT_PASSWORD = Operation("mail a reset link (the same answer for unknown addresses)", "none", {202: _SENT},
                            {400: ("invalid_email",), 429: ("rate_limited",), **_MAIL},
                            body=obj({"email": _STR}, ("email",)))
RESET_PASSWORD = Operation("spend a reset link's token for a new password; every session ends", "none",
                           {200: _REVOKED}, {400: ("invalid_token", "weak_password"), **_CORE},
                           body=obj({"token": _STR, "new_password": _STR}, ("token", "new_password")))
CHANGE_PASSWORD = Operation("change the password (the current one required); other sessions end", "user",
                            {200: _REVOKED},
                            {400: ("weak_password",), 401: ("invalid_credentials",), 403: ("forbidden",),
                             **_CORE},
                            body=obj({"current_password": _STR, "new_password": _STR},
                                     ("current_password", "new_password")))
SIGNOUT_ALL = Operation("end every session of the caller", "user", {200: _REVOKED},
                        {403: ("forbidden",), **_CORE})
DELETE_ACCOUNT = Operation("delete the caller's account, documents and files (resumable)", "user",
                           {200: _OPEN},
                           {401: ("invalid_credentials",), 403: ("forbidden",),
                            503: ("auth_unavailable", "storage_unavailable"),
                            502: ("auth_error", "storage_error")},
                           body=obj({"password": _STR}, ("password",)))


@documented(REQUEST_VERIFICATION)
async def request_verification(ctx: Context) -> Response:
    _, user_id, email = await _user(ctx)
    mailer = _mailer(ctx)
    await count_attempt(ctx, "email_verification", email)
    token = await ctx.gateway.supertokens.email_verification_token(user_id, email)
    if token is None:
        raise ApiError(409, "already_verified", "this email address is verified already")
    link = mail.action_link(ctx.settings.auth_action_url, mail.ACTION_VERIFY_EMAIL, token)
    await _send(mailer, mail.verification_message(email, link, change=False))
    return Response.json({"sent": True}, status=202)


@documented(VERIFY)
async def verify(ctx: Context) -> Response:
    token = _token(_body(ctx, {"token"})["token"])
    st = ctx.gateway.supertokens
    user_id, email = await st.verify_email(token)
    owner = await st.user_id_by_email(email)
    if owner is None:  # a link sent by an email change: the verified address becomes the account's
        await st.update_user(user_id, email=email)
    elif owner != user_id:
        raise ApiError(409, "email_exists", "another account uses this address now")
    await account.refresh_claims(st, user_id, account.session_claims(email, True))
    # sessions carry the claim from their next refresh; the caller's current token does not
    return Response.json({"user": {"id": user_id, "email": email, "email_verified": True},
                          "refresh_to_update_session": True})


@documented(CHANGE_EMAIL)
async def change_email(ctx: Context) -> Response:
    body = _body(ctx, {"new_email", "password"})
    _, user_id, email = await _user(ctx)
    new_email = _email(body["new_email"], "new_email")
    mailer = _mailer(ctx)
    await _check_password(ctx, user_id, email, _password(body["password"]))
    st = ctx.gateway.supertokens
    if new_email == email or await st.user_id_by_email(new_email) is not None:
        raise ApiError(409, "email_exists", "an account with this email already exists")
    # a pending link for the current address must not be able to switch the account back to it later
    await st.revoke_email_verification_tokens(user_id, email)
    token = await st.email_verification_token(user_id, new_email)
    if token is None:  # this account verified that address before: nothing left to prove
        await st.update_user(user_id, email=new_email)
        await account.refresh_claims(st, user_id, account.session_claims(new_email, True))
        return Response.json({"changed": True, "email": new_email})
    link = mail.action_link(ctx.settings.auth_action_url, mail.ACTION_VERIFY_EMAIL, token)
    await _send(mailer, mail.verification_message(new_email, link, change=True))
    return Response.json({"sent": True}, status=202)


@documented(FORGOT_PASSWORD)
async def forgot_password(ctx: Context) -> Response:
    email = _email(_body(ctx, {"email"})["email"])
    mailer = _mailer(ctx)
    await count_attempt(ctx, "password_reset", email)  # before the lookup: the same for unknown addresses
    st = ctx.gateway.supertokens
    user_id = await st.user_id_by_email(email)
    token = await st.password_reset_token(user_id, email) if user_id is not None else None
    if token is not None:
        link = mail.action_link(ctx.settings.auth_action_url, mail.ACTION_RESET, token)
        await _send(mailer, mail.reset_message(email, link))
    # the same answer for an unknown address: whether an account exists is not the caller's to learn
    return Response.json({"sent": True}, status=202)


@documented(RESET_PASSWORD)
async def reset_password(ctx: Context) -> Response:
    body = _body(ctx, {"token", "new_password"})
    password = _new_password(body["new_password"])  # checked first: a refused password spends no token
    st = ctx.gateway.supertokens
    user_id = await st.consume_password_reset_token(_token(body["token"]))
    await st.update_user(user_id, password=password)
    revoked = await st.revoke_user_sessions(user_id)
    return Response.json({"reset": True, "sessions_revoked": len(revoked)})


@documented(CHANGE_PASSWORD)
async def change_password(ctx: Context) -> Response:
    body = _body(ctx, {"current_password", "new_password"})
    principal, user_id, email = await _user(ctx)
    password = _new_password(body["new_password"])
    await _check_password(ctx, user_id, email, _password(body["current_password"]))
    st = ctx.gateway.supertokens
    await st.update_user(user_id, password=password)
    others = [h for h in await st.session_handles(user_id) if h != principal.session_handle]
    revoked = await st.revoke_sessions(others) if others else []
    return Response.json({"changed": True, "sessions_revoked": len(revoked)})


@documented(SIGNOUT_ALL)
async def signout_all(ctx: Context) -> Response:
    _, user_id, _ = await _user(ctx)
    revoked = await ctx.gateway.supertokens.revoke_user_sessions(user_id)
    return Response.json({"signed_out": True, "sessions_revoked": len(revoked)})


@documented(DELETE_ACCOUNT)
async def delete_account(ctx: Context) -> Response:
    body = _body(ctx, {"password"})
    _, user_id, email = await _user(ctx)
    await _check_password(ctx, user_id, email, _password(body["password"]))
    report = await account.delete_account(ctx.gateway, ctx.db, user_id, by="user")
    ctx.publish_after_response = True  # the documents' `deleted` events
    return Response.json({"deleted": report.finished, "documents_deleted": report.documents_deleted,
                          "objects_deleted": report.objects_deleted})


ROUTES: list[Route] = [
    Route("POST", "/v1/auth/email/verification", request_verification),
    Route("POST", "/v1/auth/email/verify", verify),
    Route("POST", "/v1/auth/email/change", change_email),
    Route("POST", "/v1/auth/password/forgot", forgot_password),
    Route("POST", "/v1/auth/password/reset", reset_password),
    Route("POST", "/v1/auth/password/change", change_password),
    Route("POST", "/v1/auth/signout/all", signout_all),
    Route("POST", "/v1/auth/account/delete", delete_account),
]
