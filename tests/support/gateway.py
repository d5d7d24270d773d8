"""A Gateway on a temporary SQLite file with the repo's migrations and collections, plus a request helper.

Identity is stubbed: ``gateway.cache["authenticator"]`` maps ``Bearer token-<user>`` to that user and the
admin key to the admin principal; anything else is a 401 (the real verifier is worker/auth.py's).
:func:`serve` runs the real thing instead: a gateway process on a free port.
"""

from __future__ import annotations

import os
import sys
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest_asyncio

from tests.support.paths import CONFIG, ROOT, free_port
from tests.support.process import Process, answers, start_process
from worker import jsoncodec, migrations
from worker.adapters.config_files import load_collections, load_migrations
from worker.adapters.sqlite import SqliteDatabase
from worker.app import Gateway
from worker.collections import registry_for
from worker.http import ApiError, Request
from worker.outbound import HttpClient
from worker.principal import Principal
from worker.settings import from_mapping

ADMIN_KEY = "test-admin-key-0123456789"


class StubAuthenticator:
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
    """Calls ``Gateway.handle`` directly with a neutral Request (no server, no sockets)."""

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
        r = await self.gateway.handle(Request(method=method, path=path, headers=hdrs, body=body or b""))
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
    gateway.cache["authenticator"] = StubAuthenticator()
    await migrations.migrate(db, load_migrations(CONFIG), registry_for(gateway))
    return gateway


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


@pytest_asyncio.fixture
async def gateway(tmp_path: Path) -> AsyncIterator[Gateway]:
    gw = await make_gateway(tmp_path / "gateway.sqlite3")
    yield gw
    gw.db.close()  # type: ignore[attr-defined]


@pytest_asyncio.fixture
async def client(gateway: Gateway) -> Client:
    return Client(gateway)
