"""The one mapping from stack settings to the gateway's bindings, plain and secret.

Both targets apply it: the local renderer as the gateway process's
``TELESTACK_<NAME>`` environment (plain ones as env, secret ones as secret env),
the cloud stack as the Worker's ``plain_text``/``secret_text`` bindings. Binding
names, and which of them are secret, come from :mod:`worker.settings`, which
reads them; a value left out here is the gateway's own default.

``COLLECTIONS`` and ``AUTH_CONFIG`` are not in it: the Worker gets them in its bundle (the generated
``telestack_config`` module of :mod:`infra.worker_bundle`), the local gateway reads ``config/``
itself; both through ``worker.adapters.config_files.config_settings``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from infra.endpoints import Endpoints
from infra.environment import Environment
from infra.environment_rules import oauth_provider_entries
from infra.settings import Secrets
from worker import jsoncodec
from worker import settings as gateway_settings


@dataclass(frozen=True)
class GatewayBindings:
    #: binding name -> text
    plain: dict[str, str]
    #: binding name -> a Pulumi secret (or, in the rotation runbook's tests, the plain value)
    secret: dict[str, Any]


def gateway_bindings(env: Environment, secrets: Secrets, endpoints: Endpoints) -> GatewayBindings:
    """The gateway's bindings for one stack: every setting the stack decides, keyed by binding name."""
    rotating_admin = secrets.admin_key_previous is not None  # an admin key rotation's overlap window
    by_field: dict[str, Any] = {
        "admin_key": secrets.admin_key,
        "admin_key_previous": secrets.admin_key_previous,
        "admin_key_previous_until": secrets.admin_key_previous_valid_until if rotating_admin else None,
        "auth_url": endpoints.auth_url,
        "auth_api_key": secrets.auth_api_key,
        "auth_access_token_validity": env.auth.access_token_validity,
        "auth_issuer": env.auth.issuer or None,
        "centrifugo_api_url": endpoints.centrifugo_api_url,
        "centrifugo_api_key": secrets.centrifugo_api_key,
        "centrifugo_token_secret": secrets.centrifugo_token_secret,
        "centrifugo_ws_url": endpoints.centrifugo_ws_url,
        "s3_endpoint": endpoints.s3_endpoint,
        "s3_public_endpoint": endpoints.s3_public_endpoint,
        "s3_bucket": env.storage.bucket,
        "s3_region": env.storage.region,
        "s3_access_key_id": secrets.s3_access_key_id,
        "s3_secret_access_key": secrets.s3_secret_access_key,
        "outbox_drain_per_request": env.gateway.outbox_drain_per_request,
        "storage_url_ttl": env.storage.url_ttl,
        "storage_max_upload_bytes": env.storage.max_upload_bytes,
        "cors_allowed_origins": gateway_settings.join_list(env.allowed_origins) or None,
        **_mail(env, secrets),
        "oauth_providers_json": jsoncodec.dumps(oauth_provider_entries(env)) if env.oauth else None,
        "oauth_client_secrets": secrets.oauth_client_secrets,
        "oauth_redirect_uris": gateway_settings.join_list(env.oauth.redirect_uris) if env.oauth else None,
        "oauth_callback_base_url": oauth_callback_base_url(env, endpoints) if env.oauth else None,
    }
    names = gateway_settings.binding_names()
    secret_names = gateway_settings.secret_binding_names()
    plain: dict[str, str] = {}
    secret: dict[str, Any] = {}
    for field_name, value in by_field.items():
        if value is None:
            continue
        name = names[field_name]
        if name in secret_names:
            secret[name] = value
        else:
            plain[name] = str(value)
    return GatewayBindings(plain=plain, secret=secret)


def _mail(env: Environment, secrets: Secrets) -> dict[str, Any]:
    """Where the gateway sends mail: a cloud stack's relay over HTTP (``mail.public_url``, its key a
    secret), or SMTP to the local stack's Mailpit on the loopback address; nothing without ``mail``."""
    if env.mail is None:
        return {}
    common = {"smtp_from": env.mail.from_address, "auth_action_url": env.mail.action_url}
    if env.mail.public_url:  # only cloud environments have one (check_local refuses it)
        return {**common, "mail_relay_url": env.mail.public_url, "mail_relay_key": secrets.mail_relay_key}
    return {**common, "smtp_host": env.bind_host, "smtp_port": env.mail.smtp_port, "smtp_security": "none"}


#: gateway settings the stack never sets: COLLECTIONS and AUTH_CONFIG come from config/ on both targets
#: (the Worker's bundle, the local gateway's own read: see above);
#: SMTP credentials, because the one SMTP server a gateway of a stack speaks to is its local Mailpit,
#: which takes none (a cloud stack's provider credentials are its mail relay's, infra/mail_relay.py)
NOT_FROM_STACK = frozenset({"collections_json", "auth_config_json", "smtp_username", "smtp_password"})


def oauth_callback_base_url(env: Environment, endpoints: Endpoints) -> str | None:
    """The gateway's public base URL, which providers redirect to (None = not known: no OAuth callback)."""
    custom = env.cloudflare.custom_domain if env.cloudflare else ""
    return env.gateway.public_url or endpoints.gateway_url or (f"https://{custom}" if custom else None)
