"""scripts/secrets.py: which secrets a stack gets, and their shapes (the services' own rules)."""

from __future__ import annotations

import re
from types import ModuleType

from infra.secret_keys import CLOUD_SECRET_KEYS, SECRET_KEYS
from tests.support.script_module import load_script


def _script() -> ModuleType:
    return load_script("secrets", "telestack_secrets_script")


def test_generated_values_fit_every_consumer() -> None:
    gen = _script().generate
    for kind in {kind for _, kind in SECRET_KEYS.values()}:
        values = {gen(kind) for _ in range(50)}
        assert len(values) == 50, kind
        for value in values:
            # SuperTokens api keys: >= 20 of [A-Za-z0-9=-]; the rest are at least as strict
            assert re.fullmatch(r"[A-Za-z0-9]{20,}", value), (kind, len(value))
    assert len(gen("access_key")) == 20 and len(gen("secret_key")) == 40 and len(gen("token")) == 43


def test_local_stacks_get_the_common_secrets_and_cloud_stacks_more() -> None:
    wanted = _script().wanted_keys
    assert set(wanted("local", None)) == set(SECRET_KEYS)
    assert set(wanted("dev", None)) == set(SECRET_KEYS) | set(CLOUD_SECRET_KEYS)
    assert set(wanted("nosuchstack", None)) == set(SECRET_KEYS), "a bad environment is pulumi up's to report"


def test_a_declared_empty_default_counts_as_missing() -> None:
    is_set = _script().is_set
    # what `pulumi config --json` prints for a key declared with `default: ""` and never set
    assert not is_set({"value": "", "secret": False})
    assert not is_set(None)
    assert is_set({"secret": True})  # a set secret: the value is not shown without --show-secrets
    assert is_set({"value": "plain", "secret": False})
