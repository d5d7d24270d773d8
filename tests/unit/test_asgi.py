"""The ASGI entry: lifespan applies migrations, requests round-trip through the raw ASGI interface,
and the work a response leaves behind is finished or cancelled before shutdown closes the database."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from tests.support.gateway import StubAuthenticator, asgi_call, lifespan
from tests.support.paths import CONFIG
from tests.support.process import silent_url
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
    async with lifespan(app):
        status, headers, body = await asgi_call(
            app,
            "POST",
            "/v1/collections/notes/documents",
            jsoncodec.dumps_bytes({"data": {"title": "hi"}, "id": "h1"}),
            auth,
        )
        assert status == 201 and headers["etag"] == '"1"'
        status, _, body = await asgi_call(app, "GET", "/v1/collections/notes/documents/h1", headers=auth)
        assert status == 200 and jsoncodec.loads(body)["data"] == {"title": "hi"}
        status, _, body = await asgi_call(app, "GET", "/v1/collections/notes/documents/h1")
        assert status == 401 and jsoncodec.loads(body)["error"]["code"] == "unauthenticated"


async def test_the_bookmark_header_round_trips_and_advances_with_writes(tmp_path: Path) -> None:
    """The local gateway issues and accepts ``x-telestack-bookmark`` as the Workers one does with D1."""
    env = {"TELESTACK_DB_PATH": str(tmp_path / "g.sqlite3"), "TELESTACK_ADMIN_KEY": "k" * 32,
           "TELESTACK_CONFIG_DIR": str(CONFIG)}
    app = create_app(env)
    app.gateway.authenticator = StubAuthenticator()
    auth = {"authorization": "Bearer token-alice", "content-type": "application/json"}
    async with lifespan(app):
        path = "/v1/collections/notes/documents"
        status, headers, _ = await asgi_call(app, "GET", f"{path}/b1", headers=auth)
        assert status == 404  # an error response still carries the state it read
        first = headers["x-telestack-bookmark"]
        status, headers, _ = await asgi_call(app, "POST", path, jsoncodec.dumps_bytes(
            {"id": "b1", "data": {"title": "x"}}), {**auth, "x-telestack-bookmark": first})
        assert status == 201
        written = headers["x-telestack-bookmark"]
        assert written > first  # the write advanced it
        status, headers, _ = await asgi_call(app, "GET", f"{path}/b1",
                                             headers={**auth, "x-telestack-bookmark": written})
        assert status == 200 and headers["x-telestack-bookmark"] == written  # a read does not advance it
        status, _, body = await asgi_call(app, "GET", f"{path}/b1",
                                          headers={**auth, "x-telestack-bookmark": "not-a-bookmark"})
        assert status == 400 and jsoncodec.loads(body)["error"]["code"] == "invalid_bookmark"
        status, headers, _ = await asgi_call(app, "GET", "/v1/health")
        assert "x-telestack-bookmark" not in headers  # no session opened, nothing to report


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
    status, _, body = await asgi_call(
        app, "POST", "/v1/batch", b"x" * (asgi.MAX_BODY_BYTES + 10), {"content-type": "application/json"}
    )
    assert status == 413 and jsoncodec.loads(body)["error"]["code"] == "payload_too_large"


async def test_shutdown_does_not_wait_forever_for_a_publish_and_loses_no_event(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A publish still waiting on a silent Centrifugo is cancelled at shutdown; its event stays pending."""
    from worker import asgi

    monkeypatch.setattr(asgi, "SHUTDOWN_GRACE_SECONDS", 0.05)
    db = tmp_path / "g.sqlite3"
    with silent_url() as centrifugo:
        app = create_app({"TELESTACK_DB_PATH": str(db), "TELESTACK_ADMIN_KEY": "k" * 32,
                          "TELESTACK_CONFIG_DIR": str(CONFIG), "TELESTACK_CENTRIFUGO_API_URL": centrifugo,
                          "TELESTACK_CENTRIFUGO_API_KEY": "api-key"})
        app.gateway.authenticator = StubAuthenticator()
        async with lifespan(app):
            headers = {"authorization": "Bearer token-alice", "content-type": "application/json"}
            status, _, _ = await asgi_call(app, "POST", "/v1/collections/notes/documents",
                                           jsoncodec.dumps_bytes({"data": {"title": "kept"}}), headers)
            assert status == 201
            for _ in range(1000):  # until the publish has started and waits on Centrifugo
                if app.gateway.publisher.running:
                    break
                await asyncio.sleep(0.01)
            else:
                pytest.fail("the publish never started")
        assert not app.gateway.publisher.running  # cancelled; the lifespan helper saw shutdown complete
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT op, sent_at, attempts FROM outbox").fetchall() == [("created", None, 0)]


def test_the_local_server_options_drop_access_logs_and_require_lifespan() -> None:
    from worker.asgi import uvicorn_options

    opts = uvicorn_options()
    assert opts["access_log"] is False and opts["lifespan"] == "on" and opts["server_header"] is False
    assert opts["proxy_headers"] is False
    import importlib.util

    if importlib.util.find_spec("uvloop") and importlib.util.find_spec("httptools"):
        assert (opts["loop"], opts["http"]) == ("uvloop", "httptools")


async def test_the_request_carries_the_asgi_peer_as_its_client_address(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from worker import app as gateway_app
    from worker.http import Response

    seen: list[str] = []

    async def capture(gateway: Any, request: Any) -> Any:
        seen.append(request.client_address)
        return gateway_app.Handled(Response.json({}))

    monkeypatch.setattr(gateway_app, "handle", capture)
    app = create_app({"TELESTACK_DB_PATH": str(tmp_path / "g.sqlite3"), "TELESTACK_ADMIN_KEY": "k" * 32,
                      "TELESTACK_CONFIG_DIR": str(CONFIG)})
    sent: list[dict] = []

    async def receive() -> dict:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict) -> None:
        sent.append(message)

    base = {"type": "http", "method": "GET", "path": "/v1/health", "query_string": b"",
            "headers": [(b"x-forwarded-for", b"6.6.6.6")]}
    await app({**base, "client": ("203.0.113.9", 5123)}, receive, send)
    await app(base, receive, send)  # a server that gives no peer: empty, never a header's claim
    assert seen == ["203.0.113.9", ""]
