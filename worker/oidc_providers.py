"""Identity providers the gateway signs users in with: their configuration, presets, and discovery.

A deployment lists its providers in ``OAUTH_PROVIDERS`` (JSON, written from
``config/environments/<env>.yaml`` by the infra) and their client secrets in the secret binding
``OAUTH_CLIENT_SECRETS`` (JSON ``{name: secret}``). Two kinds:

- ``oidc``: any OpenID Connect issuer (the kind of any entry with an ``issuer``). Endpoints and the
  JWKS address come from its discovery document (``{issuer}/.well-known/openid-configuration``),
  whose ``issuer`` must equal the configured one exactly (OpenID Connect Discovery 1.0 section 4.3).
  The ``google`` preset is this kind with Google's issuer.
- ``github``: OAuth 2.0 without OpenID Connect (GitHub issues no ID token). The user and their
  verified emails come from its REST API (``GET /user``, ``GET /user/emails``). Its base URLs are
  settings so tests can point them at a local server speaking GitHub's API shape.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from worker import jsoncodec
from worker.http import ApiError
from worker.jwks import JwksCache
from worker.outbound import HttpClient, HttpError
from worker.signatures import SignatureVerifier

#: a provider's name is a URL segment and the CDI ``thirdPartyId``
NAME = re.compile(r"^[a-z][a-z0-9-]{0,31}$")
TOKEN_AUTH_METHODS = ("client_secret_basic", "client_secret_post")
#: how long a discovery document is reused by an isolate before it is fetched again
DISCOVERY_TTL_S = 3600.0

#: what each preset fills in; the deployment's own keys win
PRESETS: dict[str, dict[str, Any]] = {
    "google": {
        "kind": "oidc",
        "issuer": "https://accounts.google.com",
        "scopes": ["openid", "email", "profile"],
        "token_auth": "client_secret_post",
    },
    "github": {
        "kind": "github",
        "authorization_url": "https://github.com/login/oauth/authorize",
        "token_url": "https://github.com/login/oauth/access_token",
        "api_base_url": "https://api.github.com",
        "scopes": ["read:user", "user:email"],
        "token_auth": "client_secret_post",
    },
}
_KINDS = ("oidc", "github")
_KEYS = {"kind", "preset", "issuer", "client_id", "scopes", "token_auth", "authorization_url", "token_url",
         "api_base_url"}


class ProviderConfigError(ValueError):
    """A provider entry is unusable (the message names the provider and key)."""


@dataclass(frozen=True, slots=True)
class ProviderConfig:
    name: str
    kind: str  # "oidc" | "github"
    client_id: str
    client_secret: str
    scopes: tuple[str, ...]
    token_auth: str
    #: oidc: the exact issuer the discovery document and every ID token must name
    issuer: str = ""
    #: github: fixed endpoints (an OIDC provider's come from discovery)
    authorization_url: str = ""
    token_url: str = ""
    api_base_url: str = ""


def parse_providers(providers_json: str, secrets_json: str) -> dict[str, ProviderConfig]:
    """The configured providers by name; :class:`ProviderConfigError` names what is wrong."""
    if not providers_json:
        return {}
    raw = _json_object(providers_json, "OAUTH_PROVIDERS")
    secrets = _json_object(secrets_json, "OAUTH_CLIENT_SECRETS") if secrets_json else {}
    return {name: _provider(name, entry, secrets.get(name)) for name, entry in raw.items()}


def _json_object(text: str, what: str) -> dict[str, Any]:
    try:
        value = jsoncodec.loads(text)
    except ValueError:
        raise ProviderConfigError(f"{what} is not JSON") from None
    if not isinstance(value, dict):
        raise ProviderConfigError(f"{what} must be a JSON object")
    return value


def _provider(name: str, entry: Any, secret: Any) -> ProviderConfig:
    where = f"OAUTH_PROVIDERS.{name}"
    if not NAME.match(name):
        raise ProviderConfigError(f"{where}: a provider name is lower-case letters, digits and '-'")
    if not isinstance(entry, dict):
        raise ProviderConfigError(f"{where} must be an object")
    unknown = sorted(set(entry) - _KEYS)
    if unknown:
        raise ProviderConfigError(f"{where}.{unknown[0]}: unknown key")
    preset_name = entry.get("preset", name if name in PRESETS else None)
    if preset_name is not None and preset_name not in PRESETS:
        raise ProviderConfigError(f"{where}.preset: one of {', '.join(sorted(PRESETS))}")
    merged = {**PRESETS.get(preset_name or "", {}), **{k: v for k, v in entry.items() if k != "preset"}}
    kind = merged.get("kind") or ("oidc" if merged.get("issuer") else None)  # generic OIDC by issuer
    if kind is None:
        raise ProviderConfigError(f"{where}.issuer is required (an OpenID Connect issuer), or name a preset")
    if kind not in _KINDS:
        raise ProviderConfigError(f"{where}.kind: one of {', '.join(_KINDS)}")
    for key in ("client_id",) + (("issuer",) if kind == "oidc" else ("authorization_url", "token_url",
                                                                       "api_base_url")):
        if not isinstance(merged.get(key), str) or not merged[key]:
            raise ProviderConfigError(f"{where}.{key} is required")
    for key in ("issuer", "authorization_url", "token_url", "api_base_url"):
        if merged.get(key) and not str(merged[key]).startswith(("https://", "http://")):
            raise ProviderConfigError(f"{where}.{key} must be an http(s) URL")
    if not isinstance(secret, str) or not secret:
        raise ProviderConfigError(f"OAUTH_CLIENT_SECRETS.{name} is required (a stack secret)")
    scopes = merged.get("scopes", ["openid", "email"])
    if not isinstance(scopes, list) or not all(isinstance(s, str) and s and " " not in s for s in scopes):
        raise ProviderConfigError(f"{where}.scopes must be a list of scope names")
    if kind == "oidc" and "openid" not in scopes:
        raise ProviderConfigError(f"{where}.scopes must include 'openid'")
    token_auth = merged.get("token_auth", "client_secret_basic")
    if token_auth not in TOKEN_AUTH_METHODS:
        raise ProviderConfigError(f"{where}.token_auth: one of {', '.join(TOKEN_AUTH_METHODS)}")
    return ProviderConfig(
        name=name, kind=kind, client_id=merged["client_id"], client_secret=secret, scopes=tuple(scopes),
        token_auth=token_auth, issuer=merged.get("issuer", ""),
        authorization_url=merged.get("authorization_url", ""), token_url=merged.get("token_url", ""),
        api_base_url=str(merged.get("api_base_url", "")).rstrip("/"),
    )


@dataclass(frozen=True, slots=True)
class OidcEndpoints:
    """The parts of a discovery document the flow uses."""

    issuer: str
    authorization_endpoint: str
    token_endpoint: str
    jwks_uri: str
    userinfo_endpoint: str


def provider_unavailable(name: str) -> ApiError:
    return ApiError(503, "oauth_provider_unavailable", f"the identity provider {name!r} is unreachable")


def provider_error(name: str, what: str) -> ApiError:
    return ApiError(502, "oauth_provider_error", f"the identity provider {name!r} gave an unexpected answer "
                                                 f"({what})")


async def get_json(http: HttpClient, name: str, url: str, headers: dict[str, str] | None = None) -> Any:
    """``GET url`` as JSON; 503 when unreachable, 502 for anything but a 200 with JSON."""
    try:
        resp = await http.request("GET", url, headers={"accept": "application/json", **(headers or {})})
    except HttpError:
        raise provider_unavailable(name) from None
    if resp.status != 200:
        raise provider_error(name, f"HTTP {resp.status} from {url.split('?', 1)[0]}")
    try:
        return jsoncodec.loads(resp.body)
    except ValueError:
        raise provider_error(name, "not JSON") from None


class OidcProvider:
    """One OpenID Connect provider's discovery document and signing keys, cached per isolate."""

    def __init__(self, config: ProviderConfig, http: HttpClient, signatures: SignatureVerifier,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.config = config
        self._http = http
        self._clock = clock
        self._endpoints: OidcEndpoints | None = None
        self._fetched_at = 0.0
        self.jwks = JwksCache(self._fetch_jwks, signatures)

    async def endpoints(self) -> OidcEndpoints:
        if self._endpoints is None or self._clock() - self._fetched_at > DISCOVERY_TTL_S:
            self._endpoints = await self._discover()
            self._fetched_at = self._clock()
        return self._endpoints

    async def _discover(self) -> OidcEndpoints:
        name, issuer = self.config.name, self.config.issuer
        doc = await get_json(self._http, name, issuer.rstrip("/") + "/.well-known/openid-configuration")
        if not isinstance(doc, dict):
            raise provider_error(name, "discovery document is not an object")
        if doc.get("issuer") != issuer:  # a document for another issuer must not be trusted
            raise provider_error(name, "discovery document names another issuer")
        methods = doc.get("code_challenge_methods_supported")
        if isinstance(methods, list) and "S256" not in methods:
            raise provider_error(name, "the provider does not support PKCE with S256")
        values = {}
        for key in ("authorization_endpoint", "token_endpoint", "jwks_uri"):
            value = doc.get(key)
            if not isinstance(value, str) or not value.startswith(("https://", "http://")):
                raise provider_error(name, f"discovery document without {key}")
            values[key] = value
        userinfo = doc.get("userinfo_endpoint")
        return OidcEndpoints(issuer=issuer, userinfo_endpoint=userinfo if isinstance(userinfo, str) else "",
                             **values)

    async def _fetch_jwks(self) -> tuple[list[dict[str, Any]], int | None]:
        endpoints = await self.endpoints()
        doc = await get_json(self._http, self.config.name, endpoints.jwks_uri)
        keys = doc.get("keys") if isinstance(doc, dict) else None
        if not isinstance(keys, list):
            raise provider_error(self.config.name, "JWKS without keys")
        return [k for k in keys if isinstance(k, dict)], None
