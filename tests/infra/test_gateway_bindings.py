"""infra/gateway_bindings.py: every gateway setting the stack decides, once, for both targets."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import yaml

from infra import services
from infra.endpoints import cloud_endpoints, local_endpoints
from infra.gateway_bindings import NOT_FROM_STACK, gateway_bindings
from infra.settings import load_environment, parse_environment
from tests.support.environment_files import CLOUD_MAIL, environment_doc, with_cloud_mail
from tests.support.stack_settings import resolve, stack_settings
from worker import settings as gateway_settings

ROTATING = {"adminKeyPrevious": "adm-OLD-000000000000", "adminKeyPreviousValidUntil": "1900000000",
            "oauthClientSecrets": '{"google": "g-secret"}'}
TUNED = ("target: local\nallowed_origins: ['http://localhost:3000', 'https://app.example.com']\n"
         "auth: {access_token_validity: 600, issuer: https://issuer.example.com}\n"
         "storage: {url_ttl: 300, max_upload_bytes: 1048576}\n"
         "mail: {action_url: 'http://localhost:5173/auth/action', smtp_port: 2025}\n"
         "oauth: {redirect_uris: ['http://localhost:3000/signed-in'],\n"
         "        providers: {google: {client_id: g-1}}}\n")


def _values(config: dict[str, str], env_text: str | None = None) -> tuple[dict[str, str], dict[str, Any]]:
    s = stack_settings(config, env_text)

    def build() -> dict[str, Any]:
        mapped = gateway_bindings(s.environment, s.secrets, local_endpoints(s.environment))
        return {"plain": mapped.plain, "secret": mapped.secret}

    both = resolve(build)
    return both["plain"], both["secret"]


def _cloud_mail_values() -> tuple[dict[str, str], dict[str, Any]]:
    """A cloud environment with mail: the gateway's bindings (resolved)."""
    env_text = yaml.safe_dump(with_cloud_mail(environment_doc("dev")))
    s = stack_settings({"mailRelayKey": RELAY_KEY}, env_text, env_name="dev")

    def build() -> dict[str, Any]:
        mapped = gateway_bindings(s.environment, s.secrets, cloud_endpoints(s.environment))
        return {"plain": mapped.plain, "secret": mapped.secret}

    both = resolve(build)
    return both["plain"], both["secret"]


RELAY_KEY = "relay-key-0123456789abcdefghijklmnopq"


def test_every_gateway_setting_has_a_value_when_the_stack_sets_everything() -> None:
    """Every setting is set by some stack: mail goes over SMTP on the local target and through the relay
    on a cloud one, so it takes both to cover the SMTP_* and MAIL_RELAY_* bindings."""
    plain, secret = _values(ROTATING, TUNED)
    cloud_plain, cloud_secret = _cloud_mail_values()
    names = gateway_settings.binding_names()
    expected = {names[f] for f in names if f not in NOT_FROM_STACK}
    assert set(plain) | set(secret) | set(cloud_plain) | set(cloud_secret) == expected
    assert not set(plain) & set(secret) and not set(cloud_plain) & set(cloud_secret)


def test_cloud_mail_goes_to_the_relay_with_its_key_as_a_secret_and_no_smtp() -> None:
    plain, secret = _cloud_mail_values()
    assert plain["MAIL_RELAY_URL"] == CLOUD_MAIL["public_url"]
    assert secret["MAIL_RELAY_KEY"] == RELAY_KEY and "MAIL_RELAY_KEY" not in plain
    assert plain["SMTP_FROM"] == CLOUD_MAIL["from_address"]
    assert plain["AUTH_ACTION_URL"] == CLOUD_MAIL["action_url"]
    assert not {"SMTP_HOST", "SMTP_PORT", "SMTP_SECURITY"} & set(plain)  # the Worker speaks no SMTP
    parsed = gateway_settings.from_mapping({**plain, **secret, "COLLECTIONS": '{"collections": {}}'})
    assert (parsed.mail_relay_url, parsed.mail_relay_key) == (CLOUD_MAIL["public_url"], RELAY_KEY)


def test_secret_bindings_are_exactly_the_ones_the_gateway_declares_secret() -> None:
    plain, secret = _values(ROTATING, TUNED)
    _, cloud_secret = _cloud_mail_values()
    names = gateway_settings.binding_names()
    never_from_stack = {names[f] for f in NOT_FROM_STACK}  # SMTP_PASSWORD: the stack's Mailpit takes none
    assert set(secret) | set(cloud_secret) == gateway_settings.secret_binding_names() - never_from_stack
    assert not set(plain) & gateway_settings.secret_binding_names()
    assert secret["ADMIN_KEY_PREVIOUS"] == ROTATING["adminKeyPrevious"]
    assert plain["ADMIN_KEY_PREVIOUS_UNTIL"] == ROTATING["adminKeyPreviousValidUntil"]


def test_unset_settings_are_left_out_so_the_gateways_defaults_apply() -> None:
    plain, secret = _values({})
    left_out = {"ADMIN_KEY_PREVIOUS", "ADMIN_KEY_PREVIOUS_UNTIL", "AUTH_ACCESS_TOKEN_VALIDITY", "AUTH_ISSUER",
                "STORAGE_URL_TTL", "STORAGE_MAX_UPLOAD_BYTES", "OAUTH_PROVIDERS", "OAUTH_CLIENT_SECRETS",
                "OAUTH_REDIRECT_URIS", "OAUTH_CALLBACK_BASE_URL"}
    assert not left_out & (set(plain) | set(secret))
    parsed = gateway_settings.from_mapping({**plain, **secret, "COLLECTIONS": '{"collections": {}}'})
    defaults = gateway_settings.Settings(admin_key="x", collections_json="{}")
    for field in ("auth_access_token_validity", "auth_issuer", "storage_url_ttl", "storage_max_upload_bytes"):
        assert getattr(parsed, field) == getattr(defaults, field), field


def test_the_local_gateway_process_gets_the_mapping_as_telestack_env(tmp_path: Path) -> None:
    s = stack_settings(ROTATING, TUNED, state=tmp_path)
    plain, secret = _values(ROTATING, TUNED)

    def build() -> dict[str, Any]:
        spec = services.gateway(s, local_endpoints(s.environment), ())
        return {"env": dict(spec.env), "secret_env": dict(spec.secret_env)}

    spec = resolve(build)
    assert {k: v for k, v in spec["env"].items() if k.removeprefix("TELESTACK_") in plain} == {
        f"TELESTACK_{k}": v for k, v in plain.items()}
    assert spec["secret_env"] == {f"TELESTACK_{k}": v for k, v in secret.items()}


def test_cloud_bindings_use_the_environments_public_urls() -> None:
    _, env = load_environment("dev")
    s = stack_settings({}, env_name="dev")
    mapped = gateway_bindings(env, s.secrets, cloud_endpoints(env))
    assert mapped.plain["AUTH_URL"] == env.auth.public_url
    assert mapped.plain["CENTRIFUGO_WS_URL"] == env.realtime.public_ws_url
    assert mapped.plain["S3_PUBLIC_ENDPOINT"] == (env.storage.public_endpoint or env.storage.endpoint)
    tuned = dataclasses.replace(env, storage=parse_environment(TUNED, "t.yaml").storage)
    assert gateway_bindings(tuned, s.secrets, cloud_endpoints(env)).plain["STORAGE_URL_TTL"] == "300"


def test_mail_points_the_gateway_at_the_stacks_mailpit_without_credentials() -> None:
    plain, secret = _values({}, TUNED)
    assert (plain["SMTP_HOST"], plain["SMTP_PORT"], plain["SMTP_SECURITY"]) == ("127.0.0.1", "2025", "none")
    assert plain["AUTH_ACTION_URL"] == "http://localhost:5173/auth/action"
    assert "SMTP_PASSWORD" not in plain and "SMTP_PASSWORD" not in secret
    plain, _ = _values({}, "target: local\n")
    assert not {"SMTP_HOST", "SMTP_FROM", "AUTH_ACTION_URL"} & set(plain)  # no mail section: no mail


def test_oauth_providers_reach_the_gateway_as_it_reads_them() -> None:
    plain, secret = _values(ROTATING, TUNED)
    parsed = gateway_settings.from_mapping({**plain, **secret, "COLLECTIONS": '{"collections": {}}'})
    from worker.oidc_providers import parse_providers

    providers = parse_providers(parsed.oauth_providers_json, parsed.oauth_client_secrets)
    assert providers["google"].client_id == "g-1" and providers["google"].client_secret == "g-secret"
    assert providers["google"].issuer == "https://accounts.google.com"  # the preset
    assert parsed.oauth_redirect_uris == ("http://localhost:3000/signed-in",)
    assert parsed.oauth_callback_base_url == "http://127.0.0.1:8787"  # the local gateway
