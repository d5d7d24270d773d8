"""The gateway: one routes list, one dispatcher, and the services every handler reaches through ``Context``.

Entrypoints (``entry.py`` for Workers, ``asgi.py`` for CPython) build a
:class:`Gateway` from typed settings plus the runtime's database and HTTP
adapters, then call :meth:`Gateway.handle` with a neutral :class:`Request`.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from worker.api import auth as auth_api
from worker.api import documents as documents_api
from worker.api import health as health_api
from worker.api import realtime as realtime_api
from worker.api import storage as storage_api
from worker.database import Database
from worker.http import ApiError, Request, Response
from worker.outbound import HttpClient
from worker.principal import Principal
from worker.routing import Route, Router
from worker.settings import Settings

log = logging.getLogger("telestack.gateway")

ROUTES: list[Route] = [
    *health_api.ROUTES,
    *auth_api.ROUTES,
    *documents_api.ROUTES,
    *realtime_api.ROUTES,
    *storage_api.ROUTES,
]


@dataclass
class Gateway:
    settings: Settings
    db: Database
    http: HttpClient
    #: per-isolate caches (collections registry, JWKS, compiled schemas, ...), filled lazily
    cache: dict[str, Any] = field(default_factory=dict)
    router: Router = field(default_factory=lambda: Router(ROUTES))

    async def handle(self, request: Request) -> Response:
        try:
            route, params = self.router.match(request)
            ctx = Context(gateway=self, request=request, params=params)
            response = await route.handler(ctx)
            for hook in ctx.after:
                await hook()
            return response
        except ApiError as exc:
            return exc.to_response()
        except Exception:  # never a stack trace to the client
            log.exception("unhandled error on %s %s", request.method, request.path)
            return ApiError(500, "internal", "internal error").to_response()


@dataclass
class Context:
    gateway: Gateway
    request: Request
    params: dict[str, str]
    #: awaited after the handler returned (e.g. publish the outbox events a write committed)
    after: list[Any] = field(default_factory=list)
    _principal: Principal | None = None

    @property
    def settings(self) -> Settings:
        return self.gateway.settings

    @property
    def db(self) -> Database:
        return self.gateway.db

    async def principal(self) -> Principal:
        """The verified caller; raises ApiError(401) when there is none."""
        if self._principal is None:
            from worker.auth import authenticator_for

            self._principal = await authenticator_for(self.gateway).authenticate(self.request)
        return self._principal
