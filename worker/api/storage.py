"""POST /v1/storage/upload-url and /download-url: presigned S3 URLs, keys confined to the caller.

Request bodies:
  upload:   {"key": "users/<me>/a.png", "content_type": "image/png", "size": 1234, "expires_in": 300}
  download: {"key": "users/<me>/a.png", "expires_in": 300}
``size`` (the file's exact length) is required; ``content_type`` and ``expires_in`` are
optional. The upload answer is a presigned PUT: send the file's bytes to ``url`` with
``headers``; the signature pins ``Content-Type`` and ``Content-Length``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from worker import storage
from worker.http import Response, read_object
from worker.operations import Operation, documented, obj
from worker.routing import Route

if TYPE_CHECKING:
    from worker.context import Context

_UPLOAD_KEYS = {"key", "content_type", "size", "expires_in"}
_DOWNLOAD_KEYS = {"key", "expires_in"}
_KEY = {"type": "string", "minLength": 1, "description": "users/<your id>/... unless admin"}
_EXPIRES_IN = {"type": ["integer", "null"], "minimum": 1,
               "description": "seconds; never beyond STORAGE_URL_TTL; null or absent: STORAGE_URL_TTL"}
_TIME = {"type": "string", "format": "date-time"}
_KEY_ERRORS = {400: ("invalid_key", "invalid_expires_in"), 403: ("forbidden",), 503: ("storage_unavailable",)}
UPLOAD_URL = Operation(
    "a presigned PUT of one file (its key, type and exact size signed)", "bearer",
    {200: obj({"method": {"const": "PUT"}, "url": {"type": "string"},
               "headers": {"type": "object", "additionalProperties": {"type": "string"}},
               "key": {"type": "string"},
               "content_type": {"type": "string"}, "size": {"type": "integer"}, "expires_at": _TIME},
              ("method", "url", "headers", "key", "content_type", "size", "expires_at"))},
    {**_KEY_ERRORS, 400: ("invalid_key", "invalid_expires_in", "invalid_content_type", "invalid_size"),
     413: ("too_large",)},
    body=obj({"key": _KEY, "size": {"type": "integer", "minimum": 0},
              "content_type": {"type": ["string", "null"], "description": "null: application/octet-stream"},
              "expires_in": _EXPIRES_IN}, ("key", "size")))
DOWNLOAD_URL = Operation(
    "a presigned GET of one file", "bearer",
    {200: obj({"method": {"const": "GET"}, "url": {"type": "string"}, "key": {"type": "string"},
               "expires_at": _TIME}, ("method", "url", "key", "expires_at"))},
    _KEY_ERRORS, body=obj({"key": _KEY, "expires_in": _EXPIRES_IN}, ("key",)))


def _body(ctx: Context, allowed: set[str]) -> dict[str, Any]:
    return read_object(ctx.request, allowed, max_bytes=16 * 1024)


@documented(UPLOAD_URL)
async def upload_url(ctx: Context) -> Response:
    principal = await ctx.principal()
    signed = storage.upload_url(principal, _body(ctx, _UPLOAD_KEYS), ctx.settings)
    return Response.json(signed, headers={"cache-control": "no-store"})


@documented(DOWNLOAD_URL)
async def download_url(ctx: Context) -> Response:
    principal = await ctx.principal()
    signed = storage.download_url(principal, _body(ctx, _DOWNLOAD_KEYS), ctx.settings)
    return Response.json(signed, headers={"cache-control": "no-store"})


ROUTES: list[Route] = [
    Route("POST", "/v1/storage/upload-url", upload_url),
    Route("POST", "/v1/storage/download-url", download_url),
]
