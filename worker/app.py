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

from worker import cors
from worker.api import auth as auth_api
from worker.api import documents as documents_api
from worker.api import health as health_api
from worker.api import oauth as oauth_api
from worker.api import realtime as realtime_api
from worker.api import storage as storage_api
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
    *oauth_api.ROUTES,
]
_ROUTER = Router(ROUTES)


@dataclass(slots=True)
class Handled:
    response: Response
    #: for the entrypoint to run after sending ``response``; None when the request left nothing to do
    after_response: Callable[[], Coroutine[Any, Any, None]] | None = None


async def handle(gateway: Gateway, request: Request) -> Handled:
    cors_policy = cors.policy(gateway.settings.cors_allowed_origins)
    preflight = cors_policy.preflight(_ROUTER, request)
    if preflight is not None:
        return Handled(preflight)
    ctx: Context | None = None
    try:
        route, params = _ROUTER.match(request)
        ctx = Context(gateway, request, params)
        response = await route.handler(ctx)
    except ApiError as exc:
        response = exc.to_response()
    except Exception:  # never a stack trace to the client
        log.exception("unhandled error on %s %s", request.method, request.path)
        response = ApiError(500, "internal", "internal error").to_response()
    bookmark = ctx.bookmark() if ctx is not None else None
    if bookmark is not None:  # also on errors: the client's next request must not read older state
        response.headers[BOOKMARK_HEADER] = bookmark
    cors_policy.mark(request, response)
    # a handler that committed and then failed still gets its events published
    if ctx is not None and ctx.publish_after_response:
        return Handled(response, gateway.publisher.after_write)
    return Handled(response)
