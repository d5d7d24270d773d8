"""The vendored CDI spec as a validator: each operation by (method, path), closed schemas, known overlays.

Validation is schema-level (OpenAPI 3.0 dialect, ``$ref`` resolved over the spec's ``components``) and
*stricter* than the spec: every object schema that lists ``properties`` is closed
(``additionalProperties: false``), so an undocumented field fails. The spec (tests/contracts/supertokens-cdi,
a verbatim copy of the CDI repo's) is CDI **5.3** and we speak **5.6**; what 5.6 (or the core, beyond the
spec) adds is declared in :data:`OVERLAY_5_6`, and where the core answers in another shape than the spec
shows, :data:`CORE_ANSWERS` says so, each with its source, instead of loosening the check. Used by the
contract test and by the official-SDK test, which checks every exchange the SDK made.
"""

from __future__ import annotations

import copy
import re
from functools import cache
from typing import Any

import yaml
from openapi_schema_validator import OAS30Validator

from tests.support.paths import ROOT

SPEC_PATH = ROOT / "tests/contracts/supertokens-cdi/api_spec.yaml"  # verbatim copy, provenance in SOURCE.txt
CDI_VERSION = "5.6"
#: the spec writes every path under these prefixes; operations are keyed without them
_PREFIX = re.compile(r"^/appid-<appId>(/<tenantId>)?")

_num = {"type": "number"}
_subtype = {"type": "string", "enum": ["RECENT_PREV", "ORPHANED_BRANCH", "STALE_LINEAGE"]}
#: (method, path, where) -> extra properties. CDI 5.6 / core 12.1 additions (NOTES.md §1) and core fields
#: the 5.3 spec does not list.
OVERLAY_5_6: dict[tuple[str, str, str], dict[str, Any]] = {
    # 5.6: create/refresh take accessTokenValidity (ms, may only shorten the configured validity)
    ("post", "/recipe/session", "request"): {"accessTokenValidity": _num},
    ("post", "/recipe/session/refresh", "request"): {"accessTokenValidity": _num},
    # 5.6: theft answers carry recentTokenReuseSubtype; the session names its recipeUserId (RefreshSessionAPI)
    ("post", "/recipe/session/refresh", "200/oneOf/1"): {"recentTokenReuseSubtype": _subtype},
    ("post", "/recipe/session/refresh", "200/oneOf/1/session"): {"recipeUserId": {"type": "string"}},
    ("post", "/recipe/session/refresh", "200/oneOf/2"): {"recentTokenReuseSubtype": _subtype},
    # 5.6: verify with checkDatabase adds payloadUpdateAvailable
    ("post", "/recipe/session/verify", "200/oneOf/0"): {"payloadUpdateAvailable": {"type": "boolean"}},
    # core (CDI >= 4) returns recipeUserId from session info; the spec omits it
    ("get", "/recipe/session", "200/oneOf/0"): {"recipeUserId": {"type": "string"}},
    # 5.6: users/count takes allowApproximate and then says whether the count is approximate, and as of when
    # (core UsersCountAPI)
    ("get", "/users/count", "200"): {"approximate": {"type": "boolean"}, "asOf": _num},
}
#: (method, path) -> the 200 answer the core gives where the 5.3 spec shows another shape. GET /users:
#: from CDI 4.0 each item is the user itself (core UsersAPI: ``usersJson.add(user.toJson(...))``); the spec
#: still shows the pre-4.0 wrapper ``{"user": ...}``.
CORE_ANSWERS: dict[tuple[str, str], dict[str, Any]] = {
    ("get", "/users"): {"type": "object", "properties": {
        "status": {"$ref": "#/components/schemas/statusOK"},
        "users": {"type": "array", "items": {"$ref": "#/components/schemas/authRecipeUser"}},
        "nextPaginationToken": {"$ref": "#/components/schemas/paginationToken"}}},
}
#: the spec's `jwk` lists no RSA members; a JWKS without n/e would be useless (RFC 7518 §6.3.1)
JWK_RSA_MEMBERS = {"n": {"type": "string"}, "e": {"type": "string"}}


def _close(schema: Any) -> Any:
    """Close every object schema that lists its properties (undocumented fields become errors)."""
    if isinstance(schema, dict):
        out = {k: _close(v) for k, v in schema.items()}
        if "properties" in out and "additionalProperties" not in out:
            out["additionalProperties"] = False
        return out
    if isinstance(schema, list):
        return [_close(v) for v in schema]
    return schema


def _inline(schema: dict[str, Any], components: dict[str, Any]) -> dict[str, Any]:
    """Resolve a top-level local $ref so an overlay can extend it."""
    while "$ref" in schema:
        schema = copy.deepcopy(components["schemas"][schema["$ref"].rsplit("/", 1)[1]])
    return schema


@cache
def spec() -> dict[str, Any]:
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    with open(SPEC_PATH, encoding="utf-8") as f:
        doc = yaml.load(f, Loader=loader)  # noqa: S506 - a safe loader
    doc["components"]["schemas"]["jwk"]["properties"].update(JWK_RSA_MEMBERS)
    ops: dict[tuple[str, str], dict[str, Any]] = {}
    for raw_path, item in doc["paths"].items():
        for method, op in item.items():
            ops[(method, _PREFIX.sub("", raw_path) or "/")] = copy.deepcopy(op)
    for (method, path, where), extra in OVERLAY_5_6.items():
        op = ops[(method, path)]
        if where == "request":
            node = op["requestBody"]["content"]["application/json"]["schema"]
        else:
            status, *steps = where.split("/")
            node = op["responses"][status]["content"]["application/json"]["schema"]
            while steps:
                key = steps.pop(0)
                if key == "oneOf":
                    idx = int(steps.pop(0))
                    node["oneOf"][idx] = node = _inline(node["oneOf"][idx], doc["components"])
                else:
                    node["properties"][key] = node = _inline(node["properties"][key], doc["components"])
        node.setdefault("properties", {}).update(extra)
    for key, answer in CORE_ANSWERS.items():
        ops[key]["responses"]["200"]["content"]["application/json"]["schema"] = answer
    doc["ops"] = ops
    doc["closed_components"] = _close(doc["components"])
    return doc


def validate(schema: dict[str, Any], value: Any, what: str) -> None:
    s = spec()
    root = {**_close(schema), "components": s["closed_components"]}
    errors = sorted(OAS30Validator(root).iter_errors(value), key=lambda e: list(e.absolute_path))
    assert not errors, f"{what} violates the CDI spec: " + "; ".join(
        f"{'/'.join(map(str, e.absolute_path)) or '<root>'}: {e.message[:300]}" for e in errors[:5])


def response_schema(op: dict[str, Any], status: int) -> tuple[str, dict[str, Any]]:
    resp = op["responses"].get(str(status)) or op["responses"].get(status)
    assert resp is not None, f"status {status} is not documented for this operation"
    if "$ref" in resp:
        name = resp["$ref"].rsplit("/", 1)[1]
        responses = spec()["components"]["responses"]  # YAML made the numeric names ints
        resp = responses.get(name) or responses[int(name)]
    (ctype, media), = resp["content"].items()
    return ctype, media["schema"]
