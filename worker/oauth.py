"""Sign-in through an identity provider: the authorization code flow with PKCE, run by the gateway.

Three steps, each a single-use record in the database (``config/migrations/0006_oauth.sql``), so a
flow started on one Worker isolate finishes on any other:

1. :meth:`OAuthFlows.start`: the app names its redirect URI (it must be on the environment's
   allowlist) and its own PKCE challenge. We make ``state``, ``nonce`` and our PKCE verifier for the
   provider, store the flow under ``sha256(state)`` for :data:`FLOW_TTL_S`, and hand back the
   provider's authorization URL.
2. :meth:`OAuthFlows.finish` (the provider's redirect to our callback): the flow is deleted as it is
   read (``DELETE ... RETURNING``), so a state works once. We redeem the provider's code with our
   verifier, verify the ID token (RS256 signature against the provider's JWKS, ``iss``, ``aud``/``azp``,
   ``exp``, ``iat``, ``nonce``), read the email (the ID token, else the userinfo endpoint, whose ``sub``
   must match), sign the identity in or up in the core (CDI ``/recipe/signinup``), and store a one-time
   code for the app (hashed, :data:`CODE_TTL_S`). Tokens never travel in a URL.
3. :meth:`OAuthFlows.redeem`: the app posts the one-time code with its PKCE verifier; the code is
   deleted as it is read, and only then is a session created. A code stolen from the redirect is
   useless without the verifier the app kept, and a code an attacker obtained for their own account
   cannot be planted in a victim's app (login CSRF), since the victim's app holds no verifier for it.

The provider's HTTP calls go through the outbound port; signatures through the signature port.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote_plus, urlencode

from worker import jsoncodec
from worker.database import Database, Statement
from worker.http import ApiError
from worker.jws import MalformedToken, parse
from worker.oidc_providers import OidcProvider, ProviderConfig, get_json, provider_error, provider_unavailable
from worker.outbound import HttpClient, HttpError
from worker.signatures import SignatureVerifier

log = logging.getLogger("telestack.oauth")

#: how long a user has at the provider between start and callback
FLOW_TTL_S = 600
#: how long the app has to exchange the one-time code after the redirect
CODE_TTL_S = 60
#: clock skew allowed on ``exp`` and ``iat`` (the same as for session tokens)
LEEWAY_S = 30
_PKCE_CHALLENGE_LENGTH = 43  # base64url of a SHA-256 digest, unpadded
_B64URL = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")
_VERIFIER_CHARS = _B64URL | frozenset(".~")


class FlowError(ApiError):
    """The provider leg failed after the flow was found: the app is sent back with ``error=code``."""

    def __init__(self, code: str, message: str, redirect_uri: str) -> None:
        super().__init__(400, code, message)
        self.redirect_uri = redirect_uri


@dataclass(frozen=True, slots=True)
class Identity:
    """Who the provider says signed in."""

    provider: str
    subject: str
    email: str
    email_verified: bool


@dataclass(frozen=True, slots=True)
class SignedIn:
    """A one-time code redeemed: whom to open a session for."""

    user_id: str
    email: str
    time_joined: int
    #: the core created the user at this sign-in
    new_user: bool


def s256(verifier: str) -> str:
    """The PKCE S256 challenge of ``verifier`` (RFC 7636 section 4.2)."""
    return base64.urlsafe_b64encode(hashlib.sha256(verifier.encode("ascii")).digest()).rstrip(b"=").decode()


def valid_verifier(verifier: Any) -> bool:
    """RFC 7636 section 4.1: 43-128 characters of ``[A-Za-z0-9-._~]``."""
    return isinstance(verifier, str) and 43 <= len(verifier) <= 128 and set(verifier) <= _VERIFIER_CHARS


def valid_challenge(challenge: Any) -> bool:
    return (isinstance(challenge, str) and len(challenge) == _PKCE_CHALLENGE_LENGTH
            and set(challenge) <= _B64URL)


def _digest(secret: str) -> str:
    """What the database keeps of a state or one-time code: never the value that redeems it."""
    return hashlib.sha256(secret.encode()).hexdigest()


def invalid_state() -> ApiError:
    return ApiError(400, "invalid_state", "the sign-in flow is unknown, already used or expired; start again")


def redirect_uri_not_allowed() -> ApiError:
    return ApiError(400, "redirect_uri_not_allowed", "redirect_uri is not on this environment's allowlist")


def _with_query(url: str, params: dict[str, str]) -> str:
    return url + ("&" if "?" in url else "?") + urlencode(params)


class OAuthFlows:
    def __init__(self, db: Database, http: HttpClient, signatures: SignatureVerifier,
                 providers: dict[str, ProviderConfig], redirect_uris: tuple[str, ...], callback_base_url: str,
                 clock: Callable[[], float] = time.time) -> None:
        self._db = db
        self._http = http
        self._providers = providers
        self._oidc = {name: OidcProvider(p, http, signatures)
                      for name, p in providers.items() if p.kind == "oidc"}
        self.redirect_uris = redirect_uris
        self._callback_base = callback_base_url.rstrip("/")
        #: wall clock (unix s): flow and code expiry, ID-token ``exp``/``iat``
        self.clock = clock

    def provider_names(self) -> list[str]:
        return sorted(self._providers)

    def provider(self, name: str) -> ProviderConfig:
        config = self._providers.get(name)
        if config is None:
            raise ApiError(404, "unknown_provider", "no identity provider of that name is configured")
        return config

    def callback_url(self, name: str) -> str:
        """Where the provider sends the user back; registered at the provider as the redirect URI."""
        return f"{self._callback_base}/v1/auth/oauth/{name}/callback"

    # --- 1. start ---------------------------------------------------------------------------
    async def start(self, name: str, redirect_uri: str, app_challenge: str) -> tuple[str, int]:
        """The provider's authorization URL for a new flow, and when the flow expires (unix s)."""
        config = self.provider(name)
        if redirect_uri not in self.redirect_uris:  # exact match: no prefixes, no wildcards
            raise redirect_uri_not_allowed()
        if not valid_challenge(app_challenge):
            raise ApiError(400, "invalid_code_challenge", "code_challenge must be a base64url SHA-256 (S256)")
        if config.kind == "oidc":
            authorize = (await self._oidc[name].endpoints()).authorization_endpoint
        else:
            authorize = config.authorization_url
        state, nonce, verifier = (secrets.token_urlsafe(32) for _ in range(3))
        now = int(self.clock())
        expires_at = now + FLOW_TTL_S
        # abandoned flows and unredeemed codes go here, so neither table grows without a cron
        await self._db.batch([Statement("DELETE FROM oauth_flows WHERE expires_at <= ?", (now,)),
                              Statement("DELETE FROM oauth_codes WHERE expires_at <= ?", (now,))])
        await self._db.execute(
            "INSERT INTO oauth_flows (state_hash, provider, redirect_uri, app_challenge, code_verifier,"
            " nonce, expires_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
            (_digest(state), name, redirect_uri, app_challenge, verifier, nonce, expires_at))
        params = {"response_type": "code", "client_id": config.client_id,
                  "redirect_uri": self.callback_url(name), "scope": " ".join(config.scopes), "state": state,
                  "code_challenge": s256(verifier), "code_challenge_method": "S256"}
        if config.kind == "oidc":
            params["nonce"] = nonce
        return _with_query(authorize, params), expires_at

    # --- 2. callback ------------------------------------------------------------------------
    async def take_flow(self, name: str, state: str) -> dict[str, Any]:
        """The flow ``state`` names, deleted as it is read; 400 when unknown, spent or expired."""
        rows = (await self._db.execute(
            "DELETE FROM oauth_flows WHERE state_hash = ? RETURNING provider, redirect_uri, app_challenge,"
            " code_verifier, nonce, expires_at", (_digest(state),))).rows
        if not rows or rows[0]["provider"] != name or rows[0]["expires_at"] <= self.clock():
            raise invalid_state()
        return rows[0]

    async def identify(self, name: str, flow: dict[str, Any], code: str) -> Identity:
        """Redeem the provider's ``code`` and establish who signed in (FlowError on any refusal)."""
        config = self.provider(name)
        if config.kind == "oidc":
            return await self._oidc_identity(config, flow, code)
        return await self._github_identity(config, flow, code)

    async def issue_code(self, user: SignedIn, flow: dict[str, Any]) -> str:
        """A one-time code for the app, stored hashed and bound to the app's PKCE challenge."""
        code = secrets.token_urlsafe(32)
        await self._db.execute(
            "INSERT INTO oauth_codes (code_hash, user_id, email, time_joined, new_user, app_challenge,"
            " expires_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
            (_digest(code), user.user_id, user.email, user.time_joined, int(user.new_user),
             flow["app_challenge"], int(self.clock()) + CODE_TTL_S))
        return code

    # --- 3. exchange ------------------------------------------------------------------------
    async def redeem(self, code: str, verifier: str) -> SignedIn:
        """The user a one-time code was issued for; the code is spent whatever the outcome."""
        rows = (await self._db.execute(
            "DELETE FROM oauth_codes WHERE code_hash = ?"
            " RETURNING user_id, email, time_joined, new_user, app_challenge, expires_at",
            (_digest(code),))).rows
        refused = ApiError(400, "invalid_code", "the code is unknown, already used, expired or not yours")
        if not rows or rows[0]["expires_at"] <= self.clock():
            raise refused
        row = rows[0]
        if not hmac.compare_digest(s256(verifier), str(row["app_challenge"])):
            raise refused
        return SignedIn(user_id=str(row["user_id"]), email=str(row["email"]),
                        time_joined=int(row["time_joined"]), new_user=bool(row["new_user"]))

    # --- provider legs ----------------------------------------------------------------------
    async def _token_request(self, config: ProviderConfig, url: str, flow: dict[str, Any],
                             code: str) -> dict[str, Any]:
        form = {"grant_type": "authorization_code", "code": code,
                "redirect_uri": self.callback_url(config.name), "code_verifier": flow["code_verifier"]}
        headers = {"content-type": "application/x-www-form-urlencoded", "accept": "application/json"}
        if config.token_auth == "client_secret_basic":  # noqa: S105 - a method name, not a secret  # RFC 6749 section 2.3.1: form-encode, then Basic
            pair = f"{quote_plus(config.client_id)}:{quote_plus(config.client_secret)}".encode()
            headers["authorization"] = "Basic " + base64.b64encode(pair).decode("ascii")
        else:
            form.update({"client_id": config.client_id, "client_secret": config.client_secret})
        try:
            resp = await self._http.request("POST", url, headers=headers, body=urlencode(form).encode())
        except HttpError:
            raise provider_unavailable(config.name) from None
        try:
            data = jsoncodec.loads(resp.body)
        except ValueError:
            raise provider_error(config.name, f"token endpoint HTTP {resp.status}, not JSON") from None
        if not isinstance(data, dict):
            raise provider_error(config.name, "token response is not an object")
        if resp.status != 200 or "error" in data:
            # an invalid, replayed or expired provider code: the user must start again
            log.warning("provider %s refused the code: %s", config.name, str(data.get("error"))[:64])
            raise FlowError("provider_code_refused", "the identity provider refused the sign-in; start again",
                            flow["redirect_uri"])
        return data

    async def _oidc_identity(self, config: ProviderConfig, flow: dict[str, Any], code: str) -> Identity:
        provider = self._oidc[config.name]
        endpoints = await provider.endpoints()
        tokens = await self._token_request(config, endpoints.token_endpoint, flow, code)
        id_token = tokens.get("id_token")
        if not isinstance(id_token, str):
            raise FlowError("invalid_id_token", "the identity provider sent no ID token",
                            flow["redirect_uri"])
        claims = await self.verify_id_token(provider, id_token, flow["nonce"], flow["redirect_uri"])
        email, verified = claims.get("email"), claims.get("email_verified")
        access = tokens.get("access_token")
        if not isinstance(email, str) and endpoints.userinfo_endpoint and isinstance(access, str):
            info = await get_json(self._http, config.name, endpoints.userinfo_endpoint,
                                  {"authorization": f"Bearer {access}"})
            # OpenID Connect Core 5.3.2: userinfo for another subject must not be used
            if not isinstance(info, dict) or info.get("sub") != claims["sub"]:
                raise provider_error(config.name, "userinfo for another subject")
            email, verified = info.get("email"), info.get("email_verified")
        if not isinstance(email, str) or "@" not in email:
            raise FlowError("email_required", "the identity provider shared no email address",
                            flow["redirect_uri"])
        return Identity(config.name, claims["sub"], email.strip().lower(), verified is True)

    async def verify_id_token(self, provider: OidcProvider, token: str, nonce: str,
                              redirect_uri: str = "") -> dict[str, Any]:
        """The claims of an ID token this flow may trust (OIDC Core 3.1.3.7); FlowError otherwise."""

        def refuse(message: str) -> FlowError:
            return FlowError("invalid_id_token", f"the ID token was refused: {message}", redirect_uri)

        config = provider.config
        try:
            jws = parse(token)
        except MalformedToken:
            raise refuse("malformed") from None
        if jws.header.get("alg") != "RS256":  # the signature port verifies RS256 only; never "none"
            raise refuse("algorithm not accepted")
        kid = jws.header.get("kid")
        key = await provider.jwks.key(kid) if isinstance(kid, str) and kid else None
        if key is None or not await provider.jwks.verify(key, jws.signing_input, jws.signature):
            raise refuse("bad signature")
        claims = jws.claims
        if claims.get("iss") != config.issuer:
            raise refuse("issued by someone else")
        aud = claims.get("aud")
        audiences = [aud] if isinstance(aud, str) else aud if isinstance(aud, list) else []
        if config.client_id not in audiences:
            raise refuse("meant for another client")
        if (len(audiences) > 1 or "azp" in claims) and claims.get("azp") != config.client_id:
            raise refuse("authorized party is another client")
        now = self.clock()
        exp, iat = claims.get("exp"), claims.get("iat")
        if not all(isinstance(t, int | float) and not isinstance(t, bool) for t in (exp, iat)):
            raise refuse("exp or iat missing")
        if exp <= now - LEEWAY_S:
            raise refuse("expired")
        if iat > now + LEEWAY_S:
            raise refuse("issued in the future")
        got = claims.get("nonce")
        if not isinstance(got, str) or not hmac.compare_digest(got.encode(), nonce.encode()):
            raise refuse("nonce does not match this sign-in")
        if not isinstance(claims.get("sub"), str) or not claims["sub"]:
            raise refuse("no subject")
        return claims

    async def _github_identity(self, config: ProviderConfig, flow: dict[str, Any], code: str) -> Identity:
        tokens = await self._token_request(config, config.token_url, flow, code)
        access = tokens.get("access_token")
        if not isinstance(access, str) or not access:
            raise provider_error(config.name, "token response without access_token")
        headers = {"authorization": f"Bearer {access}", "accept": "application/vnd.github+json"}
        user = await get_json(self._http, config.name, config.api_base_url + "/user", headers)
        emails = await get_json(self._http, config.name, config.api_base_url + "/user/emails", headers)
        if not isinstance(user, dict) or not isinstance(user.get("id"), int) or not isinstance(emails, list):
            raise provider_error(config.name, "user or emails of an unexpected shape")
        # only an address GitHub has verified: an unverified one may belong to someone else
        verified = [e for e in emails if isinstance(e, dict) and e.get("verified") is True
                    and isinstance(e.get("email"), str)]
        chosen = next((e for e in verified if e.get("primary") is True), verified[0] if verified else None)
        if chosen is None:
            raise FlowError("email_required", "the GitHub account has no verified email address",
                            flow["redirect_uri"])
        return Identity(config.name, str(user["id"]), chosen["email"].strip().lower(), True)
