"""HTTP handlers for documents: thin — authenticate, parse, call the core, shape JSON.

Request bodies (``application/json``; PATCH also takes ``application/merge-patch+json``):
- ``POST /v1/collections/{c}/documents``: ``{"data": {...}, "id"?: str, "owner_id"?: str (admin)}`` -> 201
- ``PUT .../documents/{id}``: ``{"data": {...}}``; ``PATCH``: ``{"data": <RFC 7386 merge patch>}``
- ``GET`` / ``DELETE .../documents/{id}`` (DELETE -> 204); every write honours ``If-Match: <version>``
- ``POST /v1/collections/{c}/query``: see ``worker/query.py`` -> ``{"documents", "next_cursor", "count"?}``
- ``POST /v1/batch``: ``{"writes": [{"op": "create|replace|patch|delete", "collection", "id"?, "data"?,
  "if_match"?, "owner_id"?}]}`` (at most ``documents.MAX_BATCH_WRITES``) -> ``{"results": [...]}``
A document is ``{"id", "collection", "owner_id", "version", "created_at", "updated_at", "data"}`` with ISO
timestamps; its ``ETag`` header is ``"<version>"``. Unknown request fields are a 400.
A committed write sets ``ctx.publish_after_response``: its events are published after the response.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from worker import documents, jsoncodec, query, store
from worker.collections import Collection
from worker.documents import Committed, Write, document_json
from worker.http import JSON, ApiError, Response, check_object, read_json
from worker.principal import Principal
from worker.routing import Route

if TYPE_CHECKING:
    from worker.context import Context

_MERGE_PATCH = "application/merge-patch+json"
_DOC_FIELDS = {"create": {"data", "id", "owner_id"}, "replace": {"data"}, "patch": {"data"}}
_BATCH_FIELDS = {"op", "collection", "id", "data", "if_match", "owner_id"}


def _if_match(ctx: Context) -> int | None:
    raw = ctx.request.header("if-match")
    if raw is None:
        return None
    text = raw.strip().removeprefix("W/").strip('"')
    if not text.isdigit() or len(text) > 18:
        raise ApiError(400, "invalid_if_match", 'If-Match must be a document version, e.g. "3"')
    return int(text)


def _row_json(collection: str, row: store.Row) -> str:
    return document_json(
        collection, row.id, row.owner_id, row.data, row.version, row.created_at, row.updated_at
    )


def _doc_response(collection: Collection, row: store.Row, status: int = 200) -> Response:
    headers = {"content-type": JSON, "etag": f'"{row.version}"'}
    if status == 201:
        headers["location"] = f"/v1/collections/{collection.name}/documents/{row.id}"
    return Response(status=status, body=_row_json(collection.name, row).encode(), headers=headers)


async def _setup(ctx: Context) -> tuple[Principal, Collection]:
    principal = await ctx.principal()
    return principal, ctx.gateway.collections.get(ctx.params["collection"])


async def _write(ctx: Context, write: Write, status: int = 200) -> Response:
    principal = await ctx.principal()
    [done] = await documents.commit(ctx.db, principal, [write])
    ctx.publish_after_response = True
    if done.deleted:
        return Response(status=204, headers={"etag": f'"{done.row.version}"'})
    return _doc_response(done.collection, done.row, status)


async def create(ctx: Context) -> Response:
    _, coll = await _setup(ctx)
    body = check_object(read_json(ctx.request), _DOC_FIELDS["create"], ("data",))
    return await _write(
        ctx,
        Write("create", coll, body.get("id"), body["data"], _if_match(ctx), body.get("owner_id")),
        status=201,
    )


async def get(ctx: Context) -> Response:
    principal, coll = await _setup(ctx)
    return _doc_response(coll, await documents.get(ctx.db, principal, coll, ctx.params["id"]))


async def replace(ctx: Context) -> Response:
    _, coll = await _setup(ctx)
    body = check_object(read_json(ctx.request), _DOC_FIELDS["replace"], ("data",))
    return await _write(ctx, Write("replace", coll, ctx.params["id"], body["data"], _if_match(ctx)))


async def patch(ctx: Context) -> Response:
    _, coll = await _setup(ctx)
    body = check_object(
        read_json(ctx.request, content_types=(JSON, _MERGE_PATCH)), _DOC_FIELDS["patch"], ("data",)
    )
    return await _write(ctx, Write("patch", coll, ctx.params["id"], body["data"], _if_match(ctx)))


async def delete(ctx: Context) -> Response:
    _, coll = await _setup(ctx)
    return await _write(ctx, Write("delete", coll, ctx.params["id"], None, _if_match(ctx)))


async def run_query(ctx: Context) -> Response:
    principal, coll = await _setup(ctx)
    q = query.parse_query(read_json(ctx.request))
    scope = documents.read_scope(principal, coll)
    rows = await store.select(ctx.db, coll, q, scope) if q.limit else []
    more = len(rows) > q.limit
    rows = rows[: q.limit]
    cursor = "null"
    if more:
        last = rows[-1]
        cursor = jsoncodec.dumps(query.encode_cursor(q, tuple(last[f"k{i}"] for i in range(len(q.order)))))
    name = coll.name
    docs = ",".join(
        document_json(name, r["id"], r["owner_id"], r["data"], r["version"], r["created_at"], r["updated_at"])
        for r in rows
    )
    tail = f',"count":{await store.count(ctx.db, coll, q, scope)}' if q.count else ""
    body = f'{{"documents":[{docs}],"next_cursor":{cursor}{tail}}}'
    return Response(status=200, body=body.encode(), headers={"content-type": JSON})


async def batch(ctx: Context) -> Response:
    principal = await ctx.principal()
    body = check_object(read_json(ctx.request), {"writes"}, ("writes",))
    raw = body["writes"]
    if not isinstance(raw, list):
        raise ApiError(400, "invalid_request", "writes must be a list")
    if len(raw) > documents.MAX_BATCH_WRITES:
        raise ApiError(413, "batch_too_large", f"a batch holds at most {documents.MAX_BATCH_WRITES} writes")
    registry = ctx.gateway.collections
    writes: list[Write] = []
    for i, item in enumerate(raw):
        w = check_object(item, _BATCH_FIELDS, ("op", "collection"))
        op = w["op"]
        if op not in documents.WRITE_OPS:
            raise ApiError(
                400, "invalid_request", f"writes[{i}].op must be one of {', '.join(documents.WRITE_OPS)}"
            )
        if op != "create" and "id" not in w:
            raise ApiError(400, "invalid_request", f"writes[{i}].id is required for {op}")
        if op != "delete" and "data" not in w:
            raise ApiError(400, "invalid_request", f"writes[{i}].data is required for {op}")
        if op == "delete" and "data" in w:
            raise ApiError(400, "unknown_field", f"writes[{i}].data does not apply to delete")
        if_match = w.get("if_match")
        if if_match is not None and (
            isinstance(if_match, bool) or not isinstance(if_match, int) or if_match < 1
        ):
            raise ApiError(400, "invalid_request", f"writes[{i}].if_match must be a positive integer")
        name = w["collection"]
        writes.append(
            Write(
                op,
                registry.get(name if isinstance(name, str) else ""),
                w.get("id"),
                w.get("data"),
                if_match,
                w.get("owner_id"),
            )
        )
    done = await documents.commit(ctx.db, principal, writes)
    ctx.publish_after_response = True
    results = ",".join(_result_json(c) for c in done)
    return Response(status=200, body=f'{{"results":[{results}]}}'.encode(), headers={"content-type": JSON})


def _result_json(c: Committed) -> str:
    if c.deleted:
        return (
            f'{{"op":"delete","collection":"{c.collection.name}","id":{jsoncodec.dumps(c.row.id)},'
            f'"version":{c.row.version}}}'
        )
    return f'{{"op":"{c.op}","document":{_row_json(c.collection.name, c.row)}}}'


_DOC = "/v1/collections/{collection}/documents/{id}"
ROUTES: list[Route] = [
    Route("POST", "/v1/collections/{collection}/documents", create),
    Route("GET", _DOC, get),
    Route("PUT", _DOC, replace),
    Route("PATCH", _DOC, patch),
    Route("DELETE", _DOC, delete),
    Route("POST", "/v1/collections/{collection}/query", run_query),
    Route("POST", "/v1/batch", batch),
]
