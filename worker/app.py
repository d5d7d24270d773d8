"""The gateway's HTTP surface: one routes list, and the dispatcher both entrypoints call.

:func:`handle` matches the route, runs its handler with a :class:`Context` and
turns every error into the API's JSON error shape (:mod:`worker.cors` answers
browser preflights first and marks each response for an allowed origin). It returns the response
together with the work the handler left for after it: publishing the outbox
events a write committed. The entrypoint runs that work once the response is on
its way (``ctx.waitUntil`` on Workers, a tracked background task under ASGI),
so no response ever waits for Centrifugo. Nothing is lost if that work fails or
never runs: the events are committed with the write, and whatever it leaves
pending goes out with the next write's publish, the sweep (cron trigger, ASGI
lifespan task) or the ``drain-outbox`` runbook.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any

from worker import cors, request_ids
from worker.api import account as account_api
from worker.api import auth as auth_api
from worker.api import documents as documents_api
from worker.api import health as health_api
from worker.api import oauth as oauth_api
from worker.api import openapi as openapi_api
from worker.api import realtime as realtime_api
from worker.api import storage as storage_api
from worker.api import user_metadata as user_metadata_api
from worker.api import user_roles as user_roles_api
from worker.context import BOOKMARK_HEADER, Context, Gateway
from worker.http import ApiError, Request, Response
from worker.routing import Route, Router

log = logging.getLogger("telestack.gateway")

ROUTES: list[Route] = [
    *health_api.ROUTES,
    *auth_api.ROUTES,
    *documents_api.ROUTES,
    *realtime_api.ROUTES,
    *storage_api.ROUTES,
    *account_api.ROUTES,
    *user_metadata_api.ROUTES,
    *user_roles_api.ROUTES,
    *oauth_api.ROUTES,
]
ROUTES += openapi_api.routes(ROUTES)  # GET /v1/openapi.json: the document of this very table
_ROUTER = Router(ROUTES)


@dataclass(slots=True)
class Handled:
    response: Response
    #: for the entrypoint to run after sending ``response``; None when the request left nothing to do
    after_response: Callable[[], Coroutine[Any, Any, None]] | None = None


async def handle(gateway: Gateway, request: Request) -> Handled:
    request_id = request_ids.of(request)
    token = request_ids.current.set(request_id)
    try:
        handled = await _dispatch(gateway, request, request_id)
    finally:
        request_ids.current.reset(token)
    return handled


async def _dispatch(gateway: Gateway, request: Request, request_id: str) -> Handled:
    cors_policy = cors.policy(gateway.settings.cors_allowed_origins)
    preflight = cors_policy.preflight(_ROUTER, request)
    if preflight is not None:
        return Handled(secure(preflight, request_id))
    ctx: Context | None = None
    try:
        _check_length(request)
        route, params = _ROUTER.match(request)
        ctx = Context(gateway, request, params)
        response = await route.handler(ctx)
    except ApiError as exc:
        response = exc.to_response(request_id)
    except Exception:  # never a stack trace to the client
        log.exception("unhandled error on %s %s", request.method, request.path)
        response = ApiError(500, "internal", "internal error").to_response(request_id)
    log.info("%s %s -> %d", request.method, request.path, response.status)
    bookmark = ctx.bookmark() if ctx is not None else None
    if bookmark is not None:  # also on errors: the client's next request must not read older state
        response.headers[BOOKMARK_HEADER] = bookmark
    cors_policy.mark(request, response)
    secure(response, request_id)
    # a handler that committed and then failed still gets its events published
    if ctx is not None and ctx.publish_after_response:
        return Handled(response, gateway.publisher.after_write)
    return Handled(response)


def secure(response: Response, request_id: str) -> Response:
    """The headers every answer carries: its request id, ``nosniff``, and no caching unless the route chose.

    Answers depend on the caller's token, so no shared or browser cache may keep one (a handler may
    still set its own ``cache-control``).
    """
    response.headers[request_ids.HEADER] = request_id
    response.headers["x-content-type-options"] = "nosniff"
    response.headers.setdefault("cache-control", "no-store")
    return response


def refuse(headers: dict[str, str], error: ApiError) -> Response:
    """An entrypoint's own refusal (before a Request exists) with the same id and headers as any answer."""
    request_id = request_ids.of(Request("", "", headers=headers))
    return secure(error.to_response(request_id), request_id)


def _check_length(request: Request) -> None:
    """A body that is not the length its ``Content-Length`` announced is refused before any handler.

    The servers in front of both runtimes frame bodies by that header, so a mismatch here means a
    client or proxy that cannot be trusted with the rest of the request either.
    """
    announced = request.header("content-length")
    if announced is None:
        return
    if not (announced.isascii() and announced.isdigit() and len(announced) <= 16):
        raise ApiError(400, "invalid_content_length", "Content-Length must be a byte count")
    if int(announced) != len(request.body):
        raise ApiError(400, "invalid_content_length",
                       f"the body has {len(request.body)} bytes, Content-Length announced {int(announced)}")
