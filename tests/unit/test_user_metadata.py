"""User-metadata rules: config errors name the key; the patch, the size limit and the schema."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.paths import CONFIG
from worker.adapters.config_files import load_auth_config
from worker.http import ApiError
from worker.user_metadata import DEFAULT_MAX_BYTES, MetadataConfigError, MetadataRules, apply


def test_the_repo_config_parses_and_defaults_apply_without_one(tmp_path: Path) -> None:
    doc = load_auth_config(CONFIG)
    assert MetadataRules.parse(doc["user_metadata"]).validator is not None
    assert load_auth_config(tmp_path) == {}
    assert MetadataRules.from_json("").max_bytes == DEFAULT_MAX_BYTES


@pytest.mark.parametrize(("yaml_text", "key"), [
    ("user_metadata: {max_bytes: 0}", "user_metadata.max_bytes"),
    ("user_metadata: {max_bytes: true}", "user_metadata.max_bytes"),
    ("user_metadata: {schema: [1]}", "user_metadata.schema"),
    ("user_metadata: {schema: {type: 12}}", "user_metadata.schema"),
    ("user_metadata: {size: 3}", "user_metadata.size"),
    ("other: 1", "other"),
])
def test_config_errors_name_the_file_and_key(tmp_path: Path, yaml_text: str, key: str) -> None:
    (tmp_path / "auth.yaml").write_text(yaml_text)
    with pytest.raises(MetadataConfigError) as info:
        load_auth_config(tmp_path)
    assert str(tmp_path / "auth.yaml") in str(info.value) and key in str(info.value)


def test_apply_merges_nested_and_sends_the_core_whole_top_level_keys() -> None:
    current = {"prefs": {"a": 1, "b": 2}, "name": "x"}
    merged, update = apply(current, {"prefs": {"a": None}, "name": None, "new": [1]}, MetadataRules())
    assert merged == {"prefs": {"b": 2}, "new": [1]}
    assert update == {"prefs": {"b": 2}, "name": None, "new": [1]}


def test_size_is_counted_in_utf8_bytes_and_the_schema_is_applied() -> None:
    rules = MetadataRules.parse({"max_bytes": 20, "schema": {"type": "object",
                                                             "properties": {"n": {"type": "integer"}}}})
    apply({}, {"n": 1}, rules)
    with pytest.raises(ApiError) as too_big:
        apply({}, {"s": "é" * 8}, rules)  # 16 characters of JSON string, 24+ bytes
    assert too_big.value.status == 413
    with pytest.raises(ApiError) as bad:
        apply({}, {"n": "one"}, rules)
    assert (bad.value.status, bad.value.code) == (422, "schema_violation")
    with pytest.raises(ApiError) as not_object:
        apply({}, [1], rules)
    assert not_object.value.status == 400
