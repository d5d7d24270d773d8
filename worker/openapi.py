"""The gateway's OpenAPI 3.1 document, built from the route table and each handler's :class:`Operation`.

Nothing here is written by hand per route: paths and methods come from ``app.ROUTES``, bodies,
answers and errors from the declarations beside the handlers (:mod:`worker.operations`). The
errors every route shares are added here from what the operation says it reads: a JSON body
brings the body errors, a bearer route the token errors. A route whose handler declares nothing
is a :class:`MissingOperation` error, so the document can never silently leave a route out.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

from worker import operations
from worker.operations import JsonSchema, Operation
from worker.routing import Route

VERSION = "1"
#: the request id header every answer carries (see worker.request_ids)
REQUEST_ID_HEADER = "X-Request-Id"
_PARAM = re.compile(r"\{([a-z_]+)\}")

#: errors any route with a JSON body may answer, before its handler sees a field
BODY_ERRORS: Mapping[int, tuple[str, ...]] = {
    400: ("invalid_json", "invalid_request", "unknown_field", "missing_field", "invalid_content_length"),
    413: ("payload_too_large",),
    415: ("unsupported_media_type",),
}
#: errors of every route that authenticates its caller (worker/auth.py)
AUTH_ERRORS: Mapping[int, tuple[str, ...]] = {
    401: ("unauthenticated", "invalid_token", "token_expired"),
    503: ("auth_not_configured", "auth_unavailable"),
}
#: errors any route may answer: the dispatcher's own (a Content-Length the body does not match)
COMMON_ERRORS: Mapping[int, tuple[str, ...]] = {400: ("invalid_content_length",)}

ERROR_SCHEMA: JsonSchema = {
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["code", "message", "request_id"],
            "properties": {
                "code": {"type": "string", "description": "stable, for programs to branch on"},
                "message": {"type": "string", "description": "for people"},
                "request_id": {"type": "string", "description": "the X-Request-Id of this answer"},
            },
        }
    },
}


class MissingOperation(Exception):
    """A route whose handler was not marked with ``@documented(Operation(...))``."""


def document(routes: Iterable[Route]) -> dict[str, Any]:
    """The OpenAPI 3.1 document of ``routes``."""
    paths: dict[str, dict[str, Any]] = {}
    for route in routes:
        op = operations.operation_of(route.handler)
        if op is None:
            raise MissingOperation(
                f"{route.method} {route.path}: its handler has no @documented(Operation(...)) declaration"
            )
        paths.setdefault(route.path, {})[route.method.lower()] = _operation(route, op)
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "TelestackDB gateway",
            "version": VERSION,
            "description": "Generated from the gateway's route table; docs/api.md explains each route.",
        },
        "paths": paths,
        "components": {
            "schemas": {"Error": ERROR_SCHEMA},
            "securitySchemes": {
                "bearer": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "a SuperTokens access token, or the admin key (bypasses RLS)",
                }
            },
        },
    }


def errors_of(op: Operation) -> dict[int, tuple[str, ...]]:
    """Every error status of ``op`` with its codes: its own, plus those of the body and auth it has."""
    merged: dict[int, list[str]] = {}
    sources = [COMMON_ERRORS, op.errors]
    if op.body is not None:
        sources.append(BODY_ERRORS)
    if op.auth != "none":
        sources.append(AUTH_ERRORS)
    for source in sources:
        for status, codes in source.items():
            bucket = merged.setdefault(status, [])
            bucket.extend(c for c in codes if c not in bucket)
    return {status: tuple(codes) for status, codes in sorted(merged.items())}


def operation_id(route: Route) -> str:
    """``<method>_<handler module>_<handler>``, e.g. ``get_documents_get``: stable while the handler is."""
    return f"{route.method.lower()}_{route.handler.__module__.rsplit('.', 1)[-1]}_{route.handler.__name__}"


def _operation(route: Route, op: Operation) -> dict[str, Any]:
    out: dict[str, Any] = {
        "operationId": operation_id(route),
        "summary": op.summary,
        "parameters": _parameters(route, op),
        "responses": {},
    }
    if op.auth != "none":
        out["security"] = [{"bearer": []}]
    if op.body is not None:
        out["requestBody"] = {
            "required": op.body_required,
            "content": {ctype: {"schema": op.body} for ctype in op.content_types},
        }
    id_header = {"schema": {"type": "string"}, "description": "this request's id, also in every log line"}
    for status, schema in op.responses.items():
        headers = {REQUEST_ID_HEADER: id_header}
        for name, description in op.response_headers.get(status, {}).items():
            headers[name] = {"schema": {"type": "string"}, "description": description}
        answer: dict[str, Any] = {"description": _status_text(status), "headers": headers}
        if op.links:
            answer["links"] = {target: {"operationId": target, "parameters": dict(params)}
                               for target, params in op.links.items()}
        if schema is not None:
            answer["content"] = {"application/json": {"schema": schema}}
        out["responses"][str(status)] = answer
    for status, codes in errors_of(op).items():
        schema = {"allOf": [{"$ref": "#/components/schemas/Error"},
                            {"properties": {"error": {"properties": {"code": {"enum": list(codes)}}}}}]}
        out["responses"][str(status)] = {
            "description": ", ".join(codes),
            "headers": {REQUEST_ID_HEADER: id_header},
            "content": {"application/json": {"schema": schema}},
        }
    return out


def _parameters(route: Route, op: Operation) -> list[dict[str, Any]]:
    params: list[dict[str, Any]] = [
        {"name": name, "in": "path", "required": True,
         "schema": op.params.get(name, {"type": "string", "minLength": 1})}
        for name in _PARAM.findall(route.path)
    ]
    params += [{"name": name, "in": "header", "required": False, "schema": schema}
               for name, schema in op.headers.items()]
    return params


def _status_text(status: int) -> str:
    return {200: "OK", 201: "Created", 204: "No Content", 503: "Service Unavailable"}.get(status, str(status))
