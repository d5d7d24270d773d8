"""HTTP handlers for sign-in through an identity provider (the flow itself is :mod:`worker.oauth`).

- ``GET /v1/auth/oauth/providers`` → ``{"providers": [name, ...]}``
- ``POST /v1/auth/oauth/{provider}/start`` ``{"redirect_uri", "code_challenge", "code_challenge_method"?}``
  → ``{"authorization_url", "expires_at"}``: the app sends the user's browser there
- ``GET /v1/auth/oauth/{provider}/callback?code&state`` (the provider's redirect) → 302 to the app's
  ``redirect_uri`` with ``?code=<one-time code>`` or ``?error=<code>``; an unknown, spent or expired
  ``state`` is a 400 JSON error (we do not know where to send the browser)
- ``POST /v1/auth/oauth/token`` ``{"code", "code_verifier"}`` → 200 session tokens + user, the same
  shape as ``/v1/auth/signin`` plus ``user.new_user`` (the core created the user at this sign-in); the
  session carries the same claims as an email/password one (``email``, ``email_verified``, roles:
  :mod:`worker.sessions`)

No session token ever appears in a URL; the one-time code is worth nothing without the app's PKCE
verifier.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING
from urllib.parse import urlencode

from worker.api.auth import tokens_json
from worker.http import ApiError, Response, read_object
from worker.oauth import FlowError, SignedIn, invalid_state, redirect_uri_not_allowed, valid_verifier
from worker.operations import Operation, documented, obj
from worker.routing import Route
from worker.sessions import start_session

if TYPE_CHECKING:
    from worker.context import Context

MAX_BODY_BYTES = 4 * 1024
#: a provider's error code is echoed to the app only when it is a plain token (RFC 6749 section 4.1.2.1)
_ERROR_CODE = re.compile(r"^[a-z_]{1,64}$")
_CODE = re.compile(r"^[A-Za-z0-9._~+/=-]{1,2048}$")
_REDIRECT_HEADERS = {"cache-control": "no-store", "referrer-policy": "no-referrer"}


def _redirect(url: str) -> Response:
    return Response(302, headers={"location": url, **_REDIRECT_HEADERS})


def _back_to_app(redirect_uri: str, **params: str) -> Response:
    return _redirect(redirect_uri + ("&" if "?" in redirect_uri else "?") + urlencode(params))

_STR = {"type": "string"}
_NOT_CONFIGURED = {404: ("oauth_not_configured",), 503: ("oauth_misconfigured",)}
PROVIDERS = Operation("the identity providers this environment offers", "none",
                      {200: obj({"providers": {"type": "array", "items": _STR}}, ("providers",))},
                      _NOT_CONFIGURED)
START = Operation("begin a sign-in: the provider URL to send the browser to", "none",
                  {200: obj({"authorization_url": _STR, "expires_at": {"type": "integer"}},
                            ("authorization_url", "expires_at"))},
                  {400: ("invalid_code_challenge", "redirect_uri_not_allowed"), 404: ("oauth_not_configured",
                   "unknown_provider"), 503: ("oauth_misconfigured",)},
                  body=obj({"redirect_uri": _STR, "code_challenge": _STR,
                            "code_challenge_method": {"const": "S256"}},
                           ("redirect_uri", "code_challenge")))
CALLBACK = Operation("where the provider returns the browser: to the app with a one-time code", "none",
                     {302: None}, {400: ("invalid_state",), 404: ("oauth_not_configured", "unknown_provider"),
                                   503: ("oauth_misconfigured",)},
                     response_headers={302: {"Location": "the app's redirect URI with code or error"}})
TOKEN = Operation("exchange the one-time code (and the app's PKCE verifier) for session tokens", "none",
                  {200: {"type": "object"}}, {400: ("invalid_code",), 404: ("oauth_not_configured",),
                                              503: ("oauth_misconfigured", "auth_unavailable",
                                                    "auth_not_configured"),
                                              502: ("auth_upstream_error", "auth_misconfigured")},
                  body=obj({"code": _STR, "code_verifier": _STR}, ("code", "code_verifier")))


@documented(PROVIDERS)
async def providers(ctx: Context) -> Response:
    return Response.json({"providers": ctx.gateway.oauth.provider_names()})


@documented(START)
async def start(ctx: Context) -> Response:
    flows = ctx.gateway.oauth
    flows.provider(ctx.params["provider"])  # 404 before the body is even read
    body = read_object(ctx.request, {"redirect_uri", "code_challenge", "code_challenge_method"},
                       required=("redirect_uri", "code_challenge"), max_bytes=MAX_BODY_BYTES)
    if body.get("code_challenge_method", "S256") != "S256":
        raise ApiError(400, "invalid_code_challenge", "code_challenge_method must be S256")
    redirect_uri, challenge = body["redirect_uri"], body["code_challenge"]
    if not isinstance(redirect_uri, str):
        raise redirect_uri_not_allowed()
    url, expires_at = await flows.start(ctx.params["provider"], redirect_uri, challenge)
    return Response.json({"authorization_url": url, "expires_at": expires_at})


@documented(CALLBACK)
async def callback(ctx: Context) -> Response:
    flows = ctx.gateway.oauth
    name = ctx.params["provider"]
    flows.provider(name)
    state = ctx.request.query.get("state", "")
    if not state or len(state) > 512:
        raise invalid_state()
    flow = await flows.take_flow(name, state)
    redirect_uri = str(flow["redirect_uri"])
    error = ctx.request.query.get("error")
    if error is not None:  # the user declined, or the provider refused the request
        return _back_to_app(redirect_uri, error=error if _ERROR_CODE.match(error) else "access_denied")
    code = ctx.request.query.get("code", "")
    if not _CODE.match(code):
        return _back_to_app(redirect_uri, error="invalid_request")
    try:
        identity = await flows.identify(name, flow, code)
        user, created = await ctx.gateway.supertokens.third_party_sign_in_up(
            identity.provider, identity.subject, identity.email, identity.email_verified)
        one_time = await flows.issue_code(SignedIn(user.id, user.email or identity.email, user.time_joined,
                                                   created), flow)
    except FlowError as exc:
        return _back_to_app(redirect_uri, error=exc.code)
    except ApiError as exc:  # the provider or the core is down or misbehaving: tell the app, not a blank page
        return _back_to_app(redirect_uri, error=exc.code)
    return _back_to_app(redirect_uri, code=one_time, provider=name)


@documented(TOKEN)
async def token(ctx: Context) -> Response:
    flows = ctx.gateway.oauth
    body = read_object(ctx.request, {"code", "code_verifier"}, required=("code", "code_verifier"),
                       max_bytes=MAX_BODY_BYTES)
    code, verifier = body["code"], body["code_verifier"]
    if not isinstance(code, str) or not _CODE.match(code) or not valid_verifier(verifier):
        raise ApiError(400, "invalid_code", "the code is unknown, already used, expired or not yours")
    signed_in = await flows.redeem(code, verifier)
    core = ctx.gateway.supertokens
    # the core's email-verification recipe decides: it recorded the provider's word at sign-in, and an
    # address the user verified through the gateway's mail counts as well
    verified = await core.is_email_verified(signed_in.user_id, signed_in.email)
    session = await start_session(core, ctx.settings, signed_in.user_id, signed_in.email,
                                  email_verified=verified, new_user=signed_in.new_user)
    user = {"id": signed_in.user_id, "email": signed_in.email, "time_joined": signed_in.time_joined,
            "new_user": signed_in.new_user}
    return Response.json(tokens_json(session, user))


ROUTES = [
    Route("GET", "/v1/auth/oauth/providers", providers),
    Route("POST", "/v1/auth/oauth/token", token),
    Route("POST", "/v1/auth/oauth/{provider}/start", start),
    Route("GET", "/v1/auth/oauth/{provider}/callback", callback),
]
