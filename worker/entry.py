"""The Cloudflare Python Worker entrypoint: bindings -> one Gateway per isolate; requests -> app.handle.

Bindings (wrangler / Pulumi): ``DB`` (D1) plus the settings keys of
``worker/settings.py`` as vars/secrets, except the settings built from ``config/``
(``COLLECTIONS``, ``AUTH_CONFIG``): they travel in the bundle as the generated
top-level module ``telestack_config`` (infra/worker_bundle.py), since a Worker reads
no files and a plain-text binding holds at most 5 KB. Migrations are applied by ops
(D1 HTTP API), never at request time.

Work a request leaves for after its response (publishing the outbox events a
write committed) is handed to ``ctx.waitUntil``: the runtime sends the response
as soon as ``fetch`` returns and keeps the isolate alive until that work settles.
``waitUntil`` takes a JS Promise; a Python Task crosses the FFI as a proxy that
JS awaits as a thenable, created with ``create_proxy`` because an argument's
automatic proxy is destroyed when the call returns, before the runtime awaits it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

import telestack_config  # type: ignore[import-not-found]  # generated into the bundle
from workers import Response, WorkerEntrypoint  # type: ignore[import-not-found]

from worker import app, request_ids, settings
from worker.adapters.d1 import D1Database
from worker.adapters.webcrypto import WebCryptoSignatures
from worker.adapters.workers_fetch import WorkersFetchClient
from worker.context import Gateway
from worker.http import Request

_gateway: Gateway | None = None


#: settings the bundle carries instead of a binding (a binding of the same name is not read)
_BUNDLED: dict[str, str] = telestack_config.SETTINGS


class _Bindings:
    """``env`` as the mapping ``settings.from_mapping`` reads, plus the settings the bundle carries."""

    def __init__(self, env: Any) -> None:
        self._env = env

    def get(self, key: str, default: Any = None) -> Any:
        if key in _BUNDLED:
            return _BUNDLED[key]
        value = getattr(self._env, key, default)
        return default if value is None or type(value).__name__ == "JsUndefined" else value


def gateway_for(env: Any) -> Gateway:
    global _gateway
    if _gateway is None:
        request_ids.configure_logging()
        _gateway = Gateway(
            settings=settings.from_mapping(_Bindings(env)), db=D1Database(env.DB), http=WorkersFetchClient(),
            signatures=WebCryptoSignatures(),
        )
    return _gateway


async def to_request(request: Any) -> Request:
    url = urlsplit(str(request.url))
    method = str(request.method).upper()
    body = b"" if method in ("GET", "HEAD") else bytes(await request.bytes())
    headers = {str(k).lower(): str(v) for k, v in request.headers.items()}
    return Request(
        method=method, path=unquote(url.path), query=dict(parse_qsl(url.query)), headers=headers, body=body,
        client_address=headers.get("cf-connecting-ip", ""),
    )


def wait_until(ctx: Any, work: Callable[[], Coroutine[Any, Any, None]]) -> None:
    """Run ``work`` after the response, kept alive by ``ctx.waitUntil`` (see the module docstring)."""
    from pyodide.ffi import create_proxy  # type: ignore[import-not-found]  # only inside a Worker

    task = asyncio.ensure_future(work())
    promise = create_proxy(task)
    task.add_done_callback(lambda _: promise.destroy())  # the runtime has its result by then
    ctx.waitUntil(promise)


class Default(WorkerEntrypoint):
    async def fetch(self, request: Any) -> Any:
        handled = await app.handle(gateway_for(self.env), await to_request(request))
        if handled.after_response is not None:
            wait_until(self.ctx, handled.after_response)
        response = handled.response
        # no body at all when empty: the JS Response constructor rejects even b"" with a 204
        return Response(response.body or None, status=response.status, headers=response.headers)

    async def scheduled(self, controller: Any, env: Any = None, ctx: Any = None) -> None:
        """Cron trigger: publish outbox events whose publish failed, so a committed write never loses one.

        Ignores the write path's backoff: the cron is the scheduled retry.
        """
        await gateway_for(self.env).publisher.sweep(respect_backoff=False)
