"""Collections registry and its YAML files: validation errors name the file and the key."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.paths import CONFIG
from worker.adapters.config_files import load_collections
from worker.collections import CollectionsError, Registry
from worker.http import ApiError


def test_repo_collections_load() -> None:
    doc = load_collections(CONFIG)
    reg = Registry.from_dict(doc)
    assert reg.get("notes").access == "private" and reg.get("notes").indexes == (("status",),)
    assert reg.get("notes").schema is not None
    assert reg.get("posts").access == "shared-read"
    assert reg.get("settings").access == "admin"


def test_unknown_collection_is_404() -> None:
    with pytest.raises(ApiError) as err:
        Registry.from_dict({"collections": {}}).get("nope")
    assert err.value.status == 404


@pytest.mark.parametrize(
    ("spec", "key"),
    [
        ({"access": "public"}, "collections.c.access"),
        ({"access": "private", "colour": 1}, "collections.c.colour"),
        ({"access": "private", "indexes": ["a..b"]}, "collections.c.indexes[0]"),
        ({"access": "private", "indexes": "a"}, "collections.c.indexes"),
        ({"access": "private", "schema": {"type": "nonsense-type"}}, "collections.c.schema"),
        ({"access": "private", "schema": []}, "collections.c.schema"),
    ],
)
def test_invalid_definitions_name_the_key(spec: dict, key: str) -> None:
    with pytest.raises(CollectionsError) as err:
        Registry.from_dict({"collections": {"c": spec}})
    assert str(err.value).startswith(key + ":"), str(err.value)


@pytest.mark.parametrize("name", ["Notes", "a-b", "x'y", "", "1abc"])
def test_collection_names_follow_the_grammar(name: str) -> None:
    with pytest.raises(CollectionsError):
        Registry.from_dict({"collections": {name: {"access": "private"}}})


def test_collections_json_errors() -> None:
    with pytest.raises(CollectionsError, match="COLLECTIONS"):
        Registry.from_json("{not json")
    with pytest.raises(CollectionsError):
        Registry.from_json("[]")


def test_yaml_errors_name_the_file_and_key(tmp_path: Path) -> None:
    (tmp_path / "collections").mkdir()
    bad = tmp_path / "collections" / "tasks.yaml"
    bad.write_text("access: private\nindexes: [ok, 'bad path']\n")
    with pytest.raises(CollectionsError) as err:
        load_collections(tmp_path)
    assert str(bad) in str(err.value) and "collection.tasks.indexes[1]" in str(err.value)
    bad.write_text("access: [unclosed\n")
    with pytest.raises(CollectionsError, match="tasks.yaml: not valid YAML"):
        load_collections(tmp_path)
