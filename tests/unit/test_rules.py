"""The rule language (worker/rules.py): parsing, checks at config load, presets."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.paths import CONFIG
from worker.adapters.config_files import load_collections
from worker.collections import CollectionsError, Registry
from worker.rules import (
    MAX_LOOKUPS,
    PRESETS,
    And,
    Cmp,
    Get,
    Lit,
    Not,
    Or,
    Ref,
    RuleError,
    parse_rule,
)


def test_precedence_and_shapes() -> None:
    node = parse_rule("!doc.data.a == 1 && auth.id in doc.data.m || doc.data.b", "list")
    assert node == Or(
        And(Not(Cmp("==", Ref("doc", ("data", "a")), Lit(1))),
            Cmp("in", Ref("auth", ("id",)), Ref("doc", ("data", "m")))),
        Ref("doc", ("data", "b")),
    )
    got = parse_rule("get('teams', doc.data.team).data.members.0 == \"x\\\"y\"", "get")
    assert got == Cmp("==", Get("teams", Ref("doc", ("data", "team")), ("data", "members", 0)), Lit('x"y'))
    assert parse_rule("doc.data.t in ['a', 2, true, null, -1.5]", "get") == Cmp(
        "in", Ref("doc", ("data", "t")), Lit(("a", 2, True, None, -1.5)))
    assert parse_rule(True, "list") == Lit(True)


@pytest.mark.parametrize(("text", "op", "message"), [
    ("auth.id ==", "list", "expected a value"),
    ("auth.id == doc.owner_id)", "list", "after the end"),
    ("(auth.id == doc.owner_id", "list", "expected )"),
    ("user.id == 1", "list", "unknown name 'user'"),
    ("auth.name == 1", "list", "unknown auth field"),
    ("doc.title == 1", "list", "unknown doc field"),
    ("doc.data == 1", "list", "unknown doc field"),
    ("request.data.a == 1", "list", "request is not available in a list rule"),
    ("doc.data.a == 1", "create", "doc is not available in a create rule"),
    ("request.data.a == 1", "delete", "request is not available"),
    ("request.title == 1", "update", "request has only data"),
    ("get(teams, doc.id).data.a", "get", "collection name in quotes"),
    ("get('teams', doc.id).name", "get", "followed by .data"),
    ("exists(1)", "get", "exists(...) takes a path"),
    ("doc.data.a ~ 1", "get", "unexpected character '~'"),
    ("doc.data.a-b == 1", "get", "expected"),
    ("", "get", "non-empty"),
    ("!" * 40 + "true", "get", "deeper"),
    (" && ".join(["get('t', doc.id).data.a"] * (MAX_LOOKUPS + 1)), "get", f"at most {MAX_LOOKUPS} get"),
    ("get('t', get('t', get('t', get('t', doc.id).data.a).data.a).data.a).data.a", "get", "lookups"),
])
def test_refused_rules_say_why(text: str, op: str, message: str) -> None:
    with pytest.raises(RuleError, match=message.replace("(", r"\(").replace(")", r"\)")):
        parse_rule(text, op)


def test_presets_are_rules_and_existing_configs_keep_them() -> None:
    reg = Registry.from_dict(load_collections(CONFIG))
    assert reg.get("notes").rules == PRESETS["private"] and reg.get("notes").owner_scoped
    assert reg.get("posts").rules == PRESETS["shared-read"] and reg.get("posts").access == "shared-read"
    assert reg.get("settings").rules == PRESETS["admin"]
    assert reg.get("lists").access == "private" and reg.get("lists").lists_readers
    assert reg.get("tasks").lists_readers and not reg.get("tasks").owner_scoped


def test_rules_override_a_preset_per_operation() -> None:
    reg = Registry.from_dict({"collections": {"p": {"access": "shared-read", "rules": {"delete": False}}}})
    rules = reg.get("p").rules
    assert rules.delete == Lit(False) and rules.update == PRESETS["shared-read"].update
    assert reg.get("p").access == "shared-read"


def _write(tmp_path: Path, files: dict[str, str]) -> Path:
    (tmp_path / "collections").mkdir()
    for name, text in files.items():
        (tmp_path / "collections" / f"{name}.yaml").write_text(text)
    return tmp_path


@pytest.mark.parametrize(("files", "message"), [
    ({"a": "rules:\n  read: auth.id ==\n"}, r"a\.yaml: collection\.a\.rules\.read: expected a value"),
    ({"a": "rules:\n  read: who.id == doc.owner_id\n"},
     r"a\.yaml: collection\.a\.rules\.read: unknown name 'who'"),
    ({"a": "rules:\n  update: doc.data.x == 1 && get('a', doc.id).data.x && get('a', doc.id).data.x && "
           "get('a', doc.id).data.x && get('a', doc.id).data.x\n"},
     r"a\.yaml: collection\.a\.rules\.update: a rule makes at most 3"),
    ({"a": "rules:\n  read: doc.data.public == true\n"},
     r"a\.yaml: collection\.a\.rules\.read: realtime lists"),
    ({"a": "rules:\n  read: auth.id == doc.owner_id && auth.email_verified\n"},
     r"a\.yaml: collection\.a\.rules\.read: .*auth\.id only"),
    ({"a": "rules:\n  list: auth != null\n  get: auth.id == doc.owner_id\n"}, r"a\.yaml: .*same rule"),
    ({"a": "rules:\n  read: true\n  list: true\n"},
     r"a\.yaml: collection\.a\.rules\.read: read is shorthand"),
    ({"a": "rules:\n  write: true\n"}, r"a\.yaml: collection\.a\.rules\.write: unknown operation"),
    ({"a": "description: x\n"}, r"a\.yaml: collection\.a: needs access"),
    ({"a": "rules:\n  read: get('nope', doc.data.t).data.m contains auth.id\n"},
     r"a\.yaml: collections\.a\.rules\.read: get\('nope', \.\.\.\) names an unknown collection"),
])
def test_config_errors_name_the_file_and_key(tmp_path: Path, files: dict[str, str], message: str) -> None:
    with pytest.raises(CollectionsError, match=message):
        load_collections(_write(tmp_path, files))
