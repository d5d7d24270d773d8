"""Every document endpoint through Gateway.handle on real SQLite: status codes, shapes, input checks."""

from __future__ import annotations

import pytest

from tests.support.gateway import Client
from worker import documents, jsoncodec

NOTE = {"title": "first", "status": "open", "priority": 2}
DOCS = "/v1/collections/notes/documents"


async def test_create_get_replace_patch_delete(client: Client) -> None:
    r = await client.create("notes", NOTE)
    assert r.status == 201 and r.headers["etag"] == '"1"'
    doc = r.json
    assert doc["owner_id"] == "alice" and doc["version"] == 1 and doc["data"] == NOTE
    assert doc["collection"] == "notes" and doc["created_at"].endswith("Z")
    assert r.headers["location"] == f"{DOCS}/{doc['id']}"
    url = f"{DOCS}/{doc['id']}"

    r = await client.request("GET", url)
    assert r.status == 200 and r.json == doc and r.headers["etag"] == '"1"'

    r = await client.request("PUT", url, json={"data": {"title": "second"}})
    assert r.status == 200 and r.json["data"] == {"title": "second"} and r.json["version"] == 2

    r = await client.request(
        "PATCH",
        url,
        json={"data": {"status": "done", "meta": {"a": 1, "b": 2}}},
        headers={"content-type": "application/merge-patch+json"},
    )
    assert r.status == 200 and r.json["version"] == 3
    r = await client.request("PATCH", url, json={"data": {"title": "third", "meta": {"a": None}}})
    assert r.json["data"] == {"title": "third", "status": "done", "meta": {"b": 2}}
    assert r.headers["etag"] == '"4"'

    r = await client.request("DELETE", url)
    assert r.status == 204 and r.body == b""
    assert (await client.request("GET", url)).status == 404
    assert (await client.request("DELETE", url)).status == 404


async def test_client_chosen_id_and_duplicate(client: Client) -> None:
    r = await client.create("notes", NOTE, id="my-note_1")
    assert r.status == 201 and r.json["id"] == "my-note_1"
    r = await client.create("notes", NOTE, id="my-note_1")
    assert r.status == 409 and r.json["error"]["code"] == "already_exists"


async def test_server_ids_are_unique(client: Client) -> None:
    ids = {(await client.create("notes", NOTE)).json["id"] for _ in range(20)}
    assert len(ids) == 20


async def test_if_match_gives_optimistic_concurrency(client: Client) -> None:
    url = f"{DOCS}/{(await client.create('notes', NOTE)).json['id']}"
    stale = {"if-match": '"1"'}
    assert (await client.request("PATCH", url, json={"data": {"priority": 3}}, headers=stale)).status == 200
    for method, body in (
        ("PATCH", {"data": {"priority": 4}}),
        ("PUT", {"data": {"title": "x"}}),
        ("DELETE", None),
    ):
        r = await client.request(method, url, json=body, headers=stale)
        assert (
            r.status == 412 and r.json["error"]["code"] == "version_mismatch" and r.headers["etag"] == '"2"'
        )
    r = await client.request("GET", url)
    assert r.json["version"] == 2 and r.json["data"]["priority"] == 3
    assert (await client.request("DELETE", url, headers={"if-match": "2"})).status == 204
    outbox = (await client.gateway.db.execute("SELECT op, version FROM outbox ORDER BY seq")).rows
    assert outbox == [
        {"op": "created", "version": 1},
        {"op": "updated", "version": 2},
        {"op": "deleted", "version": 3},
    ]


@pytest.mark.parametrize("value", ["abc", '"x"', "-1", "1,2", "*"])
async def test_malformed_if_match_is_400(client: Client, value: str) -> None:
    url = f"{DOCS}/{(await client.create('notes', NOTE)).json['id']}"
    r = await client.request("PATCH", url, json={"data": {}}, headers={"if-match": value})
    assert r.status == 400 and r.json["error"]["code"] == "invalid_if_match"


async def test_unknown_collection_is_404_everywhere(client: Client) -> None:
    for method, path, body in (
        ("POST", "/v1/collections/nope/documents", {"data": {}}),
        ("GET", "/v1/collections/nope/documents/x", None),
        ("PATCH", "/v1/collections/nope/documents/x", {"data": {}}),
        ("POST", "/v1/collections/nope/query", {}),
    ):
        r = await client.request(method, path, json=body)
        assert r.status == 404 and r.json["error"]["code"] == "collection_not_found"
    assert (await client.gateway.db.execute("SELECT count(*) AS n FROM documents")).rows[0]["n"] == 0


async def test_unauthenticated_is_401_before_anything_else(client: Client) -> None:
    r = await client.request("POST", f"{DOCS}", user=None, body=b"{not json")
    assert r.status == 401 and r.json["error"]["code"] == "unauthenticated"
    r = await client.request("GET", "/v1/collections/nope/documents/x", user=None)
    assert r.status == 401


@pytest.mark.parametrize(
    ("ctype", "body"),
    [
        ("text/plain", b'{"data":{"title":"x"}}'),
        ("application/x-www-form-urlencoded", b"data=1"),
        (None, b'{"data":{"title":"x"}}'),
    ],
)
async def test_wrong_content_type_is_415(client: Client, ctype: str | None, body: bytes) -> None:
    headers = {"content-type": ctype} if ctype else {}
    r = await client.request("POST", DOCS, body=body, headers=headers)
    assert r.status == 415 and r.json["error"]["code"] == "unsupported_media_type"


async def test_merge_patch_type_only_on_patch(client: Client) -> None:
    r = await client.request(
        "POST", DOCS, body=b'{"data":{"title":"x"}}', headers={"content-type": "application/merge-patch+json"}
    )
    assert r.status == 415


@pytest.mark.parametrize(
    "body", [b"{not json", b'{"data": NaN}', b"\xff\xfe", b"", b'{"data": {"title": "x"}']
)
async def test_malformed_json_is_400(client: Client, body: bytes) -> None:
    r = await client.request("POST", DOCS, body=body, headers={"content-type": "application/json"})
    assert r.status == 400 and r.json["error"]["code"] == "invalid_json"


@pytest.mark.parametrize(
    "body", [{"data": NOTE, "extra": 1}, {"data": NOTE, "version": 3}, {"title": "x"}, [NOTE], "text"]
)
async def test_unknown_or_missing_fields_are_400(client: Client, body: object) -> None:
    r = await client.request("POST", DOCS, json=body)
    assert r.status == 400 and r.json["error"]["code"] in ("unknown_field", "invalid_request")


async def test_unknown_fields_on_update_and_query(client: Client) -> None:
    url = f"{DOCS}/{(await client.create('notes', NOTE)).json['id']}"
    assert (await client.request("PUT", url, json={"data": NOTE, "id": "other"})).json["error"][
        "code"
    ] == "unknown_field"
    assert (await client.request("PATCH", url, json={"data": {}, "x": 1})).status == 400
    r = await client.query("notes", where=[], sort="x")
    assert r.status == 400 and r.json["error"]["code"] == "unknown_field"


async def test_schema_rejections_are_422_and_write_nothing(client: Client) -> None:
    for data in (
        {"status": "open"},
        {"title": ""},
        {"title": "x", "status": "weird"},
        {"title": "x", "priority": 9},
        {"title": "x", "colour": "red"},
        {"title": 5},
        [1, 2],
        "str",
    ):
        r = await client.create("notes", data)
        assert r.status == 422 and r.json["error"]["code"] == "schema_violation", data
    url = f"{DOCS}/{(await client.create('notes', NOTE)).json['id']}"
    r = await client.request(
        "PATCH", url, json={"data": {"title": None}}
    )  # merge patch removing a required key
    assert r.status == 422
    r = await client.request("PUT", url, json={"data": {"title": "ok", "priority": -1}})
    assert r.status == 422
    assert (await client.request("GET", url)).json["version"] == 1
    assert (await client.gateway.db.execute("SELECT count(*) AS n FROM outbox")).rows[0]["n"] == 1


async def test_document_size_limit_is_413(client: Client) -> None:
    big = "x" * (documents.MAX_DOCUMENT_BYTES + 1)
    r = await client.create("notes", {"title": "big", "body": big})
    assert r.status == 413 and r.json["error"]["code"] == "document_too_large"
    multibyte = "é" * (documents.MAX_DOCUMENT_BYTES // 2)  # 2 bytes each in UTF-8: over the limit in bytes
    assert (await client.create("notes", {"title": "big", "body": multibyte})).status == 413
    ok = "x" * (documents.MAX_DOCUMENT_BYTES - 100)
    assert (await client.create("notes", {"title": "fits", "body": ok})).status == 201
    r = await client.request(
        "POST", DOCS, body=b" " * (5 * 1024 * 1024), headers={"content-type": "application/json"}
    )
    assert r.status == 413


@pytest.mark.parametrize("doc_id", ["a'b", "a%20b", 'x"; DROP TABLE documents; --', "x" * 129, "a.b", "ü"])
async def test_injection_and_bad_ids_in_paths_are_400(client: Client, doc_id: str) -> None:
    r = await client.request("GET", f"{DOCS}/{doc_id}")
    assert r.status == 400 and r.json["error"]["code"] == "invalid_id"
    r = await client.create("notes", NOTE, id=doc_id)
    assert r.status == 400
    assert (await client.gateway.db.execute("SELECT count(*) AS n FROM documents")).rows[0]["n"] == 0


@pytest.mark.parametrize("name", ["notes'--", "notes OR 1=1", "Notes", "documents", "_migrations"])
async def test_injection_in_collection_names_is_404(client: Client, name: str) -> None:
    r = await client.request("POST", f"/v1/collections/{name}/query", json={})
    assert r.status == 404


async def test_values_are_data_never_sql(client: Client) -> None:
    evil = "x'); DROP TABLE documents; --"
    r = await client.create("notes", {"title": evil, "body": "' OR '1'='1"})
    assert r.status == 201
    r = await client.query("notes", where=[["title", "==", evil]])
    assert [d["data"]["title"] for d in r.json["documents"]] == [evil]
    r = await client.query("notes", where=[["body", "==", "' OR '1'='1"], ["title", "!=", "' OR 1=1 --"]])
    assert len(r.json["documents"]) == 1
    assert (await client.query("notes", where=[["title", "==", "' OR '1'='1"]])).json["documents"] == []


async def test_method_not_allowed(client: Client) -> None:
    r = await client.request("DELETE", "/v1/collections/notes/query")
    assert r.status == 405 and "POST" in r.headers["allow"]


async def test_errors_are_json_with_code_and_message(client: Client) -> None:
    r = await client.request("GET", f"{DOCS}/missing")
    assert r.status == 404 and r.headers["content-type"] == "application/json"
    error = jsoncodec.loads(r.body)["error"]
    assert set(error) == {"code", "message", "request_id"}
    assert error["request_id"] == r.headers["x-request-id"]


async def test_listed_documents_are_byte_identical_to_fetched_ones(client: Client) -> None:
    """A listed document and a fetched one are the same bytes (one renderer, spliced body text)."""
    data = {
        "title": 'uni "é\\ ☃ \u2028',
        "body": "a\tb\n",
        "meta": {"f": 1.5, "e": 1e-7, "big": 2**53 - 1, "n": None},
    }
    created = await client.create("notes", data, id="same")
    listed = await client.query("notes", where=[["$id", "==", "same"]])
    fetched = await client.request("GET", f"{DOCS}/same")
    doc = listed.body.split(b'"documents":[', 1)[1].rsplit(b'],"next_cursor"', 1)[0]
    assert doc == fetched.body == created.body
    assert jsoncodec.loads(doc)["data"] == data


@pytest.mark.parametrize(
    "field",
    [
        "title') OR 1=1 --",
        "title; DROP TABLE documents",
        "$.title",
        "a.b[0]",
        'title"',
        "data",
        "owner_id)",
        "__proto__.x y",
        "$owner_id' OR '1'='1",
    ],
)
async def test_injection_in_field_names_is_400(client: Client, field: str) -> None:
    await client.create("notes", NOTE)
    for body in ({"where": [[field, "==", 1]]}, {"order_by": [field]}, {"where": [[field, "exists", True]]}):
        r = await client.query("notes", **body)
        if field == "data":  # a plain, valid (if unusual) body path: allowed, simply matches nothing
            assert r.status == 200
            continue
        assert r.status == 400 and r.json["error"]["code"] == "invalid_query", (field, body)
    assert (await client.gateway.db.execute("SELECT count(*) AS n FROM documents")).rows[0]["n"] == 1


async def test_a_committed_write_hands_its_events_to_the_publisher(client: Client) -> None:
    calls: list[str] = []

    async def after_write() -> None:
        calls.append("published")

    client.gateway.publisher.after_write = after_write  # type: ignore[method-assign]
    await client.create("notes", NOTE)
    assert calls == ["published"]
    await client.create("notes", {"nope": 1})  # rejected: nothing committed, nothing scheduled
    assert calls == ["published"]
    batch = [{"op": "create", "collection": "notes", "data": NOTE}]
    assert (await client.request("POST", "/v1/batch", json={"writes": batch})).status == 200
    assert calls == ["published", "published"]
    assert (await client.request("GET", "/v1/collections/notes/documents/nope")).status == 404
    assert calls == ["published", "published"]  # a read leaves nothing to publish
