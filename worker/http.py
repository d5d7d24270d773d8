"""Runtime-neutral request/response values and the API error shape.

Both entrypoints translate their native request into :class:`Request` and a
:class:`Response` back into their native type; the core sees only these.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from dataclasses import dataclass, field
from typing import Any

from worker import jsoncodec

JSON = "application/json"


@dataclass(frozen=True, slots=True)
class Request:
    method: str
    path: str
    query: dict[str, str] = field(default_factory=dict)
    #: header names are lower-cased by the entrypoints
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""
    #: the caller's IP address as the runtime saw it (Workers: ``CF-Connecting-IP``, which Cloudflare
    #: sets itself; ASGI: the socket's peer); "" when the runtime gives none
    client_address: str = ""

    def header(self, name: str, default: str | None = None) -> str | None:
        return self.headers.get(name.lower(), default)


@dataclass(slots=True)
class Response:
    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)

    @classmethod
    def json(cls, payload: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
        merged = {"content-type": JSON}
        if headers:
            merged.update(headers)
        return cls(status=status, body=jsoncodec.dumps_bytes(payload), headers=merged)


class ApiError(Exception):
    """An error the client sees as ``{"error": {"code", "message", "request_id"}}`` with ``status``."""

    def __init__(self, status: int, code: str, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = headers or {}

    def to_response(self, request_id: str | None = None) -> Response:
        """The error answer; ``request_id`` (the dispatcher passes it) lets a user quote the request."""
        error = {"code": self.code, "message": self.message}
        if request_id is not None:
            error["request_id"] = request_id
        return Response.json({"error": error}, status=self.status, headers=dict(self.headers))


def read_json(
    request: Request, *, max_bytes: int = 4 * 1024 * 1024, content_types: Collection[str] = (JSON,)
) -> Any:
    """Decode a JSON request body, refusing wrong content types and malformed input with a 4xx.

    The body is read under :func:`jsoncodec.loads_input`'s rules (depth, duplicate keys, safe integers,
    UTF-8), so both runtimes refuse the same input with the same ``400 invalid_json``.
    """
    ctype = (request.header("content-type") or "").split(";", 1)[0].strip().lower()
    if ctype not in content_types:
        expected = " or ".join(sorted(content_types))
        raise ApiError(415, "unsupported_media_type", f"Content-Type must be {expected}")
    if len(request.body) > max_bytes:
        raise ApiError(413, "payload_too_large", f"request body exceeds {max_bytes} bytes")
    try:
        return jsoncodec.loads_input(request.body)
    except ValueError as exc:  # UnicodeDecodeError included
        raise ApiError(400, "invalid_json", f"request body is not valid JSON: {exc}") from None


def check_object(body: Any, allowed: Collection[str], required: Iterable[str] = ()) -> dict[str, Any]:
    """The one rule for request bodies: a JSON object, no unknown fields, required fields present."""
    if not isinstance(body, dict):
        raise ApiError(400, "invalid_request", "the request body must be a JSON object")
    unknown = sorted(set(body) - set(allowed))
    if unknown:
        raise ApiError(
            400, "unknown_field", f"unknown field {unknown[0][:64]!r} (allowed: {', '.join(sorted(allowed))})"
        )
    for name in required:
        if name not in body:
            raise ApiError(400, "missing_field", f"field {name!r} is required")
    return body


def read_object(
    request: Request,
    allowed: Collection[str],
    *,
    required: Iterable[str] = (),
    max_bytes: int = 4 * 1024 * 1024,
) -> dict[str, Any]:
    return check_object(read_json(request, max_bytes=max_bytes), allowed, required)
