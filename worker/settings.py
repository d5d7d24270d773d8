"""Gateway settings: bindings / environment variables become one typed value, once, at the edge.

Cloudflare passes bindings on ``env``; the ASGI entry passes ``TELESTACK_*``
environment variables with the prefix stripped. Both call :func:`from_mapping`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any


class SettingsError(ValueError):
    """A required binding is missing or malformed (names the key)."""


@dataclass(frozen=True, slots=True)
class Settings:
    admin_key: str
    #: collections document: {"collections": {name: {...}}} as JSON text
    collections_json: str
    auth_url: str = ""
    auth_api_key: str = ""
    #: access-token lifetime requested from the core (s): the window a revoked session's token still works
    auth_access_token_validity: int = 900
    #: required `iss` claim; empty = SuperTokens session tokens (which carry no `iss`; any `iss` is refused)
    auth_issuer: str = ""
    #: the admin key being rotated out, accepted until `admin_key_previous_until` (unix s)
    admin_key_previous: str = ""
    admin_key_previous_until: int = 0
    centrifugo_api_url: str = ""
    centrifugo_api_key: str = ""
    centrifugo_token_secret: str = ""
    centrifugo_ws_url: str = ""
    s3_endpoint: str = ""
    s3_public_endpoint: str = ""
    s3_bucket: str = ""
    s3_region: str = "us-east-1"
    s3_access_key_id: str = ""
    s3_secret_access_key: str = ""
    #: outbox events drained per request after the request's own write
    outbox_drain_per_request: int = 20
    #: lifetime of presigned storage URLs, seconds (capped at 7 days by S3)
    storage_url_ttl: int = 900
    #: largest upload the gateway signs, bytes (the presigned PUT pins the exact Content-Length)
    storage_max_upload_bytes: int = 100 * 1024 * 1024
    #: browser origins answered with CORS headers (``*`` = every origin); the binding is one comma-separated
    #: string, since an origin never holds a comma; empty = no browser app
    cors_allowed_origins: tuple[str, ...] = ()
    #: SMTP server for verification and reset mail (empty host = no mail; those endpoints answer 503)
    smtp_host: str = ""
    smtp_port: int = 587
    #: ``starttls`` (upgrade after connecting), ``tls`` (implicit TLS, port 465) or ``none`` (loopback only)
    smtp_security: str = "starttls"
    smtp_username: str = ""
    smtp_password: str = ""
    #: the From address of the gateway's mail (over SMTP or through the relay)
    smtp_from: str = ""
    #: the stack's mail relay (Mailpit's send API, worker/mail_relay.py); set = mail goes there over HTTP
    #: instead of SMTP (cloud stacks: the Worker has no SMTP client)
    mail_relay_url: str = ""
    #: the relay's send-API key (basic auth ``telestack:<key>``)
    mail_relay_key: str = ""
    #: the app page links in mail lead to; it receives ``?action=verify-email|reset-password&token=...``
    auth_action_url: str = ""
    #: config/auth.yaml as JSON text (user-metadata rules); empty = the defaults
    auth_config_json: str = ""
    #: identity providers, JSON ``{name: {...}}`` (see worker/oidc_providers.py); empty = no OAuth sign-in
    oauth_providers_json: str = ""
    #: their client secrets, JSON ``{name: secret}``
    oauth_client_secrets: str = ""
    #: the app redirect URIs a sign-in may return to (exact match), comma-separated like the CORS origins
    oauth_redirect_uris: tuple[str, ...] = ()
    #: the gateway's public base URL: providers redirect to ``<it>/v1/auth/oauth/<name>/callback``
    oauth_callback_base_url: str = ""


_KEYS: dict[str, str] = {
    "admin_key": "ADMIN_KEY",
    "collections_json": "COLLECTIONS",
    "auth_url": "AUTH_URL",
    "auth_api_key": "AUTH_API_KEY",
    "auth_access_token_validity": "AUTH_ACCESS_TOKEN_VALIDITY",
    "auth_issuer": "AUTH_ISSUER",
    "admin_key_previous": "ADMIN_KEY_PREVIOUS",
    "admin_key_previous_until": "ADMIN_KEY_PREVIOUS_UNTIL",
    "centrifugo_api_url": "CENTRIFUGO_API_URL",
    "centrifugo_api_key": "CENTRIFUGO_API_KEY",
    "centrifugo_token_secret": "CENTRIFUGO_TOKEN_SECRET",
    "centrifugo_ws_url": "CENTRIFUGO_WS_URL",
    "s3_endpoint": "S3_ENDPOINT",
    "s3_public_endpoint": "S3_PUBLIC_ENDPOINT",
    "s3_bucket": "S3_BUCKET",
    "s3_region": "S3_REGION",
    "s3_access_key_id": "S3_ACCESS_KEY_ID",
    "s3_secret_access_key": "S3_SECRET_ACCESS_KEY",
    "outbox_drain_per_request": "OUTBOX_DRAIN_PER_REQUEST",
    "storage_url_ttl": "STORAGE_URL_TTL",
    "storage_max_upload_bytes": "STORAGE_MAX_UPLOAD_BYTES",
    "cors_allowed_origins": "CORS_ALLOWED_ORIGINS",
    "smtp_host": "SMTP_HOST",
    "smtp_port": "SMTP_PORT",
    "smtp_security": "SMTP_SECURITY",
    "smtp_username": "SMTP_USERNAME",
    "smtp_password": "SMTP_PASSWORD",
    "smtp_from": "SMTP_FROM",
    "mail_relay_url": "MAIL_RELAY_URL",
    "mail_relay_key": "MAIL_RELAY_KEY",
    "auth_action_url": "AUTH_ACTION_URL",
    "auth_config_json": "AUTH_CONFIG",
    "oauth_providers_json": "OAUTH_PROVIDERS",
    "oauth_client_secrets": "OAUTH_CLIENT_SECRETS",
    "oauth_redirect_uris": "OAUTH_REDIRECT_URIS",
    "oauth_callback_base_url": "OAUTH_CALLBACK_BASE_URL",
}
#: fields whose binding holds a credential: a Worker ``secret_text`` binding and a Pulumi secret on the
#: local stack, never plain text anywhere the stack writes it
_SECRETS = frozenset({
    "admin_key",
    "admin_key_previous",
    "auth_api_key",
    "centrifugo_api_key",
    "centrifugo_token_secret",
    "s3_access_key_id",
    "s3_secret_access_key",
    "smtp_password",
    "oauth_client_secrets",
    "mail_relay_key",
})
_INTEGERS = frozenset(f.name for f in fields(Settings) if f.type == "int")
_LISTS = frozenset(f.name for f in fields(Settings) if f.type == "tuple[str, ...]")
_REQUIRED = ("admin_key", "collections_json")


def binding_names() -> dict[str, str]:
    """Field name -> binding/env name (``TELESTACK_`` prefixed for the ASGI entry)."""
    return dict(_KEYS)


def secret_binding_names() -> frozenset[str]:
    """Binding names whose value is a credential (:data:`_SECRETS`)."""
    return frozenset(_KEYS[name] for name in _SECRETS)


def from_mapping(env: Mapping[str, Any]) -> Settings:
    values: dict[str, Any] = {}
    for field_name, key in _KEYS.items():
        raw = env.get(key)
        if raw is None or raw == "":
            if field_name in _REQUIRED:
                raise SettingsError(f"gateway setting {key} is required")
            continue
        if field_name in _INTEGERS:
            try:
                values[field_name] = int(raw)
            except (TypeError, ValueError):
                raise SettingsError(f"gateway setting {key} must be an integer") from None
        elif field_name in _LISTS:
            values[field_name] = split_list(str(raw))
        else:
            values[field_name] = str(raw)
    return Settings(**values)


def split_list(raw: str) -> tuple[str, ...]:
    """A comma-separated binding as its items, blanks around and empty items dropped."""
    return tuple(item.strip() for item in raw.split(",") if item.strip())


def join_list(items: tuple[str, ...] | list[str]) -> str:
    """The binding text of a list setting: what :func:`split_list` reads back."""
    if any("," in item for item in items):
        raise SettingsError(f"a list setting's item cannot hold a comma: {items!r}")
    return ",".join(items)
