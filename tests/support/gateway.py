"""A Gateway on a temporary SQLite file with the repo's migrations and collections, plus a request helper.

Identity is stubbed: ``gateway.authenticator`` is replaced by :class:`StubAuthenticator`, which maps
``Bearer token-<user>`` to that user and the admin key to the admin principal; anything else is a 401
(the real verifier is worker/auth.py's). :func:`serve` runs the real thing instead: a gateway process
on a free port.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest_asyncio

from tests.support.paths import CONFIG, ROOT, free_port
from tests.support.process import Process, answers, start_process
from worker import app, jsoncodec, migrations
from worker.adapters.config_files import load_collections, load_migrations
from worker.adapters.sqlite import SqliteDatabase
from worker.context import Gateway
from worker.http import ApiError, Request
from worker.outbound import HttpClient
from worker.principal import Principal
from worker.settings import from_mapping

ADMIN_KEY = "test-admin-key-0123456789"


class StubAuthenticator:
    """Stands in for ``SessionAuthenticator.authenticate``: identity from the token's text."""

    async def authenticate(self, request: Request) -> Principal:
        value = request.header("authorization") or ""
        token = value.removeprefix("Bearer ").strip()
        if token == ADMIN_KEY:
            return Principal(user_id=None, is_admin=True)
        if token.startswith("token-") and len(token) > 6:
            return Principal(user_id=token.removeprefix("token-"))
        raise ApiError(401, "unauthenticated", "a valid access token is required")


@dataclass
class Reply:
    status: int
    headers: dict[str, str]
    body: bytes

    @property
    def json(self) -> Any:
        return jsoncodec.loads(self.body)


class Client:
    """Calls ``app.handle`` directly with a neutral Request (no server, no sockets).

    Like a server, it runs the work a request leaves for after its response (publishing the
    outbox) once it has the response; unlike one, it finishes that work before returning, so a
    test sees its outcome without waiting.
    """

    def __init__(self, gateway: Gateway) -> None:
        self.gateway = gateway

    async def request(
        self,
        method: str,
        path: str,
        *,
        user: str | None = "alice",
        json: Any = None,
        body: bytes | None = None,
        headers: dict[str, str] | None = None,
    ) -> Reply:
        hdrs: dict[str, str] = {}
        if user == "admin":
            hdrs["authorization"] = f"Bearer {ADMIN_KEY}"
        elif user is not None:
            hdrs["authorization"] = f"Bearer token-{user}"
        if json is not None:
            body = jsoncodec.dumps_bytes(json)
            hdrs["content-type"] = "application/json"
        hdrs.update({k.lower(): v for k, v in (headers or {}).items()})
        request = Request(method=method, path=path, headers=hdrs, body=body or b"")
        handled = await app.handle(self.gateway, request)
        if handled.after_response is not None:
            await handled.after_response()
        r = handled.response
        return Reply(r.status, r.headers, r.body)

    async def create(self, collection: str, data: Any, user: str | None = "alice", **extra: Any) -> Reply:
        return await self.request(
            "POST", f"/v1/collections/{collection}/documents", user=user, json={"data": data, **extra}
        )

    async def query(self, collection: str, user: str | None = "alice", **body: Any) -> Reply:
        return await self.request("POST", f"/v1/collections/{collection}/query", user=user, json=body)


def base_settings(collections: dict[str, Any] | None = None) -> dict[str, str]:
    """What every test gateway is configured with: the test admin key and the collections (the repo's)."""
    doc = collections if collections is not None else load_collections(CONFIG)
    return {"ADMIN_KEY": ADMIN_KEY, "COLLECTIONS": jsoncodec.dumps(doc)}


async def make_gateway(
    db_path: Path,
    collections: dict[str, Any] | None = None,
    *,
    settings: Mapping[str, str] | None = None,
    http: HttpClient | None = None,
) -> Gateway:
    """A migrated gateway with stub identity; ``settings`` default to :func:`base_settings`.

    ``http`` is needed only by code that calls out (documents make none; realtime and health do).
    """
    db = SqliteDatabase(db_path)
    gateway = Gateway(
        settings=from_mapping(base_settings(collections) if settings is None else settings), db=db, http=http
    )  # type: ignore[arg-type]
    gateway.authenticator = StubAuthenticator()  # type: ignore[assignment]
    await migrations.migrate(db, load_migrations(CONFIG), gateway.collections)
    return gateway


@contextlib.asynccontextmanager
async def lifespan(asgi_app: Any) -> AsyncIterator[None]:
    """An ``worker.asgi`` app between lifespan startup and shutdown, as uvicorn drives it."""
    startup: list[dict[str, Any]] = [{"type": "lifespan.startup"}]
    sent: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    stop = asyncio.Event()

    async def receive() -> dict[str, Any]:
        if startup:
            return startup.pop()
        await stop.wait()
        return {"type": "lifespan.shutdown"}

    task = asyncio.create_task(asgi_app({"type": "lifespan"}, receive, sent.put))
    try:
        assert (await asyncio.wait_for(sent.get(), 30))["type"] == "lifespan.startup.complete"
        yield
    finally:
        stop.set()
        await asyncio.wait_for(task, 30)
    assert (await sent.get())["type"] == "lifespan.shutdown.complete"


async def asgi_call(
    asgi_app: Any,
    method: str,
    path: str,
    body: bytes = b"",
    headers: Mapping[str, str] | None = None,
    on_send: Callable[[dict[str, Any]], Awaitable[None]] | None = None,
) -> tuple[int, dict[str, str], bytes]:
    """One HTTP request through the raw ASGI interface, its body in two messages; (status, headers, body).

    ``on_send`` sees each message the app sends, as it sends it.
    """
    chunks = [body[:3], body[3:]]
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        chunk = chunks.pop(0)
        return {"type": "http.request", "body": chunk, "more_body": bool(chunks)}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)
        if on_send is not None:
            await on_send(message)

    scope = {
        "type": "http",
        "method": method,
        "path": path,
        "query_string": b"",
        "headers": [(k.encode(), v.encode()) for k, v in (headers or {}).items()],
    }
    await asgi_app(scope, receive, send)
    start, end = sent
    return start["status"], {k.decode(): v.decode() for k, v in start["headers"]}, end["body"]


def serve(
    workdir: Path, settings: Mapping[str, str], argv: Sequence[str] = ("-m", "worker.asgi")
) -> tuple[Process, str]:
    """A real gateway process on a free loopback port, returned once ``/v1/health`` answers (any status).

    ``settings`` are its ``TELESTACK_*`` variables (none is inherited from this process); the
    log is ``workdir/gateway-<port>.log``. Stop it with ``process.stop_process``.
    """
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("TELESTACK_")}
    env.update(settings)
    env.update(TELESTACK_HOST="127.0.0.1", TELESTACK_PORT=str(port))
    url = f"http://127.0.0.1:{port}"
    proc = start_process(
        [sys.executable, *argv],
        log=workdir / f"gateway-{port}.log",
        ready=lambda: answers(f"{url}/v1/health", status=None),
        what="gateway",
        env=env,
        cwd=ROOT,
    )
    return proc, url


GatewayFactory = Callable[..., Awaitable[Gateway]]


@pytest_asyncio.fixture
async def gateways(tmp_path: Path) -> AsyncIterator[GatewayFactory]:
    """``await gateways(settings, http)``: a migrated gateway (see :func:`make_gateway`) on its own file.

    Every gateway made is closed after the test: its database, and its HTTP client when it has one
    to close (an ``HttpxClient``).
    """
    made: list[Gateway] = []

    async def make(settings: Mapping[str, str] | None = None, http: HttpClient | None = None) -> Gateway:
        gw = await make_gateway(tmp_path / f"gateway-{len(made)}.sqlite3", settings=settings, http=http)
        made.append(gw)
        return gw

    yield make
    for gw in made:
        aclose = getattr(gw.http, "aclose", None)
        if aclose is not None:
            await aclose()
        gw.db.close()  # type: ignore[attr-defined]


@pytest_asyncio.fixture
async def gateway(gateways: GatewayFactory) -> Gateway:
    """A migrated gateway with the repo's collections, the test admin key and stub identity."""
    return await gateways()


@pytest_asyncio.fixture
async def client(gateway: Gateway) -> Client:
    return Client(gateway)
