"""The Cloudflare Python Worker entrypoint: bindings -> one Gateway per isolate; requests -> Gateway.handle.

Bindings (wrangler / Pulumi): ``DB`` (D1) plus the settings keys of
``worker/settings.py`` as vars/secrets. Migrations are applied by ops (D1 HTTP
API), never at request time.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

from workers import Response, WorkerEntrypoint  # type: ignore[import-not-found]

from worker import realtime, settings
from worker.adapters.d1 import D1Database
from worker.adapters.workers_fetch import WorkersFetchClient
from worker.app import Gateway
from worker.http import Request

_gateway: Gateway | None = None


class _Bindings:
    """``env`` as the mapping ``settings.from_mapping`` reads."""

    def __init__(self, env: Any) -> None:
        self._env = env

    def get(self, key: str, default: Any = None) -> Any:
        value = getattr(self._env, key, default)
        return default if value is None or type(value).__name__ == "JsUndefined" else value


def gateway_for(env: Any) -> Gateway:
    global _gateway
    if _gateway is None:
        _gateway = Gateway(
            settings=settings.from_mapping(_Bindings(env)), db=D1Database(env.DB), http=WorkersFetchClient()
        )
    return _gateway


async def to_request(request: Any) -> Request:
    url = urlsplit(str(request.url))
    method = str(request.method).upper()
    body = b"" if method in ("GET", "HEAD") else bytes(await request.bytes())
    headers = {str(k).lower(): str(v) for k, v in request.headers.items()}
    return Request(
        method=method, path=unquote(url.path), query=dict(parse_qsl(url.query)), headers=headers, body=body
    )


class Default(WorkerEntrypoint):
    async def fetch(self, request: Any) -> Any:
        response = await gateway_for(self.env).handle(await to_request(request))
        # no body at all when empty: the JS Response constructor rejects even b"" with a 204
        return Response(response.body or None, status=response.status, headers=response.headers)

    async def scheduled(self, controller: Any, env: Any = None, ctx: Any = None) -> None:
        """Cron trigger: publish outbox events whose publish failed, so a committed write never loses one.

        Ignores the request path's backoff: the cron is the scheduled retry.
        """
        await realtime.sweep(gateway_for(self.env), respect_backoff=False)
