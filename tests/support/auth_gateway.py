"""A real gateway (uvicorn, ``worker.asgi``, in a thread) in front of a CDI stand-in, for auth tests.

The gateway's Database is wrapped to count calls (:class:`CountingDb`), so a test can prove a
refused request never reached the database.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import uvicorn

from tests.support.paths import free_port
from tests.support.standin import Standin
from worker.asgi import create_app
from worker.database import Params, Result, Statement

ADMIN_KEY = "gateway-admin-key-" + uuid.uuid4().hex


class CountingDb:
    """Passes every call through and counts it (proves refused requests never reach the database)."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.calls = 0

    async def execute(self, sql: str, params: Params = ()) -> Result:
        self.calls += 1
        return await self.inner.execute(sql, params)

    async def batch(self, statements: list[Statement]) -> list[Result]:
        self.calls += 1
        return await self.inner.batch(statements)

    def session(self, bookmark: str | None, *, writes: bool = False) -> Any:
        self.calls += 1  # a request that opens a session has reached the database
        return self.inner.session(bookmark, writes=writes)


@dataclass
class Gw:
    url: str
    http: httpx.Client
    db: CountingDb
    standin: Standin

    def post(self, path: str, body: Any = None, token: str | None = None, **kw: Any) -> httpx.Response:
        headers = {"authorization": f"Bearer {token}"} if token else {}
        return self.http.post(path, json=body, headers=headers, **kw)

    def get(self, path: str, token: str | None = None) -> httpx.Response:
        headers = {"authorization": f"Bearer {token}"} if token else {}
        return self.http.get(path, headers=headers)


def serve_gateway(tmp: Path, standin: Standin, **extra: str) -> Iterator[Gw]:
    env = {"TELESTACK_ADMIN_KEY": ADMIN_KEY, "TELESTACK_AUTH_URL": standin.url,
           "TELESTACK_AUTH_API_KEY": standin.api_key, "TELESTACK_DB_PATH": str(tmp / "gateway.sqlite3"),
           **{f"TELESTACK_{k.upper()}": v for k, v in extra.items()}}
    app = create_app(env)

    async def served(scope: dict[str, Any], receive: Any, send: Any) -> None:
        async def send_then_close(message: dict[str, Any]) -> None:
            if message["type"] == "lifespan.shutdown.complete":  # close pooled core connections in-loop
                await app.gateway.http.aclose()
            await send(message)

        await app(scope, receive, send_then_close if scope["type"] == "lifespan" else send)

    port = free_port()
    server = uvicorn.Server(uvicorn.Config(served, host="127.0.0.1", port=port, log_level="warning",
                                           lifespan="on", ws="none", loop="asyncio", access_log=False))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "gateway did not start"
        time.sleep(0.02)
    db = CountingDb(app.gateway.db)
    app.gateway.db = db
    client = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30)
    try:
        yield Gw(f"http://127.0.0.1:{port}", client, db, standin)
    finally:
        client.close()
        server.should_exit = True
        thread.join(timeout=10)


