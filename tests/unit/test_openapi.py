"""openapi.py and operations.py: every route documented, a valid 3.1 document, served at /v1/openapi.json."""

from __future__ import annotations

from typing import Any

import jsonschema
import pytest

from tests.support.gateway import Client
from worker import openapi
from worker.app import ROUTES
from worker.http import Response
from worker.operations import Operation, documented
from worker.routing import Route

HOW_TO_DOCUMENT = (
    "declare an Operation beside the handler and mark it: "
    "`@documented(Operation(summary, auth, {status: schema}, {error_status: (codes,)}, body=...))`"
)


@pytest.mark.parametrize("route", ROUTES, ids=[f"{r.method} {r.path}" for r in ROUTES])
def test_every_route_declares_what_it_promises(route: Route) -> None:
    """A route added without a declaration fails here, naming itself and what to add."""
    try:
        openapi.document([route])
    except openapi.MissingOperation as exc:
        pytest.fail(f"{exc}: {HOW_TO_DOCUMENT}")


def test_an_undocumented_route_is_refused() -> None:
    async def secret(ctx: Any) -> Response:
        return Response()

    with pytest.raises(openapi.MissingOperation, match="GET /v1/secret"):
        openapi.document([*ROUTES, Route("GET", "/v1/secret", secret)])


def _schemas(node: Any) -> Any:
    """Every JSON Schema of the document: request bodies, answers, parameters."""
    if isinstance(node, dict):
        if "schema" in node and isinstance(node["schema"], dict):
            yield node["schema"]
        for value in node.values():
            yield from _schemas(value)
    elif isinstance(node, list):
        for value in node:
            yield from _schemas(value)


def test_the_document_lists_every_route_with_valid_schemas() -> None:
    doc = openapi.document(ROUTES)
    assert doc["openapi"].startswith("3.1")
    listed = {(method.upper(), path) for path, methods in doc["paths"].items() for method in methods}
    assert listed == {(r.method, r.path) for r in ROUTES}
    for schema in _schemas(doc["paths"]):
        jsonschema.Draft202012Validator.check_schema(schema)
    jsonschema.Draft202012Validator.check_schema(doc["components"]["schemas"]["Error"])


def test_shared_errors_follow_from_body_and_auth() -> None:
    bare = Operation("x", "none", {200: None})
    assert openapi.errors_of(bare) == {400: ("invalid_content_length",)}
    own = {400: ("own_code",), 409: ("clash",)}
    full = Operation("x", "bearer", {200: None}, own, body={"type": "object"})
    errors = openapi.errors_of(full)
    assert errors[400][:1] == ("invalid_content_length",) and "own_code" in errors[400]
    assert "invalid_json" in errors[400] and errors[409] == ("clash",)
    assert errors[401] == ("unauthenticated", "invalid_token", "token_expired")
    assert errors[413] == ("payload_too_large",) and errors[415] == ("unsupported_media_type",)


def test_a_route_documents_its_own_error_codes() -> None:
    doc = openapi.document(ROUTES)
    signup = doc["paths"]["/v1/auth/signup"]["post"]
    conflict = signup["responses"]["409"]["content"]["application/json"]["schema"]
    assert conflict["allOf"][1]["properties"]["error"]["properties"]["code"]["enum"] == ["email_exists"]
    assert "security" not in signup and "security" in doc["paths"]["/v1/auth/me"]["get"]


def test_every_link_names_an_operation_and_its_parameters() -> None:
    doc = openapi.document(ROUTES)
    operations = {op["operationId"]: op for methods in doc["paths"].values() for op in methods.values()}
    links = [link for op in operations.values() for answer in op["responses"].values()
             for link in answer.get("links", {}).values()]
    assert links, "documents link a create to the operations on what it created"
    for link in links:
        target = operations[link["operationId"]]
        assert set(link["parameters"]) == {p["name"] for p in target["parameters"] if p["in"] == "path"}


def test_documented_marks_the_handler_it_returns() -> None:
    op = Operation("y", "none", {204: None})

    @documented(op)
    async def handler(ctx: Any) -> Response:
        return Response(204)

    assert openapi.document([Route("DELETE", "/v1/y", handler)])["paths"]["/v1/y"]["delete"]["summary"] == "y"


async def test_served_with_the_gateways_collections(client: Client) -> None:
    reply = await client.request("GET", "/v1/openapi.json", user=None)
    assert reply.status == 200 and reply.headers["content-type"] == "application/json"
    doc = reply.json
    params = doc["paths"]["/v1/collections/{collection}/query"]["post"]["parameters"]
    [collection] = [p for p in params if p["name"] == "collection"]
    assert collection["schema"]["enum"] == sorted(c.name for c in client.gateway.collections)
    assert "/v1/openapi.json" in doc["paths"]
    assert doc["paths"].keys() == openapi.document(ROUTES)["paths"].keys()
