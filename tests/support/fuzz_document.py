"""The gateway's served OpenAPI document narrowed per collection, so the fuzzer's valid writes succeed.

The served document has one ``/v1/collections/{collection}/...`` path per route, its ``collection``
an enum and its ``data`` any object: a generated write rarely names a collection its body fits, and
almost every one is refused (403, 422), which leaves the write paths barely exercised. This adds,
beside each such path, one concrete path per collection whose ``data`` is that collection's own JSON
Schema (for a merge patch: without ``required``), with its links followed per collection, and a
batch whose writes each carry a collection with a fitting body. On the concrete paths no write sends
``If-Match`` (a create refuses one, and the few documents that exist soon pass any version a
generator would name), a user sends no ``owner_id`` (admin only), and a document id is as often one
that exists (made before the round) as any valid id; the same holds for each write of a batch.
Nothing else changes: the answers, their statuses and schemas, and the generic paths are the served
document's, so every check still holds the gateway to what it serves, and the refusals stay
reachable there.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

JsonSchema = dict[str, Any]
_PLACEHOLDER = "{collection}"


def narrowed(served: Mapping[str, Any], schemas: Mapping[str, JsonSchema], *,
             existing: Mapping[str, list[str]] | None = None, admin: bool = False) -> dict[str, Any]:
    """``served`` plus a concrete path per collection.

    ``schemas``: collection name -> its data schema; ``existing``: collection name -> ids of documents
    the caller may write; ``admin``: the round sends the admin key (which may set ``owner_id``).
    """
    doc = copy.deepcopy(dict(served))
    paths: dict[str, Any] = doc["paths"]
    for template, methods in list(paths.items()):
        if _PLACEHOLDER not in template:
            continue
        for name, schema in schemas.items():
            ids = (existing or {}).get(name, [])
            paths[template.replace(_PLACEHOLDER, name)] = {
                method: _for_collection(op, name, schema, ids, admin) for method, op in methods.items()
            }
    batch = paths.get("/v1/batch", {}).get("post")
    if batch is not None:
        _narrow_batch(batch, schemas, existing or {}, admin)
    return doc


def _for_collection(op: Mapping[str, Any], name: str, schema: JsonSchema, ids: list[str],
                    admin: bool) -> dict[str, Any]:
    out = copy.deepcopy(dict(op))
    out["operationId"] = f"{op['operationId']}__{name}"
    patch = out["operationId"].startswith("patch_")
    kept = []
    for param in out["parameters"]:
        if param["in"] == "path" and param["name"] == "collection":
            continue
        if param["in"] == "header" and param["name"] == "if-match":
            continue
        if param["in"] == "path" and param["name"] == "id" and ids:
            param["schema"] = {"anyOf": [{"enum": list(ids)}, param["schema"]]}
        kept.append(param)
    out["parameters"] = kept
    for media in out.get("requestBody", {}).get("content", {}).values():
        properties = media["schema"].get("properties", {})
        if "data" in properties:
            properties["data"] = _partial(schema) if patch else copy.deepcopy(schema)
        if "owner_id" in properties and not admin:
            properties["owner_id"] = {"type": "null"}
    for answer in out["responses"].values():
        for link in answer.get("links", {}).values():
            link["operationId"] = f"{link['operationId']}__{name}"
            link["parameters"].pop("collection", None)
        if "links" in answer:
            answer["links"] = {f"{target}__{name}": link for target, link in answer["links"].items()}
    return out


def _narrow_batch(op: dict[str, Any], schemas: Mapping[str, JsonSchema], existing: Mapping[str, list[str]],
                  admin: bool) -> None:
    """Each batch write names a collection, carries a body that fits it and, often, an id that exists."""
    for media in op.get("requestBody", {}).get("content", {}).values():
        writes = media["schema"]["properties"]["writes"]
        item = writes["items"]
        variants = []
        for name, schema in schemas.items():
            variant = copy.deepcopy(item)
            properties = variant["properties"]
            properties["collection"] = {"const": name}
            properties["data"] = copy.deepcopy(schema)
            properties["if_match"] = {"type": "null"}
            if existing.get(name):
                properties["id"] = {"anyOf": [{"enum": list(existing[name])}, properties["id"]]}
            if not admin:
                properties["owner_id"] = {"type": "null"}
            variants.append(variant)
        writes["items"] = {"anyOf": variants}


def _partial(schema: JsonSchema) -> JsonSchema:
    """A merge patch's schema: the same properties, none required; null removes an optional field."""
    out = copy.deepcopy(schema)
    required = set(out.pop("required", ()))
    for name, prop in out.get("properties", {}).items():
        if name not in required:
            out["properties"][name] = {"anyOf": [prop, {"type": "null"}]}
    return out
