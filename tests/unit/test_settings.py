"""Gateway settings: bindings become one typed value, and a bad binding names itself."""

from __future__ import annotations

import pytest

from worker import settings

BASE = {"ADMIN_KEY": "k" * 32, "COLLECTIONS": '{"collections": {}}'}


def test_required_bindings_are_named_when_missing() -> None:
    for key in ("ADMIN_KEY", "COLLECTIONS"):
        env = {k: v for k, v in BASE.items() if k != key}
        with pytest.raises(settings.SettingsError, match=key):
            settings.from_mapping(env)


def test_integers_are_parsed_and_a_bad_one_is_named() -> None:
    env = {**BASE, "STORAGE_URL_TTL": "60", "ADMIN_KEY_PREVIOUS_UNTIL": "1700000000"}
    parsed = settings.from_mapping(env)
    assert parsed.storage_url_ttl == 60
    assert parsed.admin_key_previous_until == 1_700_000_000
    with pytest.raises(settings.SettingsError, match="OUTBOX_DRAIN_PER_REQUEST"):
        settings.from_mapping({**BASE, "OUTBOX_DRAIN_PER_REQUEST": "many"})


def test_empty_optional_bindings_keep_their_defaults() -> None:
    parsed = settings.from_mapping({**BASE, "S3_REGION": "", "AUTH_URL": None})
    assert parsed.s3_region == "us-east-1"
    assert parsed.auth_url == ""


def test_every_field_has_exactly_one_binding_name() -> None:
    names = settings.binding_names()
    assert set(names) == {f.name for f in settings.fields(settings.Settings)}
    assert len(set(names.values())) == len(names)


def test_every_credential_binding_is_declared_secret_and_nothing_else_is() -> None:
    names = settings.binding_names()
    # _password: the SMTP server's credential is one too; _secrets: the OAuth client secrets
    suffixes = ("_key", "_key_id", "_secret", "_secrets", "_key_previous", "_password")
    credentials = {f for f in names if f.endswith(suffixes)}
    assert credentials, "the settings hold credentials"
    assert settings.secret_binding_names() == {names[f] for f in credentials}
