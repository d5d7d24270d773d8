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
from worker.routing import Route

if TYPE_CHECKING:
    from worker.context import Context

_UPLOAD_KEYS = {"key", "content_type", "size", "expires_in"}
_DOWNLOAD_KEYS = {"key", "expires_in"}


def _body(ctx: Context, allowed: set[str]) -> dict[str, Any]:
    return read_object(ctx.request, allowed, max_bytes=16 * 1024)


async def upload_url(ctx: Context) -> Response:
    principal = await ctx.principal()
    signed = storage.upload_url(principal, _body(ctx, _UPLOAD_KEYS), ctx.settings)
    return Response.json(signed, headers={"cache-control": "no-store"})


async def download_url(ctx: Context) -> Response:
    principal = await ctx.principal()
    signed = storage.download_url(principal, _body(ctx, _DOWNLOAD_KEYS), ctx.settings)
    return Response.json(signed, headers={"cache-control": "no-store"})


ROUTES: list[Route] = [
    Route("POST", "/v1/storage/upload-url", upload_url),
    Route("POST", "/v1/storage/download-url", download_url),
]
