"""infra/environment_rules.py: the shipped cloud environments load; a rule across keys is refused by key."""

from __future__ import annotations

import re
from typing import Any

import pytest
import yaml

from infra.config_error import StackConfigError
from infra.settings import load_environment, parse_environment
from tests.support.environment_files import CLOUD, CLOUD_MAIL, MAILPIT_IMAGE, environment_doc, refused


@pytest.mark.parametrize("name", CLOUD)
def test_shipped_cloud_environments_load(name: str) -> None:
    path, env = load_environment(name)
    assert path.name == f"{name}.yaml"
    assert env.target == "docker" and env.cloudflare and env.docker
    assert env.cloudflare.worker_name.endswith(name) and env.storage.bucket.endswith(name)


def test_cross_key_rules() -> None:
    doc = environment_doc("staging")
    del doc["docker"]["redis"]
    refused(doc, r"docker\.redis: required when docker\.centrifugo\.replicas > 1")
    doc = environment_doc("staging")
    del doc["cloudflare"]["zone_id_config"]
    refused(doc, r"cloudflare\.zone_id_config: required with a route or custom_domain")
    doc = environment_doc("prod")
    doc["storage"]["endpoint"] = ""
    refused(doc, r"storage\.endpoint: required when storage\.kind is external")
    doc = environment_doc("dev")
    del doc["docker"]["storage"]
    refused(doc, r"docker\.storage: required key is missing \(storage\.kind is seaweedfs\)")


# --- one honest key per knob ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("section", "key", "value", "pointer"),
    [
        ("", "domain", "telestack.example.com", "cloudflare.custom_domain"),
        ("realtime", "replicas", 2, "docker.centrifugo.replicas"),
        ("realtime", "version", "6.9.1", "docker.centrifugo.image.tag"),
    ],
)
def test_removed_key_is_refused_with_its_replacement(
    section: str, key: str, value: Any, pointer: str
) -> None:
    doc = environment_doc("staging")
    (doc[section] if section else doc)[key] = value
    dotted = f"{section}.{key}" if section else key
    refused(doc, rf"{re.escape(dotted)}: no longer a setting: .*{re.escape(pointer)}")


@pytest.mark.parametrize(
    ("env_name", "section", "what"),
    [("dev", "postgres", "PostgreSQL"), ("staging", "redis", "Redis"), ("dev", "storage", "S3 server")],
)
def test_replicas_of_a_single_container_service_arerefused(env_name: str, section: str, what: str) -> None:
    doc = environment_doc(env_name)
    doc["docker"][section]["replicas"] = 2
    refused(doc, rf"docker\.{section}\.replicas: 2: .*{what}.* runs as one")
    doc["docker"][section]["replicas"] = 1
    parse_environment(yaml.safe_dump(doc), "x.yaml")  # 1 is what runs: accepted


def test_centrifugo_replicas_is_the_one_key_and_honoured() -> None:
    _, staging = load_environment("staging")
    assert staging.docker and staging.docker.centrifugo.replicas == 2 and staging.docker.redis
    doc = environment_doc("dev")
    doc["docker"]["redis"] = {"image": {"repository": "redis", "tag": "7.4.5-bookworm"}}
    refused(doc, r"docker\.redis: only used when docker\.centrifugo\.replicas > 1")
    doc["docker"]["centrifugo"]["replicas"] = 4
    env = parse_environment(yaml.safe_dump(doc), "x.yaml")
    assert env.docker and env.docker.centrifugo.replicas == 4


@pytest.mark.parametrize(
    ("tag", "ok"), [("v6.9.1", True), ("6.10.0", True), ("v5.4.9", False), ("v7.0.0", False)]
)
def test_centrifugo_image_is_the_version_and_must_be_v6(tag: str, ok: bool) -> None:
    doc = environment_doc()
    doc["docker"]["centrifugo"]["image"]["tag"] = tag
    if ok:
        env = parse_environment(yaml.safe_dump(doc), "x.yaml")
        assert env.docker and env.docker.centrifugo.image.ref == f"centrifugo/centrifugo:{tag}"
    else:
        refused(doc, rf"docker\.centrifugo\.image\.tag: '{tag}' is not Centrifugo v6")


@pytest.mark.parametrize("repository", ["minio/minio", "docker.io/minio/minio"])
def test_an_unserved_image_repository_is_refused_with_where_it_moved(repository: str) -> None:
    doc = environment_doc("staging")
    doc["docker"]["storage"]["image"]["repository"] = repository
    refused(doc, rf"docker\.storage\.image\.repository: {re.escape(repository)} is no longer served .*"
                 r"use quay\.io/minio/minio")


# --- optional gateway settings ------------------------------------------------------------------


def test_optional_gateway_settings_parse_and_default_to_unset() -> None:
    _, env = load_environment("dev")
    assert (env.auth.access_token_validity, env.auth.issuer) == (None, "")
    assert (env.storage.url_ttl, env.storage.max_upload_bytes) == (None, None)
    doc = environment_doc()
    doc["auth"] |= {"access_token_validity": 600, "issuer": "https://issuer.example.com"}
    doc["storage"] |= {"url_ttl": 604800, "max_upload_bytes": None}
    env = parse_environment(yaml.safe_dump(doc), "x.yaml")
    assert (env.auth.access_token_validity, env.auth.issuer) == (600, "https://issuer.example.com")
    assert (env.storage.url_ttl, env.storage.max_upload_bytes) == (604800, None)


def cloud_mail_doc(**mail: Any) -> dict[str, Any]:
    doc = environment_doc("dev")
    doc["mail"] = {**CLOUD_MAIL, **mail}
    doc["docker"]["mailpit"] = dict(MAILPIT_IMAGE)
    return doc


def test_mail_on_a_cloud_target_parses_with_its_relay_and_provider() -> None:
    env = parse_environment(yaml.safe_dump(cloud_mail_doc()), "dev.yaml")
    assert env.mail and env.mail.provider and env.docker and env.docker.mailpit
    assert (env.mail.public_url, env.mail.provider.host, env.mail.provider.security) == (
        "https://mail-relay.example.com", "smtp.example.com", "starttls")
    assert env.docker.mailpit.image.ref == "axllent/mailpit:v1.33.1"


def test_mail_on_a_cloud_target_is_refused_by_key_when_incomplete_or_unsafe() -> None:
    """Before mail could be sent on a cloud stack this section was refused outright; now each piece the
    relay needs is required, naming its key."""
    doc = cloud_mail_doc()
    del doc["docker"]["mailpit"]
    refused(doc, r"docker\.mailpit: required key is missing")
    doc = environment_doc("dev")
    doc["docker"]["mailpit"] = dict(MAILPIT_IMAGE)
    refused(doc, r"docker\.mailpit: only used with mail")
    doc = cloud_mail_doc()
    del doc["mail"]["provider"]
    refused(doc, r"mail\.provider: required key is missing")
    refused(cloud_mail_doc(public_url=""), r"mail\.public_url: required key is missing")
    refused(cloud_mail_doc(public_url="http://mail-relay.example.com"), r"mail\.public_url: .* use https")
    refused(cloud_mail_doc(from_address="TelestackDB <no-reply@localhost>"),
            r"mail\.from_address: .* a provider refuses a localhost sender")
    refused(cloud_mail_doc(provider={**CLOUD_MAIL["provider"], "security": "none"}),
            r"mail\.provider\.security: 'none' is not one of 'starttls', 'tls'")
    refused(cloud_mail_doc(provider={**CLOUD_MAIL["provider"], "auth": "cram-md5"}),
            r"mail\.provider\.auth: 'cram-md5' is not one of")
    refused(cloud_mail_doc(provider={**CLOUD_MAIL["provider"], "host": "smtp example"}),
            r"mail\.provider\.host: 'smtp example' is not a host name")
    refused(cloud_mail_doc(provider={**CLOUD_MAIL["provider"], "password": "hunter2"}),
            r"mail\.provider\.password: unknown key")  # a secret is never plain config
    refused(cloud_mail_doc(ui_port=3567), r"mail\.ui_port: port 3567 is already published by auth\.port")
    doc = cloud_mail_doc()
    doc["docker"]["mailpit"]["replicas"] = 2
    refused(doc, r"docker\.mailpit\.replicas: 2: the mail relay runs as one container")


def test_the_relay_and_provider_keys_are_refused_on_the_local_target() -> None:
    local = {"target": "local", "mail": {"action_url": "http://localhost:5173/a",
                                         "provider": {"host": "smtp.example.com"}}}
    with pytest.raises(StackConfigError, match=r"local\.yaml: mail\.provider: cloud targets only"):
        parse_environment(yaml.safe_dump(local), "local.yaml")
    local["mail"] = {"action_url": "http://localhost:5173/a", "public_url": "https://relay.example.com"}
    with pytest.raises(StackConfigError, match=r"mail\.public_url: cloud targets only"):
        parse_environment(yaml.safe_dump(local), "local.yaml")


def test_local_mail_ports_must_be_free_and_its_keys_valid() -> None:
    local = {"target": "local", "mail": {"action_url": "http://localhost:5173/a", "ui_port": 8000}}
    with pytest.raises(StackConfigError, match=r"mail\.ui_port: port 8000 is already used by realtime\.port"):
        parse_environment(yaml.safe_dump(local), "local.yaml")
    bad_sender = {"target": "local",
                  "mail": {"action_url": "http://localhost:5173/a", "from_address": "nobody"}}
    with pytest.raises(StackConfigError, match=r"mail\.from_address: 'nobody' is not a From address"):
        parse_environment(yaml.safe_dump(bad_sender), "local.yaml")
    missing = {"target": "local", "mail": {}}
    with pytest.raises(StackConfigError, match=r"mail\.action_url"):
        parse_environment(yaml.safe_dump(missing), "local.yaml")


# --- oauth ------------------------------------------------------------------------------------

OAUTH = {"redirect_uris": ["https://app.example.com/signed-in"],
         "providers": {"google": {"client_id": "g-1"}, "github": {"client_id": "h-1"},
                       # no kind: an entry with an issuer is OpenID Connect
                       "corp": {"issuer": "https://id.example.com", "client_id": "c-1"}}}


def test_oauth_providers_and_presets_load() -> None:
    doc = environment_doc("prod")  # a custom domain: the callback has a public URL
    doc["oauth"] = OAUTH
    env = parse_environment(yaml.safe_dump(doc), "prod.yaml")
    assert env.oauth is not None and set(env.oauth.providers) == {"google", "github", "corp"}


@pytest.mark.parametrize(("change", "match"), [
    (lambda o: o["providers"]["corp"].pop("issuer"), r"oauth\.providers\.corp\.issuer is required"),
    (lambda o: o["providers"]["google"].update(scopes=["email"]), r"oauth\.providers\.google\.scopes"),
    (lambda o: o["providers"].update(Bad={"client_id": "x", "preset": "google"}), r"oauth\.providers\.Bad"),
    (lambda o: o["providers"]["corp"].update(issuer="not a url"), r"oauth\.providers\.corp\.issuer"),
    (lambda o: o.update(redirect_uris=[]), r"oauth\.redirect_uris: required with providers"),
    (lambda o: o.update(redirect_uris=["https://app.example.com/#frag"]), r"oauth\.redirect_uris\[0\]"),
    (lambda o: o.update(redirect_uris=["http://app.example.com/cb"]), r"plain http is only for loopback"),
    (lambda o: o.update(redirect_uris=["https://a.example/cb", "https://a.example/cb"]), r"listed twice"),
])
def test_oauth_mistakes_are_refused_by_key(change: Any, match: str) -> None:
    doc = environment_doc("prod")
    oauth = yaml.safe_load(yaml.safe_dump(OAUTH))
    change(oauth)
    doc["oauth"] = oauth
    refused(doc, match)


def test_oauth_on_a_cloud_target_needs_a_public_gateway_url() -> None:
    doc = environment_doc("dev")  # workers.dev only: the Worker's URL is not known before deploy
    doc["oauth"] = OAUTH
    refused(doc, r"gateway\.public_url: required with oauth\.providers")
    doc["gateway"]["public_url"] = "https://api.dev.telestack.example.com"
    assert parse_environment(yaml.safe_dump(doc), "dev.yaml").oauth is not None
