"""A client for SuperTokens Core's CDI over the HttpClient port (runtime-agnostic).

Every call sends ``api-key``, ``cdi-version`` and ``rid`` as the official SDKs
do. We request CDI **5.6** (core 12.1+; the stand-in speaks exactly that): from
5.6 the core itself rotates refresh tokens in one transaction, accepts the
previous token for a 30 s grace period and revokes the session on any other
reuse. On ``TOKEN_THEFT_DETECTED`` we also revoke the session ourselves, which
is a no-op on 5.6 and what the SDKs do on older cores.

Each documented outcome becomes a typed value or an :class:`ApiError` with a
gateway error code; a transport failure or an answer the CDI does not document
is a 502/503, never a stack trace, and never echoes a token or password.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from worker import jsoncodec
from worker.http import ApiError
from worker.outbound import HttpClient, HttpError

log = logging.getLogger("telestack.supertokens")

CDI_VERSION = "5.6"
TENANT = "public"


@dataclass(frozen=True, slots=True)
class CoreUser:
    id: str
    email: str
    time_joined: int


@dataclass(frozen=True, slots=True)
class CoreSession:
    handle: str
    user_id: str
    access_token: str
    access_token_expiry: int  # unix ms
    refresh_token: str
    refresh_token_expiry: int  # unix ms


def unavailable() -> ApiError:
    return ApiError(503, "auth_unavailable", "the auth service is unreachable; try again shortly")


def _bad_gateway(what: str) -> ApiError:
    return ApiError(502, "auth_upstream_error", f"the auth service gave an unexpected answer ({what})")


class SuperTokens:
    def __init__(self, http: HttpClient, base_url: str, api_key: str = "", *, timeout: float = 5.0) -> None:
        if not base_url:
            raise ApiError(503, "auth_not_configured", "AUTH_URL is not set on the gateway")
        self._http = http
        self.base_url = base_url.rstrip("/")
        self._api_key = api_key
        self._timeout = timeout

    # --- transport -----------------------------------------------------------------------
    async def _call(
        self, method: str, path: str, *, rid: str, body: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        url = self.base_url + path
        headers = {"cdi-version": CDI_VERSION, "rid": rid}
        if self._api_key:
            headers["api-key"] = self._api_key
        payload = None
        if body is not None:
            headers["content-type"] = "application/json"
            payload = jsoncodec.dumps_bytes(body)
        try:
            resp = await self._http.request(method, url, headers=headers, body=payload, timeout=self._timeout)
        except HttpError as exc:
            log.warning("auth core unreachable: %s", exc)
            raise unavailable() from None
        if resp.status != 200:
            # text bodies from the core name the problem (never a secret): log them, don't forward them
            detail = resp.body[:200].decode(errors="replace").strip()
            log.error("auth core %s %s -> %d %s", method, path, resp.status, detail)
            if resp.status == 401:
                raise ApiError(502, "auth_misconfigured", "the auth service refused the gateway's API key")
            if resp.status >= 500:
                raise unavailable()
            raise _bad_gateway(f"HTTP {resp.status}")
        try:
            data = jsoncodec.loads(resp.body)
        except ValueError:
            raise _bad_gateway("not JSON") from None
        if not isinstance(data, dict):
            raise _bad_gateway("not a JSON object")
        return data

    @staticmethod
    def _unexpected(op: str, data: dict[str, Any]) -> ApiError:
        log.error("auth core %s: undocumented status %r", op, data.get("status"))
        return _bad_gateway(f"{op}: status {data.get('status')!r}")

    # --- email password ------------------------------------------------------------------
    async def sign_up(self, email: str, password: str) -> CoreUser:
        data = await self._call("POST", f"/{TENANT}/recipe/signup", rid="emailpassword",
                                body={"email": email, "password": password})
        status = data.get("status")
        if status == "OK":
            return _user(data)
        if status == "EMAIL_ALREADY_EXISTS_ERROR":
            raise ApiError(409, "email_exists", "an account with this email already exists")
        raise self._unexpected("signup", data)

    async def sign_in(self, email: str, password: str) -> CoreUser:
        data = await self._call("POST", f"/{TENANT}/recipe/signin", rid="emailpassword",
                                body={"email": email, "password": password})
        status = data.get("status")
        if status == "OK":
            return _user(data)
        if status == "WRONG_CREDENTIALS_ERROR":
            raise invalid_credentials()
        raise self._unexpected("signin", data)

    # --- third party ---------------------------------------------------------------------
    async def third_party_sign_in_up(self, third_party_id: str, third_party_user_id: str, email: str,
                                     email_verified: bool) -> tuple[CoreUser, bool]:
        """The core's user for this provider identity (created on first sign-in) and whether it is new.

        The core keys the user by (``thirdPartyId``, ``thirdPartyUserId``) and updates the stored email
        when the provider reports another one; an email shared with another user links nothing.
        """
        data = await self._call("POST", f"/{TENANT}/recipe/signinup", rid="thirdparty", body={
            "thirdPartyId": third_party_id, "thirdPartyUserId": third_party_user_id,
            "email": {"id": email, "isVerified": email_verified}})
        status = data.get("status")
        if status == "OK":
            return _user(data), data.get("createdNewUser") is True
        if status == "EMAIL_CHANGE_NOT_ALLOWED_ERROR":
            raise ApiError(409, "email_change_not_allowed",
                           "the provider reports an email this account may not take; sign in another way")
        raise self._unexpected("signinup", data)

    # --- sessions ------------------------------------------------------------------------
    async def create_session(self, user_id: str, *, jwt_data: dict[str, Any] | None = None,
                             access_token_validity_ms: int | None = None) -> CoreSession:
        body: dict[str, Any] = {"userId": user_id, "userDataInJWT": jwt_data or {}, "userDataInDatabase": {},
                                "enableAntiCsrf": False, "useDynamicSigningKey": True}
        if access_token_validity_ms:
            body["accessTokenValidity"] = access_token_validity_ms
        data = await self._call("POST", f"/{TENANT}/recipe/session", rid="session", body=body)
        if data.get("status") == "OK":
            return _session(data)
        raise self._unexpected("session create", data)

    async def refresh_session(self, refresh_token: str, *,
                              access_token_validity_ms: int | None = None) -> CoreSession:
        body: dict[str, Any] = {"refreshToken": refresh_token, "enableAntiCsrf": False,
                                "useDynamicSigningKey": True}
        if access_token_validity_ms:
            body["accessTokenValidity"] = access_token_validity_ms
        data = await self._call("POST", "/recipe/session/refresh", rid="session", body=body)
        status = data.get("status")
        if status == "OK":
            return _session(data)
        if status == "TOKEN_THEFT_DETECTED" or data.get("recentTokenReuseSubtype"):
            handle = (data.get("session") or {}).get("handle")
            if isinstance(handle, str):
                await self.revoke_sessions([handle])  # 5.6 already did; older cores leave it to us
            raise ApiError(401, "token_reuse_detected",
                           "this refresh token was already used; the session has been revoked, sign in again")
        if status == "UNAUTHORISED":
            raise ApiError(401, "session_expired", "the refresh token is invalid or the session has ended")
        raise self._unexpected("session refresh", data)

    async def revoke_sessions(self, handles: list[str]) -> list[str]:
        data = await self._call("POST", f"/{TENANT}/recipe/session/remove", rid="session",
                                body={"sessionHandles": handles})
        if data.get("status") == "OK":
            return [str(h) for h in data.get("sessionHandlesRevoked") or []]
        raise self._unexpected("session remove", data)

    # --- keys ----------------------------------------------------------------------------
    async def jwks(self) -> tuple[list[dict[str, Any]], int | None]:
        """The core's public keys and the ``Cache-Control: max-age`` it set (seconds), if any."""
        url = self.base_url + "/.well-known/jwks.json"
        try:
            resp = await self._http.request("GET", url, timeout=self._timeout)
        except HttpError as exc:
            log.warning("auth core JWKS unreachable: %s", exc)
            raise unavailable() from None
        if resp.status != 200:
            raise unavailable() if resp.status >= 500 else _bad_gateway(f"JWKS HTTP {resp.status}")
        try:
            data = jsoncodec.loads(resp.body)
        except ValueError:
            raise _bad_gateway("JWKS not JSON") from None
        keys = data.get("keys") if isinstance(data, dict) else None
        if not isinstance(keys, list):
            raise _bad_gateway("JWKS without keys")
        return [k for k in keys if isinstance(k, dict)], _max_age(resp.headers.get("cache-control", ""))


def invalid_credentials() -> ApiError:
    """One error for an unknown email and a wrong password, so accounts cannot be enumerated."""
    return ApiError(401, "invalid_credentials", "email or password is incorrect")


def _max_age(cache_control: str) -> int | None:
    for part in cache_control.split(","):
        name, _, value = part.strip().partition("=")
        if name.lower() == "max-age" and value.strip().isdigit():
            return int(value.strip())
    return None


def _user(data: dict[str, Any]) -> CoreUser:
    user = data.get("user")
    if not isinstance(user, dict) or not isinstance(user.get("id"), str):
        raise _bad_gateway("user without id")
    emails = user.get("emails") or []
    email = emails[0] if emails else ""
    return CoreUser(id=user["id"], email=str(email), time_joined=int(user.get("timeJoined") or 0))


def _session(data: dict[str, Any]) -> CoreSession:
    try:
        session, access, refresh = data["session"], data["accessToken"], data["refreshToken"]
        return CoreSession(handle=str(session["handle"]), user_id=str(session["userId"]),
                           access_token=str(access["token"]), access_token_expiry=int(access["expiry"]),
                           refresh_token=str(refresh["token"]), refresh_token_expiry=int(refresh["expiry"]))
    except (KeyError, TypeError, ValueError):
        raise _bad_gateway("session without tokens") from None
