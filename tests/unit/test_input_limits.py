"""Hostile bodies through the dispatcher and the ASGI entry: a documented 4xx JSON error, nothing written.

The same bodies go through the Workers entry under Pyodide in tests/test_pyodide_compat.py.
"""

from __future__ import annotations

import base64
from pathlib import Path

import pytest

from tests.support.gateway import ADMIN_KEY, Client, StubAuthenticator, asgi_call, lifespan
from tests.support.hostile_json import NASTY
from tests.support.paths import CONFIG
from worker import jsoncodec, jws
from worker.app import ROUTES
from worker.asgi import MAX_BODY_BYTES, create_app
from worker.http import JSON
from worker.openapi import BODY_ERRORS, errors_of
from worker.operations import operation_of

DOCS = "/v1/collections/notes/documents"


async def _written(client: Client) -> tuple[int, int]:
    db = client.gateway.db
    docs = (await db.execute("SELECT count(*) AS n FROM documents")).rows[0]["n"]
    events = (await db.execute("SELECT count(*) AS n FROM outbox")).rows[0]["n"]
    return docs, events


@pytest.mark.parametrize(("what", "body"), NASTY, ids=[w for w, _ in NASTY])
async def test_a_nasty_body_is_a_400_and_nothing_is_written(client: Client, what: str, body: bytes) -> None:
    for user in ("alice", "admin"):
        r = await client.request("POST", DOCS, user=user, body=body, headers={"content-type": JSON})
        assert r.status == 400, (what, r.body[:200])
        error = r.json["error"]
        assert error["code"] == "invalid_json" and error["request_id"] == r.headers["x-request-id"]
        batch = b'{"writes":[{"op":"create","collection":"notes","data":' + body[len(b'{"data":'):-1] + b"}]}"
        r = await client.request("POST", "/v1/batch", user=user, body=batch, headers={"content-type": JSON})
        assert r.status == 400 and r.json["error"]["code"] == "invalid_json", (what, r.body[:200])
    assert await _written(client) == (0, 0)


def test_invalid_json_is_documented_on_every_route_with_a_body() -> None:
    for route in ROUTES:
        op = operation_of(route.handler)
        assert op is not None
        if op.body is not None:
            assert set(BODY_ERRORS[400]) <= set(errors_of(op)[400]), f"{route.method} {route.path}"


async def test_the_largest_safe_integer_and_32_levels_are_accepted(client: Client) -> None:
    deep: list = []
    for _ in range(28):
        deep = [deep]  # 29 levels of lists inside {"data": {"meta": {...}}}: 32 in all
    data = {"title": "edge", "meta": {"n": 2**53 - 1, "m": -(2**53 - 1), "deep": deep}}
    r = await client.create("notes", data)
    assert r.status == 201 and r.json["data"] == data


async def test_a_forged_cursor_or_token_nested_past_the_recursion_limit_is_a_4xx(client: Client) -> None:
    """These reached json.loads' recursion limit: a RecursionError, answered 500."""
    deep = base64.urlsafe_b64encode(b"[" * 3000).decode().rstrip("=")
    r = await client.query("notes", cursor=deep)
    assert r.status == 400 and r.json["error"]["code"] == "invalid_query"
    with pytest.raises(jws.MalformedToken, match="not JSON"):
        jws.parse(f"{deep}.{deep}.x")


@pytest.mark.parametrize("announced", ["5", "100", "abc", "-1", "1" * 40])
async def test_a_body_unlike_its_content_length_is_refused(client: Client, announced: str) -> None:
    body = jsoncodec.dumps_bytes({"data": {"title": "x"}})
    headers = {"content-type": "application/json", "content-length": announced}
    r = await client.request("POST", DOCS, body=body, headers=headers)
    assert r.status == 400 and r.json["error"]["code"] == "invalid_content_length"
    assert await _written(client) == (0, 0)


async def test_asgi_refuses_an_announced_or_actual_oversized_body_before_the_handler(tmp_path: Path) -> None:
    app = create_app({"TELESTACK_DB_PATH": str(tmp_path / "g.sqlite3"), "TELESTACK_ADMIN_KEY": ADMIN_KEY,
                      "TELESTACK_CONFIG_DIR": str(CONFIG)})
    app.gateway.authenticator = StubAuthenticator()
    auth = {"authorization": "Bearer token-alice", "content-type": "application/json"}
    async with lifespan(app):
        announced = {**auth, "content-length": str(MAX_BODY_BYTES + 1), "x-request-id": "client-id-123"}
        status, headers, body = await asgi_call(app, "POST", DOCS, b'{"data":{}}', announced)
        assert status == 413 and jsoncodec.loads(body)["error"]["code"] == "payload_too_large"
        assert headers["x-request-id"] == "client-id-123" and headers["x-content-type-options"] == "nosniff"
        big = b'{"data":{"title":"' + b"x" * MAX_BODY_BYTES + b'"}}'
        status, headers, body = await asgi_call(app, "POST", DOCS, big, auth)
        assert status == 413 and jsoncodec.loads(body)["error"]["request_id"] == headers["x-request-id"]
        rows = (await app.gateway.db.execute("SELECT count(*) AS n FROM documents")).rows
    assert rows == [{"n": 0}]


@pytest.mark.parametrize("owner", [{}, [], 5, True, "", "x" * 256])
async def test_an_owner_id_that_is_not_a_user_id_is_a_400(client: Client, owner: object) -> None:
    """A dict or list owner_id was a 500 (unhashable), a number or boolean stored as the owner."""
    r = await client.request("POST", DOCS, user="admin", json={"data": {"title": "t"}, "owner_id": owner})
    assert r.status == 400 and r.json["error"]["code"] == "invalid_owner_id"
    write = {"op": "create", "collection": "notes", "data": {"title": "t"}, "owner_id": owner}
    r = await client.request("POST", "/v1/batch", user="admin", json={"writes": [write]})
    assert r.status == 400 and r.json["error"]["code"] == "invalid_owner_id"
    assert await _written(client) == (0, 0)
    r = await client.request("POST", DOCS, user="admin", json={"data": {"title": "t"}, "owner_id": "user-1"})
    assert r.status == 201 and r.json["owner_id"] == "user-1"


@pytest.mark.parametrize("op", ["replace", "patch", "delete"])
@pytest.mark.parametrize("owner", ["user-1", "x" * 256, {}])
async def test_a_batch_write_other_than_a_create_refuses_an_owner_id(client: Client, op: str,
                                                                     owner: object) -> None:
    """Only a create sets the owner; a patch with any owner_id (even a 256-character one) committed.

    Found by the fuzzer once its batches reached existing documents: the owner_id was ignored, so an
    admin's patch that meant to move a document silently did not, and an invalid one was accepted.
    """
    made = await client.create("notes", {"title": "t"})
    write = {"op": op, "collection": "notes", "id": made.json["id"], "owner_id": owner,
             **({} if op == "delete" else {"data": {"title": "u"}})}
    r = await client.request("POST", "/v1/batch", user="admin", json={"writes": [write]})
    assert r.status == 400 and r.json["error"]["code"] == "unknown_field", r.json
    assert "owner_id" in r.json["error"]["message"]
    after = await client.request("GET", f"{DOCS}/{made.json['id']}")
    assert after.json["version"] == 1 and after.json["owner_id"] == "alice"
    del write["owner_id"]
    assert (await client.request("POST", "/v1/batch", user="admin", json={"writes": [write]})).status == 200
