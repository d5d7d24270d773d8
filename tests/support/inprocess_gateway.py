"""The gateway in-process (``app.handle``) in front of a real CDI stand-in process, over a migrated SQLite.

For auth tests that need what real HTTP on loopback cannot give: a chosen client address per request
(the rate limits count non-loopback addresses), and a clock the test moves.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.support.paths import CONFIG
from tests.support.standin import Standin
from worker import app, jsoncodec, migrations
from worker.adapters.config_files import load_auth_config, load_migrations
from worker.adapters.httpx_client import HttpxClient
from worker.adapters.sqlite import SqliteDatabase
from worker.context import Gateway
from worker.http import Request
from worker.settings import from_mapping

ADDRESS = "198.51.100.7"


@dataclass
class Answer:
    status: int
    body: Any
    headers: dict[str, str]


@dataclass
class AuthGateway:
    gateway: Gateway
    admin_key: str
    db: SqliteDatabase

    async def call(self, method: str, path: str, body: Any = None, *, token: str | None = None,
                   address: str = ADDRESS, content_type: str = "application/json") -> Answer:
        headers = {"content-type": content_type} if body is not None else {}
        if token:
            headers["authorization"] = f"Bearer {token}"
        payload = jsoncodec.dumps_bytes(body) if body is not None else b""
        request = Request(method, path, headers=headers, body=payload, client_address=address)
        response = (await app.handle(self.gateway, request)).response
        return Answer(response.status, jsoncodec.loads(response.body) if response.body else None,
                      response.headers)

    async def close(self) -> None:
        await self.gateway.http.aclose()  # type: ignore[attr-defined]
        self.db.close()


async def open_gateway(tmp: Path, standin: Standin, **settings: str) -> AuthGateway:
    db = SqliteDatabase(tmp / "gateway.sqlite3")
    await migrations.migrate(db, load_migrations(CONFIG))
    admin_key = "admin-" + secrets.token_hex(16)
    values = {"ADMIN_KEY": admin_key, "COLLECTIONS": '{"collections": {}}', "AUTH_URL": standin.url,
              "AUTH_API_KEY": standin.api_key, "AUTH_CONFIG": jsoncodec.dumps(load_auth_config(CONFIG)),
              **settings}
    gateway = Gateway(settings=from_mapping(values), db=db, http=HttpxClient())
    return AuthGateway(gateway, admin_key, db)
