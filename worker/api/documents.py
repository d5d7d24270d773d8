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
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from worker import documents, jsoncodec, query, store
from worker.collections import Collection, registry_for
from worker.documents import Committed, Write
from worker.http import ApiError, Response, check_object
from worker.routing import Route

if TYPE_CHECKING:
    from worker.app import Context

MAX_REQUEST_BYTES = 4 * 1024 * 1024
_JSON = "application/json"
_MERGE_PATCH = "application/merge-patch+json"
_DOC_FIELDS = {"create": {"data", "id", "owner_id"}, "replace": {"data"}, "patch": {"data"}}
_BATCH_FIELDS = {"op", "collection", "id", "data", "if_match", "owner_id"}


def _body(ctx: Context, allowed: frozenset[str] = frozenset({_JSON})) -> Any:
    ctype = (ctx.request.header("content-type") or "").split(";", 1)[0].strip().lower()
    if ctype not in allowed:
        raise ApiError(415, "unsupported_media_type", f"Content-Type must be {' or '.join(sorted(allowed))}")
    if len(ctx.request.body) > MAX_REQUEST_BYTES:
        raise ApiError(413, "payload_too_large", f"request body exceeds {MAX_REQUEST_BYTES} bytes")
    try:
        return jsoncodec.loads(ctx.request.body)
    except (ValueError, UnicodeDecodeError):
        raise ApiError(400, "invalid_json", "request body is not valid JSON") from None




def _if_match(ctx: Context) -> int | None:
    raw = ctx.request.header("if-match")
    if raw is None:
        return None
    text = raw.strip().removeprefix("W/").strip('"')
    if not text.isdigit() or len(text) > 18:
        raise ApiError(400, "invalid_if_match", 'If-Match must be a document version, e.g. "3"')
    return int(text)


def doc_json(collection: str, row: store.Row) -> str:
    """One document as JSON; the stored body text is spliced in rather than decoded and re-encoded."""
    return _render(collection, row.id, row.owner_id, row.data, row.version, row.created_at, row.updated_at)


_safe_id = re.compile(r"[A-Za-z0-9_-]+\Z").match  # documents.check_id's alphabet: needs no JSON escaping
_owner_json = lru_cache(maxsize=4096)(jsoncodec.dumps)  # few distinct owners per list


def _render(
    collection: str, doc_id: str, owner: str | None, data: str, version: int, created: int, updated: int
) -> str:
    """The hot path of lists: ~2 us per document (no JSON decode/encode of the body, memoised pieces)."""
    id_json = f'"{doc_id}"' if _safe_id(doc_id) else jsoncodec.dumps(doc_id)
    return (
        f'{{"id":{id_json},"collection":"{collection}","owner_id":{_owner_json(owner)},"version":{version},'
        f'"created_at":"{documents.iso(created)}","updated_at":"{documents.iso(updated)}","data":{data}}}'
    )


def _doc_response(collection: Collection, row: store.Row, status: int = 200) -> Response:
    headers = {"content-type": _JSON, "etag": f'"{row.version}"'}
    if status == 201:
        headers["location"] = f"/v1/collections/{collection.name}/documents/{row.id}"
    return Response(status=status, body=doc_json(collection.name, row).encode(), headers=headers)


async def _setup(ctx: Context) -> tuple[Any, Collection]:
    principal = await ctx.principal()
    return principal, registry_for(ctx.gateway).get(ctx.params["collection"])


async def _write(ctx: Context, write: Write, status: int = 200) -> Response:
    principal = await ctx.principal()
    [done] = await documents.commit(ctx.db, principal, [write])
    documents.schedule_publish(ctx)
    if done.deleted:
        return Response(status=204, headers={"etag": f'"{done.row.version}"'})
    return _doc_response(done.collection, done.row, status)


async def create(ctx: Context) -> Response:
    _, coll = await _setup(ctx)
    body = check_object(_body(ctx), _DOC_FIELDS["create"], ("data",))
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
    body = check_object(_body(ctx), _DOC_FIELDS["replace"], ("data",))
    return await _write(ctx, Write("replace", coll, ctx.params["id"], body["data"], _if_match(ctx)))


async def patch(ctx: Context) -> Response:
    _, coll = await _setup(ctx)
    body = check_object(_body(ctx, frozenset({_JSON, _MERGE_PATCH})), _DOC_FIELDS["patch"], ("data",))
    return await _write(ctx, Write("patch", coll, ctx.params["id"], body["data"], _if_match(ctx)))


async def delete(ctx: Context) -> Response:
    _, coll = await _setup(ctx)
    return await _write(ctx, Write("delete", coll, ctx.params["id"], None, _if_match(ctx)))


async def run_query(ctx: Context) -> Response:
    principal, coll = await _setup(ctx)
    q = query.parse_query(_body(ctx))
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
        _render(name, r["id"], r["owner_id"], r["data"], r["version"], r["created_at"], r["updated_at"])
        for r in rows
    )
    tail = f',"count":{await store.count(ctx.db, coll, q, scope)}' if q.count else ""
    body = f'{{"documents":[{docs}],"next_cursor":{cursor}{tail}}}'
    return Response(status=200, body=body.encode(), headers={"content-type": _JSON})


async def batch(ctx: Context) -> Response:
    principal = await ctx.principal()
    body = check_object(_body(ctx), {"writes"}, ("writes",))
    raw = body["writes"]
    if not isinstance(raw, list):
        raise ApiError(400, "invalid_request", "writes must be a list")
    if len(raw) > documents.MAX_BATCH_WRITES:
        raise ApiError(413, "batch_too_large", f"a batch holds at most {documents.MAX_BATCH_WRITES} writes")
    registry = registry_for(ctx.gateway)
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
    documents.schedule_publish(ctx)
    results = ",".join(_result_json(c) for c in done)
    return Response(status=200, body=f'{{"results":[{results}]}}'.encode(), headers={"content-type": _JSON})


def _result_json(c: Committed) -> str:
    if c.deleted:
        return (
            f'{{"op":"delete","collection":"{c.collection.name}","id":{jsoncodec.dumps(c.row.id)},'
            f'"version":{c.row.version}}}'
        )
    return f'{{"op":"{c.op}","document":{doc_json(c.collection.name, c.row)}}}'


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
