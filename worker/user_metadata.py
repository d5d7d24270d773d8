"""User metadata: what a user may keep about themselves in the auth core, and the rules a change meets.

Stored by the core's user-metadata recipe (CDI ``/recipe/user/metadata``). The gateway takes an
RFC 7386 JSON merge patch, applies it to the current metadata, checks the result against
:class:`MetadataRules` (``config/auth.yaml``: a size limit and an optional JSON Schema), and sends
the core the changed top-level keys (the core's own update is a shallow merge: each key it is sent
replaces the stored one, a null removes it). Two patches racing on the same top-level key: the later
write wins that key; other keys are untouched.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from worker import jsoncodec
from worker.documents import merge_patch
from worker.http import ApiError

DEFAULT_MAX_BYTES = 16 * 1024
#: the largest limit config may set: the core keeps metadata in one row, read with every GET
MAX_MAX_BYTES = 256 * 1024


class MetadataConfigError(ValueError):
    """``config/auth.yaml``'s ``user_metadata`` is malformed (the message names the key)."""


@dataclass(frozen=True, slots=True)
class MetadataRules:
    max_bytes: int = DEFAULT_MAX_BYTES
    schema: dict[str, Any] | None = None
    validator: Callable[[Any], Any] | None = None

    @classmethod
    def parse(cls, doc: Any, where: str = "user_metadata") -> MetadataRules:
        """Rules from the ``user_metadata`` mapping; MetadataConfigError naming ``where.<key>``."""
        if doc is None:
            return cls()
        if not isinstance(doc, Mapping):
            raise MetadataConfigError(f"{where}: must be a mapping with max_bytes and schema")
        unknown = sorted(set(doc) - {"max_bytes", "schema"})
        if unknown:
            raise MetadataConfigError(f"{where}.{unknown[0]}: unknown key (allowed: max_bytes, schema)")
        max_bytes = doc.get("max_bytes", DEFAULT_MAX_BYTES)
        valid = isinstance(max_bytes, int) and not isinstance(max_bytes, bool)
        if not valid or not 2 <= max_bytes <= MAX_MAX_BYTES:
            raise MetadataConfigError(f"{where}.max_bytes: must be an integer from 2 to {MAX_MAX_BYTES}")
        schema = doc.get("schema")
        if schema is None:
            return cls(max_bytes=max_bytes)
        if not isinstance(schema, Mapping):
            raise MetadataConfigError(f"{where}.schema: must be a JSON Schema object or null")
        import fastjsonschema

        try:
            validator = fastjsonschema.compile(dict(schema))
        except fastjsonschema.JsonSchemaDefinitionException as exc:
            raise MetadataConfigError(f"{where}.schema: invalid JSON Schema: {exc}") from None
        return cls(max_bytes=max_bytes, schema=dict(schema), validator=validator)

    @classmethod
    def from_json(cls, text: str) -> MetadataRules:
        """From the ``AUTH_CONFIG`` binding (config/auth.yaml as JSON); defaults when it is empty."""
        if not text.strip():
            return cls()
        doc = jsoncodec.loads(text)
        section = doc.get("user_metadata") if isinstance(doc, dict) else doc
        return cls.parse(section, "AUTH_CONFIG.user_metadata")

    def check(self, metadata: dict[str, Any]) -> None:
        size = len(jsoncodec.dumps(metadata).encode())
        if size > self.max_bytes:
            raise ApiError(413, "metadata_too_large",
                           f"metadata may hold at most {self.max_bytes} bytes of JSON (this would be {size})")
        if self.validator is not None:
            from fastjsonschema import JsonSchemaValueException

            try:
                self.validator(metadata)
            except JsonSchemaValueException as exc:
                raise ApiError(422, "schema_violation", f"metadata rejected by the schema: {exc.message}") \
                    from None


def apply(current: dict[str, Any], patch: Any, rules: MetadataRules) -> tuple[dict[str, Any], dict[str, Any]]:
    """``(merged, update)``: the metadata after ``patch``, and the top-level update the core is sent."""
    if not isinstance(patch, dict):
        raise ApiError(400, "invalid_request", "the metadata patch must be a JSON object (RFC 7386)")
    merged = merge_patch(current, patch)
    rules.check(merged)
    update = {key: merged.get(key) for key in patch}  # None (key gone) is the core's "remove"
    return merged, update
