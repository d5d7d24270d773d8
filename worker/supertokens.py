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
from urllib.parse import quote, urlencode

from worker import jsoncodec
from worker.http import ApiError
from worker.outbound import HttpClient, HttpError

log = logging.getLogger("telestack.supertokens")

CDI_VERSION = "5.6"
TENANT = "public"
#: each call's deadline (connect to last body byte): a hung core costs a request this long per call,
#: then the answer is 503 ``auth_unavailable``; docs/api.md "Deadlines" adds them up per route
CALL_TIMEOUT_SECONDS = 5.0


@dataclass(frozen=True, slots=True)
class CoreUser:
    id: str
    email: str
    time_joined: int
    #: the core's ``verified`` of the user's login method: its email is verified
    email_verified: bool = False


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
    def __init__(self, http: HttpClient, base_url: str, api_key: str = "", *,
                 timeout: float = CALL_TIMEOUT_SECONDS) -> None:
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

    async def session_handles(self, user_id: str) -> list[str]:
        data = await self._call("GET", f"/{TENANT}/recipe/session/user?userId={quote(user_id, safe='')}",
                                rid="session")
        if data.get("status") == "OK":
            return [str(h) for h in data.get("sessionHandles") or []]
        raise self._unexpected("session handles", data)

    async def session_payload(self, handle: str) -> dict[str, Any] | None:
        """The payload the session's next access tokens carry; None when the session has ended."""
        data = await self._call("GET", f"/recipe/jwt/data?sessionHandle={quote(handle, safe='')}",
                                rid="session")
        if data.get("status") == "OK" and isinstance(data.get("userDataInJWT"), dict):
            return dict(data["userDataInJWT"])
        if data.get("status") == "UNAUTHORISED":
            return None
        raise self._unexpected("session payload", data)

    async def set_session_payload(self, handle: str, payload: dict[str, Any]) -> bool:
        """Store the payload the session's next refresh puts in its access token; False if it ended."""
        data = await self._call("PUT", "/recipe/jwt/data", rid="session",
                                body={"sessionHandle": handle, "userDataInJWT": payload})
        if data.get("status") in ("OK", "UNAUTHORISED"):
            return data["status"] == "OK"
        raise self._unexpected("session payload update", data)

    # --- user metadata -------------------------------------------------------------------
    async def metadata(self, user_id: str) -> dict[str, Any]:
        data = await self._call("GET", f"/recipe/user/metadata?userId={quote(user_id, safe='')}",
                                rid="usermetadata")
        if data.get("status") == "OK" and isinstance(data.get("metadata"), dict):
            return dict(data["metadata"])
        raise self._unexpected("metadata get", data)

    async def update_metadata(self, user_id: str, update: dict[str, Any]) -> dict[str, Any]:
        """The core's shallow merge: each top-level key replaced, a top-level null removes the key."""
        data = await self._call("PUT", "/recipe/user/metadata", rid="usermetadata",
                                body={"userId": user_id, "metadataUpdate": update})
        if data.get("status") == "OK" and isinstance(data.get("metadata"), dict):
            return dict(data["metadata"])
        raise self._unexpected("metadata update", data)

    # --- user roles ----------------------------------------------------------------------
    async def roles(self) -> list[str]:
        data = await self._call("GET", "/recipe/roles", rid="userroles")
        if data.get("status") == "OK":
            return [str(r) for r in data.get("roles") or []]
        raise self._unexpected("roles", data)

    async def create_role(self, role: str, permissions: list[str] | None = None) -> bool:
        """True when the role is new (an existing one keeps its assignments and gains the permissions)."""
        body: dict[str, Any] = {"role": role}
        if permissions:
            body["permissions"] = permissions
        data = await self._call("PUT", "/recipe/role", rid="userroles", body=body)
        if data.get("status") == "OK":
            return bool(data.get("createdNewRole"))
        raise self._unexpected("role create", data)

    async def delete_role(self, role: str) -> bool:
        """True when the role existed; its assignments go with it."""
        data = await self._call("POST", "/recipe/role/remove", rid="userroles", body={"role": role})
        if data.get("status") == "OK":
            return bool(data.get("didRoleExist"))
        raise self._unexpected("role delete", data)

    async def user_roles(self, user_id: str) -> list[str]:
        data = await self._call("GET", f"/{TENANT}/recipe/user/roles?userId={quote(user_id, safe='')}",
                                rid="userroles")
        if data.get("status") == "OK":
            return [str(r) for r in data.get("roles") or []]
        raise self._unexpected("user roles", data)

    async def add_user_role(self, user_id: str, role: str) -> bool:
        """True when the user did not have the role yet; ApiError(404) for a role never created."""
        data = await self._call("PUT", f"/{TENANT}/recipe/user/role", rid="userroles",
                                body={"userId": user_id, "role": role})
        if data.get("status") == "OK":
            return not data.get("didUserAlreadyHaveRole")
        if data.get("status") == "UNKNOWN_ROLE_ERROR":
            raise unknown_role(role)
        raise self._unexpected("user role add", data)

    async def remove_user_role(self, user_id: str, role: str) -> bool:
        """True when the user had the role; ApiError(404) for a role never created."""
        data = await self._call("POST", f"/{TENANT}/recipe/user/role/remove", rid="userroles",
                                body={"userId": user_id, "role": role})
        if data.get("status") == "OK":
            return bool(data.get("didUserHaveRole"))
        if data.get("status") == "UNKNOWN_ROLE_ERROR":
            raise unknown_role(role)
        raise self._unexpected("user role remove", data)

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


    # --- account recipes: email verification, password reset, user updates, removal ------
    async def user_id_by_email(self, email: str) -> str | None:
        """The email-password user with this address, if any (``GET /users/by-accountinfo``).

        The core lists every recipe's users with the address (a provider identity too), so the one
        whose email-password login method has it is picked.
        """
        query = urlencode({"email": email, "doUnionOfAccountInfo": "false"})
        data = await self._call("GET", f"/{TENANT}/users/by-accountinfo?{query}", rid="emailpassword")
        users = data.get("users")
        if data.get("status") != "OK" or not isinstance(users, list):
            raise self._unexpected("users by account info", data)
        for user in users:
            methods = user.get("loginMethods") if isinstance(user, dict) else None
            for method in methods if isinstance(methods, list) else []:
                if (isinstance(method, dict) and method.get("recipeId") == "emailpassword"
                        and method.get("email") == email and isinstance(method.get("recipeUserId"), str)):
                    return method["recipeUserId"]
        return None

    async def email_verification_token(self, user_id: str, email: str) -> str | None:
        """A one-time token verifying ``email`` for the user; None when it is verified already."""
        data = await self._call("POST", f"/{TENANT}/recipe/user/email/verify/token", rid="emailverification",
                                body={"userId": user_id, "email": email})
        if data.get("status") == "OK" and isinstance(data.get("token"), str):
            return data["token"]
        if data.get("status") == "EMAIL_ALREADY_VERIFIED_ERROR":
            return None
        raise self._unexpected("email verification token", data)

    async def verify_email(self, token: str) -> tuple[str, str]:
        """Spend a verification token: (user id, the address it verified); 400 for a bad/spent/expired one."""
        data = await self._call("POST", f"/{TENANT}/recipe/user/email/verify", rid="emailverification",
                                body={"method": "token", "token": token})
        if data.get("status") == "OK":
            return str(data.get("userId")), str(data.get("email"))
        if data.get("status") == "EMAIL_VERIFICATION_INVALID_TOKEN_ERROR":
            raise invalid_link()
        raise self._unexpected("verify email", data)

    async def is_email_verified(self, user_id: str, email: str) -> bool:
        """Whether the email-verification recipe holds ``email`` as verified for the user (app-wide)."""
        query = urlencode({"userId": user_id, "email": email})
        data = await self._call("GET", f"/recipe/user/email/verify?{query}", rid="emailverification")
        if data.get("status") == "OK" and isinstance(data.get("isVerified"), bool):
            return data["isVerified"]
        raise self._unexpected("is email verified", data)

    async def revoke_email_verification_tokens(self, user_id: str, email: str) -> None:
        data = await self._call("POST", f"/{TENANT}/recipe/user/email/verify/token/remove",
                                rid="emailverification", body={"userId": user_id, "email": email})
        if data.get("status") != "OK":
            raise self._unexpected("remove email verification tokens", data)

    async def password_reset_token(self, user_id: str, email: str) -> str | None:
        """A one-time reset token for the user; None when the user no longer exists."""
        data = await self._call("POST", f"/{TENANT}/recipe/user/password/reset/token", rid="emailpassword",
                                body={"userId": user_id, "email": email})
        if data.get("status") == "OK" and isinstance(data.get("token"), str):
            return data["token"]
        if data.get("status") == "UNKNOWN_USER_ID_ERROR":
            return None
        raise self._unexpected("password reset token", data)

    async def consume_password_reset_token(self, token: str) -> str:
        """Spend a reset token: the user id it was issued for; 400 for a bad/spent/expired one."""
        data = await self._call("POST", f"/{TENANT}/recipe/user/password/reset/token/consume",
                                rid="emailpassword", body={"token": token})
        if data.get("status") == "OK" and isinstance(data.get("userId"), str):
            return data["userId"]
        if data.get("status") == "RESET_PASSWORD_INVALID_TOKEN_ERROR":
            raise invalid_link()
        raise self._unexpected("consume password reset token", data)

    async def update_user(self, user_id: str, *, email: str | None = None,
                          password: str | None = None) -> None:
        body: dict[str, Any] = {"recipeUserId": user_id}
        if email is not None:
            body["email"] = email
        if password is not None:
            body["password"] = password
        data = await self._call("PUT", f"/{TENANT}/recipe/user", rid="emailpassword", body=body)
        status = data.get("status")
        if status == "OK":
            return
        if status == "EMAIL_ALREADY_EXISTS_ERROR":
            raise ApiError(409, "email_exists", "an account with this email already exists")
        if status == "UNKNOWN_USER_ID_ERROR":
            raise ApiError(404, "user_not_found", "this account no longer exists")
        raise self._unexpected("update user", data)

    async def revoke_user_sessions(self, user_id: str) -> list[str]:
        data = await self._call("POST", f"/{TENANT}/recipe/session/remove", rid="session",
                                body={"userId": user_id, "revokeAcrossAllTenants": True})
        if data.get("status") == "OK":
            return [str(h) for h in data.get("sessionHandlesRevoked") or []]
        raise self._unexpected("session remove by user", data)

    async def remove_user(self, user_id: str) -> None:
        """Delete the user and everything the core keeps of them (sessions, metadata, verification)."""
        data = await self._call("POST", "/user/remove", rid="emailpassword",
                                body={"userId": user_id, "removeAllLinkedAccounts": True})
        if data.get("status") != "OK":
            raise self._unexpected("user remove", data)

    async def remove_user_metadata(self, user_id: str) -> None:
        data = await self._call("POST", "/recipe/user/metadata/remove", rid="usermetadata",
                                body={"userId": user_id})
        if data.get("status") != "OK":
            raise self._unexpected("user metadata remove", data)


def invalid_link() -> ApiError:
    """One error for a forged, spent and expired one-time token: which of them it was helps no one."""
    return ApiError(400, "invalid_token", "this link is invalid, used or expired; ask for a new one")

def unknown_role(role: str) -> ApiError:
    return ApiError(404, "unknown_role", f"role {role[:64]!r} does not exist; create it first")


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
    methods = [m for m in user.get("loginMethods") or [] if isinstance(m, dict)]
    # the user's own login method (no account linking: its recipe user id is the user's id), whatever
    # its recipe: the core reports the email-verification recipe's answer for its email
    verified = any(m.get("recipeUserId") == user["id"] and m.get("email") == email
                   and m.get("verified") is True for m in methods)
    return CoreUser(id=user["id"], email=str(email), time_joined=int(user.get("timeJoined") or 0),
                    email_verified=verified)


def _session(data: dict[str, Any]) -> CoreSession:
    try:
        session, access, refresh = data["session"], data["accessToken"], data["refreshToken"]
        return CoreSession(handle=str(session["handle"]), user_id=str(session["userId"]),
                           access_token=str(access["token"]), access_token_expiry=int(access["expiry"]),
                           refresh_token=str(refresh["token"]), refresh_token_expiry=int(refresh["expiry"]))
    except (KeyError, TypeError, ValueError):
        raise _bad_gateway("session without tokens") from None
