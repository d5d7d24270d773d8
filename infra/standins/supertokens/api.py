"""The CDI subset, one handler per core API, with the core's request rules and response shapes.

Field checks follow the core's ``InputParser`` (it is stricter than the spec):
a missing or mistyped required field is ``400 Field name 'x' is invalid in
JSON input``. Refresh follows CDI 5.6 (core 12.1): rotation in one
transaction, the previous token accepted for the grace period, any other reuse
revokes the session and answers ``TOKEN_THEFT_DETECTED``.
"""

from __future__ import annotations

import asyncio
import random
import time
import uuid
from typing import Any

import jwt
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from infra.standins.supertokens.config import StandinConfig
from infra.standins.supertokens.emailverification import EmailVerification
from infra.standins.supertokens.passwords import Passwords
from infra.standins.supertokens.server import (
    SUPPORTED_CDI_VERSIONS,
    Call,
    Endpoint,
    Reply,
    bad_request,
    ok,
)
from infra.standins.supertokens.store import Session, Store, User
from infra.standins.supertokens.tokens import (
    PROTECTED_CLAIMS,
    RefreshTokens,
    SigningKeys,
    hash2,
    sha256hex,
    sign_access_token,
)
from infra.standins.supertokens.users import AuthUsers


def _field(body: dict[str, Any], name: str, kind: type | tuple[type, ...], *, required: bool = True) -> Any:
    value = body.get(name)
    if value is None and not required:
        return None
    if value is None or not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise bad_request(f"Field name '{name}' is invalid in JSON input")
    return value


class Core:
    def __init__(self, config: StandinConfig, store: Store, clock: Any = time.time) -> None:
        self.config = config
        self.store = store
        self.clock = clock
        self.keys = SigningKeys(store, config.key_rotation_ms, config.access_token_validity_ms)
        self.refresh_tokens = RefreshTokens(store)
        self.hasher = PasswordHasher(time_cost=config.argon2_iterations, memory_cost=config.argon2_memory_kb,
                                     parallelism=config.argon2_parallelism)
        # verified against when the email is unknown, so both failures cost one Argon2 run
        self._dummy_hash = self.hasher.hash(uuid.uuid4().hex)
        self.keys.current(self.now_ms())
        self.email_verification = EmailVerification(self)
        self.passwords = Passwords(self)
        self.users = AuthUsers(store.conn, self.now_ms)
        self.users.register("SELECT app_id, tenant_id, user_id, 'emailpassword' AS recipe_id, email,"
                            " time_joined, NULL AS third_party_id, NULL AS third_party_user_id FROM users")

    def user_json(self, app_id: str, user: User) -> dict[str, Any]:
        """The user as the core answers it, with its email's verification state (the core joins it in)."""
        found = self.users.user(app_id, user.user_id)
        assert found is not None, "an email-password user the users table does not hold"
        return found

    def now_ms(self) -> int:
        return int(self.clock() * 1000)

    def endpoints(self) -> dict[str, Endpoint]:
        return {
            "/hello": Endpoint({m: self.hello for m in ("GET", "POST", "PUT", "DELETE")},
                               check_api_key=False, version_needed=False),
            "/": Endpoint({"GET": self.hello}, check_api_key=False, version_needed=False),
            "/apiversion": Endpoint({"GET": self.api_version}, version_needed=False, public_tenant_only=True),
            "/recipe/signup": Endpoint({"POST": self.sign_up}),
            "/recipe/signin": Endpoint({"POST": self.sign_in}),
            "/recipe/session": Endpoint({"POST": self.create_session, "GET": self.session_info}),
            "/recipe/session/verify": Endpoint({"POST": self.verify_session}, public_tenant_only=True),
            "/recipe/session/refresh": Endpoint({"POST": self.refresh_session}, public_tenant_only=True),
            "/recipe/session/remove": Endpoint({"POST": self.remove_sessions}),
            "/recipe/session/user": Endpoint({"GET": self.user_session_handles}),
            "/recipe/user/metadata": Endpoint({"GET": self.get_metadata, "PUT": self.put_metadata},
                                              public_tenant_only=True),
            "/recipe/user/metadata/remove": Endpoint({"POST": self.remove_metadata}, public_tenant_only=True),
            "/user/remove": Endpoint({"POST": self.remove_user}, public_tenant_only=True),
            "/recipe/session/regenerate": Endpoint({"POST": self.regenerate_session},
                                                   public_tenant_only=True),
            "/recipe/jwt/data": Endpoint({"PUT": self.put_jwt_data, "GET": self.get_jwt_data},
                                         public_tenant_only=True),
            "/recipe/session/data": Endpoint({"PUT": self.put_session_data, "GET": self.get_session_data},
                                             public_tenant_only=True),
            "/.well-known/jwks.json": Endpoint({"GET": self.jwks_public}, check_api_key=False,
                                               version_needed=False),
            "/recipe/jwt/jwks": Endpoint({"GET": self.jwks_legacy}, public_tenant_only=True),
            **self.email_verification.endpoints(),
            **self.passwords.endpoints(),
            **self.users.endpoints(),
        }

    # --- core ----------------------------------------------------------------------------
    async def hello(self, call: Call) -> Reply:
        return Reply(200, "Hello")

    async def api_version(self, call: Call) -> Reply:
        return ok({"versions": list(SUPPORTED_CDI_VERSIONS)})

    async def jwks_public(self, call: Call) -> Reply:
        max_age = min(self.keys.seconds_until_rotation(self.now_ms()), 60)
        return Reply(200, {"keys": self.keys.jwks(self.now_ms())},
                     {"Cache-Control": f"max-age={max_age}, must-revalidate"})

    async def jwks_legacy(self, call: Call) -> Reply:
        return ok({"status": "OK", "keys": self.keys.jwks(self.now_ms())})

    async def remove_user(self, call: Call) -> Reply:
        body = call.json()
        user_id = _field(body, "userId", str)
        _field(body, "removeAllLinkedAccounts", bool, required=False)
        # as the core (AuthRecipe.deleteUser): an id no auth recipe knows deletes nothing and is still OK
        if self.users.user(call.app_id, user_id) is not None:
            self.store.delete_user(call.app_id, user_id)
        return ok({"status": "OK"})

    # --- email password ------------------------------------------------------------------
    def _credentials(self, call: Call) -> tuple[str, str]:
        body = call.json()
        email = _field(body, "email", str).strip().lower()
        password = _field(body, "password", str)
        if password == "":
            raise bad_request("Password cannot be an empty string")
        return email, password

    async def sign_up(self, call: Call) -> Reply:
        email, password = self._credentials(call)
        password_hash = await asyncio.to_thread(self.hasher.hash, password)
        user = User(str(uuid.uuid4()), call.tenant_id, email, password_hash, self.now_ms())
        if not self.store.insert_user(call.app_id, user):
            return ok({"status": "EMAIL_ALREADY_EXISTS_ERROR"})
        return ok({"status": "OK", "user": self.user_json(call.app_id, user), "recipeUserId": user.user_id})

    async def sign_in(self, call: Call) -> Reply:
        email, password = self._credentials(call)
        user = self.store.user_by_email(call.app_id, call.tenant_id, email)
        stored = user.password_hash if user else self._dummy_hash
        try:
            await asyncio.to_thread(self.hasher.verify, stored, password)
            matched = user is not None
        except (VerificationError, InvalidHashError):
            matched = False
        if not matched or user is None:
            return ok({"status": "WRONG_CREDENTIALS_ERROR"})
        return ok({"status": "OK", "user": self.user_json(call.app_id, user), "recipeUserId": user.user_id})

    # --- sessions ------------------------------------------------------------------------
    def _validity_ms(self, body: dict[str, Any]) -> int:
        configured = self.config.access_token_validity_ms
        requested = body.get("accessTokenValidity")
        if requested is None:
            return configured
        if isinstance(requested, bool) or not isinstance(requested, int | float):
            raise bad_request("Field name 'accessTokenValidity' is invalid in JSON input")
        if not 0 < requested <= configured:
            raise bad_request(f"accessTokenValidity must be between 1 and {configured}")
        return int(requested)

    def _access_token(self, s: Session, refresh_token: str, validity_ms: int,
                      anti_csrf: str | None) -> dict[str, Any]:
        now = self.now_ms()
        validity_ms -= int(validity_ms * random.uniform(0, self.config.access_token_validity_jitter))
        iat = now // 1000
        exp = (now + validity_ms) // 1000
        payload = {
            **s.user_data_jwt,
            "iat": iat, "exp": exp, "sub": s.user_id, "tId": s.tenant_id, "rsub": s.recipe_user_id,
            "sessionHandle": s.handle, "refreshTokenHash1": sha256hex(refresh_token),
            "parentRefreshTokenHash1": None, "antiCsrfToken": anti_csrf,
        }
        key = self.keys.current(now, dynamic=not s.use_static_key)
        return {"token": sign_access_token(key, payload), "expiry": exp * 1000, "createdTime": now}

    def _tokens_reply(self, s: Session, refresh_token: str, validity_ms: int, anti_csrf: bool) -> Reply:
        csrf = str(uuid.uuid4()) if anti_csrf else None
        body: dict[str, Any] = {
            "status": "OK",
            "session": _session_json(s),
            "accessToken": self._access_token(s, refresh_token, validity_ms, csrf),
            "refreshToken": {"token": refresh_token, "expiry": s.expires_at, "createdTime": self.now_ms()},
        }
        if csrf is not None:  # Gson leaves nulls out
            body["antiCsrfToken"] = csrf
        return ok(body)

    async def create_session(self, call: Call) -> Reply:
        body = call.json()
        user_id = _field(body, "userId", str)
        jwt_data = _field(body, "userDataInJWT", dict)
        db_data = _field(body, "userDataInDatabase", dict)
        anti_csrf = _field(body, "enableAntiCsrf", bool)
        dynamic = _field(body, "useDynamicSigningKey", bool, required=False)
        validity_ms = self._validity_ms(body)
        if PROTECTED_CLAIMS & jwt_data.keys():
            raise bad_request("The user payload contains protected field")
        handle = str(uuid.uuid4()) + ("" if call.tenant_id == "public" else f"_{call.tenant_id}")
        refresh_token = self.refresh_tokens.issue(handle, None)
        now = self.now_ms()
        s = Session(handle, call.tenant_id, user_id, user_id, jwt_data, db_data, hash2(refresh_token),
                    None, None, now + self.config.refresh_token_validity_ms, now, dynamic is False)
        self.store.insert_session(call.app_id, s)
        return self._tokens_reply(s, refresh_token, validity_ms, anti_csrf)

    async def refresh_session(self, call: Call) -> Reply:
        body = call.json()
        token = _field(body, "refreshToken", str)
        anti_csrf = _field(body, "enableAntiCsrf", bool)
        _field(body, "useDynamicSigningKey", bool)  # required from CDI 5.0
        validity_ms = self._validity_ms(body)
        opened = self.refresh_tokens.open(token)
        if opened is None:
            return ok({"status": "UNAUTHORISED", "message": "Token info not found"})
        presented = hash2(token)
        now = self.now_ms()
        with self.store.transaction():
            s = self.store.session(call.app_id, opened["sessionHandle"])
            if s is None or s.expires_at <= now:
                return ok({"status": "UNAUTHORISED", "message": "Session missing in db or has expired"})
            if presented == s.current_hash2:
                # normal rotation: the presented token becomes `prev`, the new one `current`
                new_token = self.refresh_tokens.issue(s.handle, presented)
                prev, rotated_at, expires_at = presented, now, now + self.config.refresh_token_validity_ms
            elif presented == s.prev_hash2 and now - (s.rotated_at or 0) <= self.config.refresh_grace_ms:
                # a concurrent client still holds `prev`: re-rotate, keep prev/rotated_at/expiry
                new_token = self.refresh_tokens.issue(s.handle, presented)
                prev, rotated_at, expires_at = s.prev_hash2, s.rotated_at, s.expires_at
            else:
                self.store.delete_sessions(call.app_id, [s.handle])
                subtype = ("RECENT_PREV" if presented == s.prev_hash2
                           else "ORPHANED_BRANCH" if opened.get("parent") == s.prev_hash2
                           else "STALE_LINEAGE")
                return ok({"status": "TOKEN_THEFT_DETECTED", "recentTokenReuseSubtype": subtype,
                           "session": {"handle": s.handle, "userId": s.user_id,
                                       "recipeUserId": s.recipe_user_id}})
            self.store.rotate(call.app_id, s.handle, hash2(new_token), prev, rotated_at, expires_at)
        s = self.store.session(call.app_id, s.handle)
        assert s is not None
        return self._tokens_reply(s, new_token, validity_ms, anti_csrf)

    async def verify_session(self, call: Call) -> Reply:
        body = call.json()
        token = _field(body, "accessToken", str)
        _field(body, "enableAntiCsrf", bool)
        do_csrf = _field(body, "doAntiCsrfCheck", bool)
        check_db = _field(body, "checkDatabase", bool, required=False) or False
        csrf = _field(body, "antiCsrfToken", str, required=False)
        try:
            kid = jwt.get_unverified_header(token).get("kid")
            key = self.keys.public_key(kid) if isinstance(kid, str) else None
            if key is None:
                raise jwt.InvalidTokenError("unknown kid")
            claims = jwt.decode(token, key, algorithms=["RS256"], options={
                "require": ["exp", "iat", "sub", "tId", "rsub", "sessionHandle", "refreshTokenHash1"]})
        except jwt.InvalidTokenError:
            return ok({"status": "TRY_REFRESH_TOKEN", "message": "access token is invalid or expired"})
        if do_csrf and claims.get("antiCsrfToken") and claims.get("antiCsrfToken") != csrf:
            return ok({"status": "TRY_REFRESH_TOKEN", "message": "anti-csrf check failed"})
        user_data = {k: v for k, v in claims.items() if k not in PROTECTED_CLAIMS}
        session = {"handle": claims["sessionHandle"], "userId": claims["sub"], "recipeUserId": claims["rsub"],
                   "userDataInJWT": user_data, "tenantId": claims["tId"]}
        reply: dict[str, Any] = {"status": "OK", "session": session}
        if check_db:
            s = self.store.session(call.app_id, claims["sessionHandle"])
            if s is None or s.expires_at <= self.now_ms():
                return ok({"status": "UNAUTHORISED",
                           "message": "Either the session has ended or has been blacklisted"})
            if sha256hex(claims["refreshTokenHash1"]) not in (s.current_hash2, s.prev_hash2):
                return ok({"status": "UNAUTHORISED", "message": "rotated-out token branch; refresh required"})
            reply["payloadUpdateAvailable"] = s.user_data_jwt != user_data
        return ok(reply)

    def _verified_claims(self, token: str) -> dict[str, Any] | None:
        try:
            kid = jwt.get_unverified_header(token).get("kid")
            key = self.keys.public_key(kid) if isinstance(kid, str) else None
            if key is None:
                return None
            return jwt.decode(token, key, algorithms=["RS256"], options={
                "require": ["exp", "iat", "sub", "tId", "rsub", "sessionHandle", "refreshTokenHash1"]})
        except jwt.InvalidTokenError:
            return None

    async def regenerate_session(self, call: Call) -> Reply:
        """A new access token for the same session with a new payload, stored for later refreshes."""
        body = call.json()
        token = _field(body, "accessToken", str)
        jwt_data = _field(body, "userDataInJWT", dict, required=False)
        claims = self._verified_claims(token)
        if claims is None:
            return ok({"status": "UNAUTHORISED", "message": "access token is invalid or expired"})
        s = self.store.session(call.app_id, claims["sessionHandle"])
        if s is None or s.expires_at <= self.now_ms():
            return ok({"status": "UNAUTHORISED", "message": "Session missing in db or has expired"})
        if jwt_data is None:
            jwt_data = s.user_data_jwt
        if PROTECTED_CLAIMS & jwt_data.keys():
            raise bad_request("The user payload contains protected field")
        self.store.update_session_jwt_data(call.app_id, s.handle, jwt_data)
        payload = {**jwt_data, **{k: v for k, v in claims.items() if k in PROTECTED_CLAIMS}}
        kid = jwt.get_unverified_header(token)["kid"]
        key = self.keys.signing_key(kid)
        new_token = sign_access_token(key, payload) if key is not None else token
        session = {**_session_json(s), "userDataInJWT": jwt_data}
        return ok({"status": "OK", "session": session,
                   "accessToken": {"token": new_token, "expiry": int(claims["exp"]) * 1000,
                                   "createdTime": self.now_ms()}})

    def _handle_and(self, call: Call, field: str) -> tuple[str, dict[str, Any]]:
        body = call.json()
        return _field(body, "sessionHandle", str), _field(body, field, dict)

    async def put_jwt_data(self, call: Call) -> Reply:
        handle, data = self._handle_and(call, "userDataInJWT")
        if PROTECTED_CLAIMS & data.keys():
            raise bad_request("The user payload contains protected field")
        if not self.store.update_session_jwt_data(call.app_id, handle, data):
            return ok({"status": "UNAUTHORISED", "message": "Session does not exist."})
        return ok({"status": "OK"})

    async def get_jwt_data(self, call: Call) -> Reply:
        s = self.store.session(call.app_id, call.param("sessionHandle"))
        if s is None or s.expires_at <= self.now_ms():
            return ok({"status": "UNAUTHORISED", "message": "Session does not exist."})
        return ok({"status": "OK", "userDataInJWT": s.user_data_jwt})

    async def put_session_data(self, call: Call) -> Reply:
        handle, data = self._handle_and(call, "userDataInDatabase")
        if not self.store.update_session_db_data(call.app_id, handle, data):
            return ok({"status": "UNAUTHORISED", "message": "Session does not exist."})
        return ok({"status": "OK"})

    async def get_session_data(self, call: Call) -> Reply:
        s = self.store.session(call.app_id, call.param("sessionHandle"))
        if s is None or s.expires_at <= self.now_ms():
            return ok({"status": "UNAUTHORISED", "message": "Session does not exist."})
        return ok({"status": "OK", "userDataInDatabase": s.user_data_db})

    async def session_info(self, call: Call) -> Reply:
        s = self.store.session(call.app_id, call.param("sessionHandle"))
        if s is None or s.expires_at <= self.now_ms():
            return ok({"status": "UNAUTHORISED", "message": "Session does not exist."})
        return ok({"status": "OK", "sessionHandle": s.handle, "userId": s.user_id,
                   "recipeUserId": s.recipe_user_id, "userDataInDatabase": s.user_data_db,
                   "userDataInJWT": s.user_data_jwt, "expiry": s.expires_at, "timeCreated": s.created_at,
                   "tenantId": s.tenant_id})

    async def remove_sessions(self, call: Call) -> Reply:
        body = call.json()
        handles = body.get("sessionHandles")
        user_id = body.get("userId")
        both_or_neither = (handles is None) == (user_id is None)
        if both_or_neither or (handles is not None and "revokeAcrossAllTenants" in body):
            raise bad_request("Invalid JSON input: exactly one of sessionHandles or userId must be given")
        if handles is not None:
            if not isinstance(handles, list) or not all(isinstance(h, str) for h in handles):
                raise bad_request("Field name 'sessionHandles' is invalid in JSON input")
            removed = self.store.delete_sessions(call.app_id, handles)
        else:
            _field(body, "userId", str)
            across = _field(body, "revokeAcrossAllTenants", bool, required=False)
            tenant = None if across is not False else call.tenant_id
            removed = self.store.delete_sessions(
                call.app_id, self.store.session_handles(call.app_id, user_id, tenant, 0))
        return ok({"status": "OK", "sessionHandlesRevoked": removed})

    async def user_session_handles(self, call: Call) -> Reply:
        user_id = call.param("userId")
        across = call.query.get("fetchAcrossAllTenants", "true") != "false"
        handles = self.store.session_handles(call.app_id, user_id, None if across else call.tenant_id,
                                             self.now_ms())
        return ok({"status": "OK", "sessionHandles": handles})

    # --- user metadata -------------------------------------------------------------------
    async def get_metadata(self, call: Call) -> Reply:
        return ok({"status": "OK", "metadata": self.store.metadata(call.app_id, call.param("userId"))})

    async def put_metadata(self, call: Call) -> Reply:
        body = call.json()
        user_id = _field(body, "userId", str)
        update = _field(body, "metadataUpdate", dict)
        with self.store.transaction():
            merged = self.store.metadata(call.app_id, user_id)
            for key, value in update.items():  # shallow merge; a top-level null deletes the key
                if value is None:
                    merged.pop(key, None)
                else:
                    merged[key] = value
            self.store.set_metadata(call.app_id, user_id, merged)
        return ok({"status": "OK", "metadata": merged})

    async def remove_metadata(self, call: Call) -> Reply:
        body = call.json()
        self.store.delete_metadata(call.app_id, _field(body, "userId", str))
        return ok({"status": "OK"})


def _session_json(s: Session) -> dict[str, Any]:
    return {"handle": s.handle, "userId": s.user_id, "recipeUserId": s.recipe_user_id,
            "userDataInJWT": s.user_data_jwt, "tenantId": s.tenant_id}
