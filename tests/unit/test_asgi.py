"""The ASGI entry: lifespan applies migrations, requests round-trip through the raw ASGI interface."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.support.gateway import StubAuthenticator
from tests.support.paths import CONFIG
from worker import jsoncodec
from worker.asgi import create_app


async def _lifespan(app: Any, kind: str) -> list[dict]:
    sent: list[dict] = []
    messages = [{"type": f"lifespan.{kind}"}] + ([{"type": "lifespan.shutdown"}] if kind == "startup" else [])

    async def receive() -> dict:
        return messages.pop(0) if messages else {"type": "lifespan.shutdown"}

    async def send(message: dict) -> None:
        sent.append(message)

    await app({"type": "lifespan"}, receive, send)
    return sent


async def _call(
    app: Any, method: str, path: str, body: bytes = b"", headers: dict | None = None
) -> tuple[int, dict, bytes]:
    chunks = [body[:3], body[3:]]  # the body arrives in two messages
    sent: list[dict] = []

    async def receive() -> dict:
        chunk = chunks.pop(0)
        return {"type": "http.request", "body": chunk, "more_body": bool(chunks)}

    async def send(message: dict) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "method": method,
        "path": path,
        "query_string": b"",
        "headers": [(k.encode(), v.encode()) for k, v in (headers or {}).items()],
    }
    await app(scope, receive, send)
    return sent[0]["status"], {k.decode(): v.decode() for k, v in sent[0]["headers"]}, sent[1]["body"]


async def test_asgi_app_migrates_and_serves(tmp_path: Path) -> None:
    env = {
        "TELESTACK_DB_PATH": str(tmp_path / "g.sqlite3"),
        "TELESTACK_ADMIN_KEY": "k" * 32,
        "TELESTACK_CONFIG_DIR": str(CONFIG),
    }
    app = create_app(env)
    app.gateway.authenticator = StubAuthenticator()
    startup = await _lifespan(app, "startup")
    assert startup[0]["type"] == "lifespan.startup.complete"
    app = create_app(env)  # the shutdown above closed the database; a second start is a no-op migration
    app.gateway.authenticator = StubAuthenticator()
    auth = {"authorization": "Bearer token-alice", "content-type": "application/json"}
    status, headers, body = await _call(
        app,
        "POST",
        "/v1/collections/notes/documents",
        jsoncodec.dumps_bytes({"data": {"title": "hi"}, "id": "h1"}),
        auth,
    )
    assert status == 201 and headers["etag"] == '"1"'
    status, _, body = await _call(app, "GET", "/v1/collections/notes/documents/h1", headers=auth)
    assert status == 200 and jsoncodec.loads(body)["data"] == {"title": "hi"}
    status, _, body = await _call(app, "GET", "/v1/collections/notes/documents/h1")
    assert status == 401 and jsoncodec.loads(body)["error"]["code"] == "unauthenticated"


async def test_failed_migration_fails_startup(tmp_path: Path) -> None:
    config = tmp_path / "config"
    (config / "migrations").mkdir(parents=True)
    (config / "collections").mkdir()
    (config / "migrations" / "0001_bad.sql").write_text("CREATE TABLE x (a); INSERT INTO nope VALUES (1);")
    app = create_app(
        {
            "TELESTACK_DB_PATH": str(tmp_path / "g.sqlite3"),
            "TELESTACK_ADMIN_KEY": "k" * 32,
            "TELESTACK_CONFIG_DIR": str(config),
        }
    )
    sent = await _lifespan(app, "startup")
    assert sent[0]["type"] == "lifespan.startup.failed" and "0001_bad" in sent[0]["message"]


async def test_oversized_body_is_refused_without_buffering_it(tmp_path: Path) -> None:
    from worker import asgi

    env = {"TELESTACK_DB_PATH": str(tmp_path / "sub" / "g.sqlite3"), "TELESTACK_ADMIN_KEY": "k" * 32}
    app = create_app({**env, "TELESTACK_CONFIG_DIR": str(CONFIG)})
    status, _, body = await _call(
        app, "POST", "/v1/batch", b"x" * (asgi.MAX_BODY_BYTES + 10), {"content-type": "application/json"}
    )
    assert status == 413 and jsoncodec.loads(body)["error"]["code"] == "payload_too_large"
