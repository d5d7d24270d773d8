"""app.py: the dispatcher both entrypoints call: JSON errors, and the work a request leaves for later."""

from __future__ import annotations

import pytest

from tests.support.gateway import Client
from worker import app, jsoncodec
from worker.context import Context, Gateway
from worker.http import Request


def request(method: str, path: str, body: object = None, user: str = "alice") -> Request:
    headers = {"authorization": f"Bearer token-{user}"}
    if body is not None:
        headers["content-type"] = "application/json"
    payload = jsoncodec.dumps_bytes(body) if body is not None else b""
    return Request(method, path, headers=headers, body=payload)


async def test_a_committed_write_leaves_its_publish_for_after_the_response(client: Client) -> None:
    gw: Gateway = client.gateway
    docs = "/v1/collections/notes/documents"
    created = await app.handle(gw, request("POST", docs, {"data": {"title": "x"}}))
    assert created.response.status == 201
    assert created.after_response == gw.publisher.after_write
    doc = jsoncodec.loads(created.response.body)["id"]
    read = await app.handle(gw, request("GET", f"{docs}/{doc}"))
    assert read.response.status == 200 and read.after_response is None
    refused = await app.handle(gw, request("POST", docs, {"data": {"nope": 1}}))
    assert refused.response.status == 422 and refused.after_response is None


async def test_errors_are_json_and_never_a_stack_trace(
    client: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    gw: Gateway = client.gateway
    missing = await app.handle(gw, request("GET", "/v1/nowhere"))
    assert missing.response.status == 404
    assert jsoncodec.loads(missing.response.body)["error"]["code"] == "not_found"

    async def broken(ctx: Context) -> object:
        raise RuntimeError("secret internals")

    from worker.api import health as health_api

    monkeypatch.setattr(health_api.ROUTES[0], "handler", broken)
    failed = await app.handle(gw, request("GET", "/v1/health"))
    assert failed.response.status == 500 and b"secret internals" not in failed.response.body
    request_id = failed.response.headers["x-request-id"]
    error = {"error": {"code": "internal", "message": "internal error", "request_id": request_id}}
    assert jsoncodec.loads(failed.response.body) == error


async def test_a_write_that_committed_and_then_failed_still_gets_its_events_published(
    client: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    from worker.api import documents as documents_api

    def failing_render(*args: object, **kwargs: object) -> None:
        raise RuntimeError("after the commit")

    monkeypatch.setattr(documents_api, "_doc_response", failing_render)
    handled = await app.handle(client.gateway, request("POST", "/v1/collections/notes/documents",
                                                       {"data": {"title": "kept"}}))
    assert handled.response.status == 500
    assert handled.after_response == client.gateway.publisher.after_write
    rows = (await client.gateway.db.execute("SELECT op FROM outbox")).rows
    assert rows == [{"op": "created"}]  # committed, and handed to the publisher
