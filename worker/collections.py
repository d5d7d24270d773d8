"""Collections as data: the registry built from the COLLECTIONS setting (JSON of config/collections/*.yaml).

Shape: ``{"collections": {name: {"access": "private|shared-read|admin", "rules": {op: rule},
"schema": <JSON Schema object, optional>, "indexes": ["path", ...]}}}``. ``access`` names a
preset of rules (``rules.PRESETS``); ``rules`` (``worker/rules.py``, docs/rules.md) sets or
overrides the rule of each operation. At least one of the two is required.
An unknown collection is a 404; nothing is created implicitly. Schemas are
compiled once per isolate with fastjsonschema (pure Python, runs on Pyodide).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from worker import dependent_events, jsoncodec
from worker.dependent_events import Dependent
from worker.http import ApiError
from worker.paths import Path, PathError, parse_path
from worker.rules import (
    PRESETS,
    RuleError,
    RuleSet,
    admits_every_signed_in_user,
    is_owner_only,
    lookups,
    parse_rules,
)

ACCESS_RULES = ("private", "shared-read", "admin")
_NAME = re.compile(r"[a-z][a-z0-9_]{0,62}\Z")
_KEYS = {"access", "rules", "schema", "indexes", "description"}
MAX_INDEXES = 8


class CollectionsError(ValueError):
    """The collections definition is invalid; the message names the offending key."""


@dataclass(frozen=True)
class Collection:
    name: str
    #: the realtime class the read rule puts the collection in (``realtime_class``): ``private``
    #: (user-limited channels), ``shared-read`` (one shared channel) or ``admin`` (admin only)
    access: str
    schema: dict[str, Any] | None = None
    indexes: tuple[Path, ...] = ()
    validator: Callable[[Any], Any] | None = field(default=None, compare=False, repr=False)
    #: the rule of each operation; None = the preset named by ``access``
    custom_rules: RuleSet | None = field(default=None, compare=False, repr=False)
    #: the collections whose read rule looks this one up: a write here may change their readers
    looked_up_by: tuple[Dependent, ...] = field(default=(), compare=False, repr=False)

    @property
    def rules(self) -> RuleSet:
        return self.custom_rules if self.custom_rules is not None else PRESETS[self.access]

    @property
    def owner_scoped(self) -> bool:
        """Reads are exactly the owner's rows (the private preset's shape): events go to the owner alone."""
        return is_owner_only(self.rules.list) and is_owner_only(self.rules.get)

    @property
    def lists_readers(self) -> bool:
        """Each event carries the readers the read rule admits (computed in the write's batch)."""
        return self.access == "private" and not self.owner_scoped

    def validate(self, data: Any) -> None:
        """Raise ApiError(422) when ``data`` does not satisfy the collection's schema."""
        if not isinstance(data, dict):
            raise ApiError(422, "schema_violation", "a document body must be a JSON object")
        if self.validator is None:
            return
        from fastjsonschema import JsonSchemaValueException

        try:
            self.validator(data)
        except JsonSchemaValueException as exc:
            raise ApiError(
                422, "schema_violation", f"document rejected by {self.name} schema: {exc.message}"
            ) from None


def parse_collection(name: str, spec: Any, where: str = "collections") -> Collection:
    here = f"{where}.{name}"
    if not isinstance(name, str) or not _NAME.match(name):
        raise CollectionsError(f"{here}: collection names match [a-z][a-z0-9_]* (max 63 chars)")
    if not isinstance(spec, Mapping):
        raise CollectionsError(f"{here}: must be a mapping")
    unknown = sorted(set(spec) - _KEYS)
    if unknown:
        raise CollectionsError(f"{here}.{unknown[0]}: unknown key (allowed: {', '.join(sorted(_KEYS))})")
    access = spec.get("access")
    raw_rules = spec.get("rules")
    if access is None and raw_rules is None:
        raise CollectionsError(f"{here}: needs access (a preset: {', '.join(ACCESS_RULES)}) or rules")
    if access is not None and access not in ACCESS_RULES:
        raise CollectionsError(f"{here}.access: must be one of {', '.join(ACCESS_RULES)}")
    custom: RuleSet | None = None
    if raw_rules is not None:
        try:
            custom = parse_rules(raw_rules, PRESETS[access] if access else None, f"{here}.rules")
            access = realtime_class(custom, f"{here}.rules")
        except RuleError as exc:
            raise CollectionsError(str(exc)) from None
    schema = spec.get("schema")
    validator = None
    if schema is not None:
        if not isinstance(schema, Mapping):
            raise CollectionsError(f"{here}.schema: must be a JSON Schema object")
        import fastjsonschema

        try:
            validator = fastjsonschema.compile(dict(schema))
        except fastjsonschema.JsonSchemaDefinitionException as exc:
            raise CollectionsError(f"{here}.schema: invalid JSON Schema: {exc}") from None
    raw_indexes = spec.get("indexes") or []
    if not isinstance(raw_indexes, list) or len(raw_indexes) > MAX_INDEXES:
        raise CollectionsError(f"{here}.indexes: must be a list of at most {MAX_INDEXES} field paths")
    indexes: list[Path] = []
    for i, text in enumerate(raw_indexes):
        try:
            path = parse_path(text)
        except PathError as exc:
            raise CollectionsError(f"{here}.indexes[{i}]: {exc}") from None
        if path not in indexes:
            indexes.append(path)
    return Collection(
        name=name,
        access=access,
        schema=dict(schema) if schema else None,
        indexes=tuple(indexes),
        validator=validator,
        custom_rules=custom,
    )


def realtime_class(rules: RuleSet, where: str) -> str:
    """``shared-read`` when reads admit every signed-in user, ``admin`` when nobody, else ``private``.

    A ``private`` collection's events go to user-limited channels of the readers the read rule
    admits; ``rule_sql.readers`` refuses a read rule whose readers cannot be listed from the document.
    """
    from worker.rule_sql import check_readers_listable

    if rules.list != rules.get:
        raise RuleError(f"{where}: list and get must be the same rule (a document one may get but "
                        "not list, or the reverse, would make realtime and queries disagree); use read")
    if admits_every_signed_in_user(rules.list):
        return "shared-read"
    if rules.list == PRESETS["admin"].list:
        return "admin"
    try:
        check_readers_listable(rules.list)
    except RuleError as exc:
        raise RuleError(f"{where}.read: {exc}") from None
    return "private"


def link_lookups(collections: Mapping[str, Collection]) -> dict[str, Collection]:
    """Each collection with the ones whose listed readers depend on its documents (``looked_up_by``)."""
    out: dict[str, Collection] = {}
    for name, c in collections.items():
        found = (dependent_events.find(name, other.name, other.rules.list)
                 for other in collections.values() if other.lists_readers)
        deps = tuple(d for d in found if d is not None)
        out[name] = replace(c, looked_up_by=deps) if deps else c
    return out


class Registry:
    def __init__(self, collections: Mapping[str, Collection]) -> None:
        self._by_name = link_lookups(collections)

    @classmethod
    def from_dict(cls, doc: Any) -> Registry:
        if not isinstance(doc, Mapping) or not isinstance(doc.get("collections"), Mapping):
            raise CollectionsError('collections: the definition must be {"collections": {name: {...}}}')
        registry = cls({name: parse_collection(name, spec) for name, spec in doc["collections"].items()})
        registry.check_lookups()
        return registry

    def check_lookups(self) -> None:
        """Every ``get('<collection>', ...)`` in a rule names a collection of this registry."""
        for c in self._by_name.values():
            if c.custom_rules is None:
                continue
            for op in ("list", "get", "create", "update", "delete"):
                for g in lookups(c.rules.for_operation(op)):
                    if g.collection not in self._by_name:
                        key = "read" if op in ("list", "get") else op
                        raise CollectionsError(
                            f"collections.{c.name}.rules.{key}: get('{g.collection}', ...) names an "
                            "unknown collection")

    @classmethod
    def from_json(cls, text: str) -> Registry:
        try:
            doc = jsoncodec.loads(text)
        except ValueError as exc:
            raise CollectionsError(f"COLLECTIONS: not valid JSON: {exc}") from None
        return cls.from_dict(doc)

    def __iter__(self) -> Iterator[Collection]:
        return iter(self._by_name.values())

    def get(self, name: str) -> Collection:
        found = self._by_name.get(name)
        if found is None:
            raise ApiError(404, "collection_not_found", "no such collection")
        return found

    def access_rules(self) -> dict[str, str]:
        """Collection name -> access rule.

        The one map behind the gateway's channel checks, the outbox's broadcasts and the
        Centrifugo namespaces ``infra/centrifugo_config.py`` generates, so the three agree.
        """
        return {c.name: c.access for c in self._by_name.values()}
