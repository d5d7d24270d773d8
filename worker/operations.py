"""What a route promises its callers: body and answer schemas, auth, and the errors it may answer.

Each handler module declares one :class:`Operation` per handler, beside it, and marks the handler
with :func:`documented`. :mod:`worker.openapi` turns the route table plus these declarations into
the OpenAPI document; ``tests/unit/test_openapi.py`` fails for a route whose handler declares none.
Schemas are JSON Schema 2020-12 dicts (the dialect of OpenAPI 3.1). Errors every route shares (a
malformed body, a wrong content type, no or a bad token) are added by :mod:`worker.openapi` from
``body`` and ``auth``, so a declaration lists only the codes its own handler raises.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, TypeVar

from worker.http import JSON

JsonSchema = dict[str, Any]
#: "bearer": a user access token or the admin key; "user": an access token only (the admin key is refused)
Auth = Literal["none", "bearer", "user"]
F = TypeVar("F", bound=Callable[..., Any])


@dataclass(frozen=True, slots=True)
class Operation:
    summary: str
    auth: Auth
    #: success status -> schema of its JSON answer (None: no body, as a 204)
    responses: Mapping[int, JsonSchema | None]
    #: error status -> the ``error.code`` values this handler itself raises with it
    errors: Mapping[int, tuple[str, ...]] = field(default_factory=dict)
    #: the JSON request body; None when the route takes none
    body: JsonSchema | None = None
    body_required: bool = True
    content_types: tuple[str, ...] = (JSON,)
    #: request headers the route reads (name -> schema)
    headers: Mapping[str, JsonSchema] = field(default_factory=dict)
    #: success response headers (name -> description)
    response_headers: Mapping[int, Mapping[str, str]] = field(default_factory=dict)
    #: the path parameters' schemas, by name; a parameter not named here is any non-empty segment
    params: Mapping[str, JsonSchema] = field(default_factory=dict)
    #: OpenAPI links of the success answers: target operationId -> {its parameter: runtime expression}
    #: (lets a client generator or a fuzzer follow a create to the document it made)
    links: Mapping[str, Mapping[str, str]] = field(default_factory=dict)


_OPERATIONS: dict[Callable[..., Any], Operation] = {}


def documented(operation: Operation) -> Callable[[F], F]:
    """Declare what ``handler`` promises (see the module docstring)."""

    def mark(handler: F) -> F:
        _OPERATIONS[handler] = operation
        return handler

    return mark


def operation_of(handler: Callable[..., Any]) -> Operation | None:
    return _OPERATIONS.get(handler)


def obj(properties: Mapping[str, JsonSchema], required: tuple[str, ...] = (), *, closed: bool = True,
        description: str | None = None) -> JsonSchema:
    """An object schema; ``closed`` (the default) refuses unknown properties, as ``check_object`` does."""
    schema: JsonSchema = {"type": "object", "properties": dict(properties)}
    if required:
        schema["required"] = list(required)
    if closed:
        schema["additionalProperties"] = False
    if description:
        schema["description"] = description
    return schema
