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
from worker.operations import Operation, documented, obj
from worker.principal import Principal
from worker.routing import Route

if TYPE_CHECKING:
    from worker.context import Context

_MERGE_PATCH = "application/merge-patch+json"
_DOC_FIELDS = {"create": {"data", "id", "owner_id"}, "replace": {"data"}, "patch": {"data"}}
_BATCH_FIELDS = {"op", "collection", "id", "data", "if_match", "owner_id"}


# --- what each handler promises (worker/operations.py; served in /v1/openapi.json) ---------------
_ID = {"type": "string", "pattern": "^[A-Za-z0-9_-]{1,128}$"}
_DATA = {"type": "object", "description": "the document body; the collection's JSON Schema applies (422)",
         "examples": [{"title": "hello"}]}
_NEW_ID = {**_ID, "type": ["string", "null"], "description": "null or absent: a random 20-character id"}
_OWNER = {"type": ["string", "null"], "minLength": 1, "maxLength": documents.MAX_OWNER_ID_LENGTH,
          "description": "admin key only: the owner's user id"}
_VERSION = {"type": "integer", "minimum": 1}
_TIME = {"type": "string", "format": "date-time"}
DOCUMENT = obj({"id": _ID, "collection": {"type": "string"}, "owner_id": {"type": ["string", "null"]},
                "version": _VERSION, "created_at": _TIME, "updated_at": _TIME, "data": _DATA},
               ("id", "collection", "owner_id", "version", "created_at", "updated_at", "data"))
_PARAMS = {"collection": {"type": "string", "pattern": "^[a-z][a-z0-9_]{0,62}$"}, "id": _ID}
_IF_MATCH = {"if-match": {"type": "string", "pattern": '^(W/)?"?[0-9]{1,18}"?$',
                          "description": 'a document version: "3", W/"3" or 3'}}
#: from a created document to the operations on it
_CREATED = {"collection": "$request.path.collection", "id": "$response.body#/id"}
_FOLLOW = {target: _CREATED for target in
           ("get_documents_get", "put_documents_replace", "patch_documents_patch", "delete_documents_delete")}
_ETAG = {"ETag": '"<version>"'}
#: every route that reads or writes documents: the session's bookmark, the collection, RLS
_READ_ERRORS = {400: ("invalid_bookmark", "invalid_id"), 403: ("forbidden",),
                404: ("collection_not_found", "not_found")}
_WRITE_ERRORS = {**_READ_ERRORS,
                 400: ("invalid_bookmark", "invalid_id", "invalid_if_match", "invalid_request",
                       "invalid_owner_id"),
                 409: ("already_exists", "write_conflict"), 412: ("version_mismatch",),
                 413: ("document_too_large",), 422: ("schema_violation",)}
CREATE = Operation("create a document (201, Location and ETag)", "bearer", {201: DOCUMENT}, _WRITE_ERRORS,
                   body=obj({"data": _DATA, "id": _NEW_ID, "owner_id": _OWNER}, ("data",)),
                   headers=_IF_MATCH, params=_PARAMS,
                   response_headers={201: {**_ETAG, "Location": "its URL"}}, links=_FOLLOW)
GET = Operation("read a document", "bearer", {200: DOCUMENT}, _READ_ERRORS, params=_PARAMS,
                response_headers={200: _ETAG})
REPLACE = Operation("replace a document's body", "bearer", {200: DOCUMENT}, _WRITE_ERRORS,
                    body=obj({"data": _DATA}, ("data",)), headers=_IF_MATCH, params=_PARAMS,
                    response_headers={200: _ETAG})
PATCH = Operation("apply an RFC 7386 merge patch to a document's body", "bearer", {200: DOCUMENT},
                  _WRITE_ERRORS,
                  body=obj({"data": _DATA}, ("data",)), content_types=(JSON, _MERGE_PATCH), headers=_IF_MATCH,
                  params=_PARAMS, response_headers={200: _ETAG})
DELETE = Operation("delete a document (204, ETag of the deletion)", "bearer", {204: None}, _WRITE_ERRORS,
                   headers=_IF_MATCH, params=_PARAMS, response_headers={204: _ETAG})
_FILTER = {"type": "array", "minItems": 3, "maxItems": 3, "description": "[field, operator, value]"}
_ORDER_KEY = {"oneOf": [{"type": "string"},
                        {"type": "array", "minItems": 2, "maxItems": 2,
                         "prefixItems": [{"type": "string"}, {"enum": ["asc", "desc"]}]}]}
QUERY = Operation(
    "filter, sort and page a collection (docs/api.md: query grammar)", "bearer",
    {200: obj({"documents": {"type": "array", "items": DOCUMENT}, "next_cursor": {"type": ["string", "null"]},
               "count": {"type": "integer", "minimum": 0}}, ("documents", "next_cursor"))},
    {**_READ_ERRORS, 400: ("invalid_bookmark", "invalid_query")},
    body=obj({"where": {"type": ["array", "null"], "maxItems": query.MAX_FILTERS, "items": _FILTER},
              "order_by": {"type": ["array", "null"], "minItems": 1, "maxItems": query.MAX_ORDER_KEYS,
                           "items": _ORDER_KEY},
              "limit": {"type": "integer", "minimum": 0, "maximum": query.MAX_LIMIT},
              "cursor": {"type": ["string", "null"], "minLength": 1, "maxLength": 4096},
              "count": {"type": "boolean"}}),
    params={"collection": _PARAMS["collection"]})
_BATCH_WRITE = obj({"op": {"enum": list(documents.WRITE_OPS)}, "collection": {"type": "string"},
                    "id": _NEW_ID, "data": _DATA, "if_match": {**_VERSION, "type": ["integer", "null"]},
                    "owner_id": _OWNER},
                   ("op", "collection"))
BATCH = Operation(
    "several writes, all or nothing", "bearer",
    {200: obj({"results": {"type": "array", "items": {"oneOf": [
        obj({"op": {"enum": ["create", "replace", "patch"]}, "document": DOCUMENT}, ("op", "document")),
        obj({"op": {"const": "delete"}, "collection": {"type": "string"}, "id": _ID, "version": _VERSION},
            ("op", "collection", "id", "version")),
    ]}}}, ("results",))},
    {**_WRITE_ERRORS, 413: ("document_too_large", "batch_too_large")},
    body=obj({"writes": {"type": "array", "minItems": 1, "maxItems": documents.MAX_BATCH_WRITES,
                         "items": _BATCH_WRITE}}, ("writes",)))


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


@documented(CREATE)
async def create(ctx: Context) -> Response:
    _, coll = await _setup(ctx)
    body = check_object(read_json(ctx.request), _DOC_FIELDS["create"], ("data",))
    return await _write(
        ctx,
        Write("create", coll, body.get("id"), body["data"], _if_match(ctx), body.get("owner_id")),
        status=201,
    )


@documented(GET)
async def get(ctx: Context) -> Response:
    principal, coll = await _setup(ctx)
    return _doc_response(coll, await documents.get(ctx.db, principal, coll, ctx.params["id"]))


@documented(REPLACE)
async def replace(ctx: Context) -> Response:
    _, coll = await _setup(ctx)
    body = check_object(read_json(ctx.request), _DOC_FIELDS["replace"], ("data",))
    return await _write(ctx, Write("replace", coll, ctx.params["id"], body["data"], _if_match(ctx)))


@documented(PATCH)
async def patch(ctx: Context) -> Response:
    _, coll = await _setup(ctx)
    body = check_object(
        read_json(ctx.request, content_types=(JSON, _MERGE_PATCH)), _DOC_FIELDS["patch"], ("data",)
    )
    return await _write(ctx, Write("patch", coll, ctx.params["id"], body["data"], _if_match(ctx)))


@documented(DELETE)
async def delete(ctx: Context) -> Response:
    _, coll = await _setup(ctx)
    return await _write(ctx, Write("delete", coll, ctx.params["id"], None, _if_match(ctx)))


@documented(QUERY)
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


@documented(BATCH)
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
        if op != "create" and w.get("owner_id") is not None:  # only a create sets the owner
            raise ApiError(400, "unknown_field", f"writes[{i}].owner_id applies only to create")
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
