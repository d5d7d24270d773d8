"""The gateway as a raw ASGI app for CPython: the local stack's entrypoint (``python -m worker.asgi``).

Settings come from ``TELESTACK_*`` environment variables (COLLECTIONS and AUTH_CONFIG default
to the YAML under ``TELESTACK_CONFIG_DIR``); the database is the SQLite file at
``TELESTACK_DB_PATH``; migrations are applied at start-up (ASGI lifespan).

Work a request leaves for after its response (publishing the outbox events a
write committed) starts as a background task once ``http.response.body`` has been
sent, so the client has its answer whatever Centrifugo does. Those tasks are kept
referenced until done (the event loop holds tasks only weakly), each ends by the
outbox's publish deadline, and lifespan shutdown lets them finish (or cancels
them after :data:`SHUTDOWN_GRACE_SECONDS`) before the database closes. The
lifespan also runs the periodic sweep, the local stand-in for the Workers cron
trigger.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

from worker import app as gateway_app
from worker import migrations, request_ids, settings
from worker.adapters.config_files import config_settings, load_migrations
from worker.adapters.httpx_client import HttpxClient
from worker.adapters.pyjwt_signatures import PyJwtSignatures
from worker.adapters.sqlite import SqliteDatabase
from worker.context import Gateway
from worker.http import ApiError, Request, Response

MAX_BODY_BYTES = 8 * 1024 * 1024
#: how often the local gateway publishes outbox events a bounded request drain left behind
#: (the Workers cron trigger does this job in cloud stacks)
OUTBOX_SWEEP_SECONDS = 1.0
#: how long shutdown waits for after-response work: an in-flight Centrifugo call ends within its own
#: timeout, and whatever is cut short stays pending in the outbox for the next start's sweep
SHUTDOWN_GRACE_SECONDS = 3.0
log = logging.getLogger("telestack.gateway")
CONFIG_DIR = Path(os.environ.get("TELESTACK_CONFIG_DIR", Path(__file__).resolve().parents[1] / "config"))


def create_app(env: dict[str, str] | None = None) -> Any:
    env = dict(os.environ if env is None else env)
    config_dir = Path(env.get("TELESTACK_CONFIG_DIR", CONFIG_DIR))
    values = {k.removeprefix("TELESTACK_"): v for k, v in env.items() if k.startswith("TELESTACK_")}
    for name, text in config_settings(config_dir).items():  # what the Worker's bundle carries
        values.setdefault(name, text)
    db_path = Path(env.get("TELESTACK_DB_PATH", ".telestack/gateway.sqlite3"))
    db_path.parent.mkdir(parents=True, exist_ok=True)
    db = SqliteDatabase(db_path)
    http = HttpxClient()
    gateway = Gateway(settings=settings.from_mapping(values), db=db, http=http, signatures=PyJwtSignatures())
    background = _BackgroundTasks()

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            sweeper: asyncio.Task[None] | None = None
            while (await receive())["type"] == "lifespan.startup":
                try:
                    await migrations.migrate(db, load_migrations(config_dir), gateway.collections)
                except Exception as exc:  # a failed migration names itself; the server must not start
                    return await send({"type": "lifespan.startup.failed", "message": str(exc)})
                sweeper = asyncio.create_task(_sweep_outbox(gateway))
                await send({"type": "lifespan.startup.complete"})
            if sweeper is not None:
                sweeper.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await sweeper
            await background.finish(SHUTDOWN_GRACE_SECONDS)
            db.close()
            await http.aclose()  # no sockets left open at shutdown
            return await send({"type": "lifespan.shutdown.complete"})
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        announced = headers.get("content-length", "")
        if announced.isdigit() and int(announced) > MAX_BODY_BYTES:  # refused before reading a byte of it
            return await _send(send, gateway_app.refuse(headers, _TOO_LARGE))
        body, more = b"", True
        while more:
            message = await receive()
            body += message.get("body", b"")
            more = message.get("more_body", False)
            if len(body) > MAX_BODY_BYTES:  # refuse before buffering more; the handlers' limits are lower
                return await _send(send, gateway_app.refuse(headers, _TOO_LARGE))
        qs = scope["query_string"]
        request = Request(
            method=scope["method"],
            path=scope["path"],
            query=dict(parse_qsl(qs.decode("latin-1"))) if qs else {},
            headers=headers,
            body=body,
            client_address=(scope.get("client") or ("",))[0] or "",
        )
        handled = await gateway_app.handle(gateway, request)
        await _send(send, handled.response)
        if handled.after_response is not None:
            background.start(handled.after_response)

    app.gateway = gateway  # type: ignore[attr-defined]  # tests and benchmarks reach the Gateway through it
    return app


class _BackgroundTasks:
    """After-response work: referenced until done, finished or cancelled before shutdown."""

    def __init__(self) -> None:
        self._tasks: set[asyncio.Task[None]] = set()

    def start(self, work: Callable[[], Coroutine[Any, Any, None]]) -> None:
        task = asyncio.get_running_loop().create_task(work())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def finish(self, grace: float) -> None:
        if not self._tasks:
            return
        _, late = await asyncio.wait(set(self._tasks), timeout=grace)
        for task in late:
            task.cancel()
        if late:
            await asyncio.wait(late)


async def _sweep_outbox(gateway: Gateway) -> None:
    """The local stand-in for the Workers cron trigger: no committed event waits for the next write."""
    while True:
        await asyncio.sleep(OUTBOX_SWEEP_SECONDS)
        try:
            await gateway.publisher.sweep()
        except Exception:  # keep sweeping; the rows stay pending and are retried
            log.exception("outbox sweep failed")


_TOO_LARGE = ApiError(413, "payload_too_large", f"request body exceeds {MAX_BODY_BYTES} bytes")


async def _send(send: Any, response: Response) -> None:
    headers = [(k.encode(), v.encode("latin-1")) for k, v in response.headers.items()]
    await send({"type": "http.response.start", "status": response.status, "headers": headers})
    await send({"type": "http.response.body", "body": response.body})


def uvicorn_options() -> dict[str, Any]:
    """How the local gateway is served (also used by scripts/bench_documents.py, so it measures this).

    uvloop + httptools when installed (``uvicorn[standard]``), no per-request access log, no
    ``server`` header (one header less per response, and no version disclosure), lifespan required
    (migrations run there), and no proxy-headers middleware: the client address the auth rate limits
    count is the socket's peer (a forwarded-for header is the client's to forge), and that middleware
    parsed IP addresses on every request (~10 us).
    """
    import importlib.util

    fast = all(importlib.util.find_spec(m) is not None for m in ("uvloop", "httptools"))
    return {
        "log_level": "warning",
        "access_log": False,
        "server_header": False,
        "lifespan": "on",
        "proxy_headers": False,
        "loop": "uvloop" if fast else "auto",
        "http": "httptools" if fast else "auto",
    }


def run(app: Any, host: str, port: int) -> None:
    import uvicorn

    uvicorn.run(app, host=host, port=port, **uvicorn_options())


if __name__ == "__main__":
    request_ids.configure_logging(os.environ.get("TELESTACK_LOG_LEVEL", "WARNING").upper())
    host = os.environ.get("TELESTACK_HOST", "127.0.0.1")
    run(create_app(), host, int(os.environ.get("TELESTACK_PORT", "8787")))
