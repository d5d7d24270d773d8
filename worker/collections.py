"""Collections as data: the registry built from the COLLECTIONS setting (JSON of config/collections/*.yaml).

Shape: ``{"collections": {name: {"access": "private|shared-read|admin",
"schema": <JSON Schema object, optional>, "indexes": ["path", ...]}}}``.
An unknown collection is a 404; nothing is created implicitly. Schemas are
compiled once per isolate with fastjsonschema (pure Python, runs on Pyodide).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from worker import jsoncodec
from worker.http import ApiError
from worker.paths import Path, PathError, parse_path

ACCESS_RULES = ("private", "shared-read", "admin")
_NAME = re.compile(r"[a-z][a-z0-9_]{0,62}\Z")
_KEYS = {"access", "schema", "indexes", "description"}
MAX_INDEXES = 8


class CollectionsError(ValueError):
    """The collections definition is invalid; the message names the offending key."""


@dataclass(frozen=True)
class Collection:
    name: str
    access: str
    schema: dict[str, Any] | None = None
    indexes: tuple[Path, ...] = ()
    validator: Callable[[Any], Any] | None = field(default=None, compare=False, repr=False)

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
    if access not in ACCESS_RULES:
        raise CollectionsError(f"{here}.access: must be one of {', '.join(ACCESS_RULES)}")
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
    )


class Registry:
    def __init__(self, collections: Mapping[str, Collection]) -> None:
        self._by_name = dict(collections)

    @classmethod
    def from_dict(cls, doc: Any) -> Registry:
        if not isinstance(doc, Mapping) or not isinstance(doc.get("collections"), Mapping):
            raise CollectionsError('collections: the definition must be {"collections": {name: {...}}}')
        return cls({name: parse_collection(name, spec) for name, spec in doc["collections"].items()})

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
