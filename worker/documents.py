"""The document core: row-level security, schema validation, versions, the write batch + its outbox event.

Access rules (``config/collections/*.yaml``, ``worker/rules.py``; docs/rules.md):
- presets: ``private`` (only the owner reads or writes), ``shared-read`` (any signed-in user
  reads; only the owner writes), ``admin`` (the admin key only: 403 for users);
- ``rules``: one expression per operation, compiled to SQL (``rule_sql.py``): a read rule
  narrows every read in SQL, a write rule guards the write's own statement in the batch.
A document the caller may not read is a 404 everywhere (existence is not revealed); a
readable one the write rule refuses is a 403. The admin key bypasses every rule; a caller
without a token is a 401.

A write reads the current row, checks access, ``If-Match`` (412 on a stale
version) and the schema, then commits ONE batch: the document statement and
its outbox row. The outbox insert of an update/delete is guarded
(``outbox.insert``) so a concurrent write that moved the version fails the whole
batch; without ``If-Match`` the write is retried on fresh state, with it the
caller gets 412. Documents are limited to :data:`MAX_DOCUMENT_BYTES` of UTF-8
JSON (D1 caps a row at 2 MB; the outbox row carries the body again) -> 413.
"""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from worker import compiled_rules, dependent_events, jsoncodec, outbox, store
from worker.collections import Collection
from worker.database import Database, DatabaseError, Statement
from worker.http import ApiError
from worker.principal import Principal
from worker.rule_sql import FALSE_SQL, TRUE_SQL, Sql, readers
from worker.store import Row, Scope

MAX_DOCUMENT_BYTES = 1_000_000
MAX_BATCH_WRITES = 100
WRITE_OPS = ("create", "replace", "patch", "delete")
#: the id alphabet; a string made only of it also needs no escaping inside JSON quotes
_ID_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-")
MAX_ID_LENGTH = 128
_RETRIES = 3


@dataclass(slots=True)
class Write:
    op: str  # one of WRITE_OPS
    collection: Collection
    id: str | None = None
    data: Any = None  # body (create/replace) or merge patch (patch)
    if_match: int | None = None
    owner_id: str | None = None  # admin-only on create


@dataclass(slots=True)
class Committed:
    op: str
    collection: Collection
    row: Row
    deleted: bool = False


def check_id(doc_id: Any) -> str:
    if not (isinstance(doc_id, str) and 0 < len(doc_id) <= MAX_ID_LENGTH and _ID_CHARS.issuperset(doc_id)):
        raise ApiError(400, "invalid_id", f"document ids are 1-{MAX_ID_LENGTH} characters of A-Z a-z 0-9 _ -")
    return doc_id


#: an owner the admin key names: a user id as the auth core issues them (UUIDs), never another JSON type
MAX_OWNER_ID_LENGTH = 255


def check_owner_id(owner_id: Any) -> str | None:
    if owner_id is None:
        return None
    if not (isinstance(owner_id, str) and 0 < len(owner_id) <= MAX_OWNER_ID_LENGTH):
        raise ApiError(400, "invalid_owner_id", f"owner_id is a user id: 1-{MAX_OWNER_ID_LENGTH} characters")
    return owner_id


def new_id() -> str:
    return secrets.token_urlsafe(15)  # 20 characters, 120 random bits


def now_ms() -> int:
    return int(time.time() * 1000)


@lru_cache(maxsize=4096)
def _iso_second(seconds: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds))


@lru_cache(maxsize=16384)
def iso(ms: int) -> str:
    """Unix ms -> ISO-8601 UTC with milliseconds (memoised: lists render the same rows' timestamps again)."""
    return f"{_iso_second(ms // 1000)}.{ms % 1000:03d}Z"


# -- row-level security: the only place access is decided -------------------------------------------


def _gate(principal: Principal, collection: Collection) -> None:
    """Every document route: a signed-in caller, and a user only where the rules let users in at all."""
    if principal.user_id is None:
        raise ApiError(401, "unauthenticated", "a valid access token is required")
    if collection.access == "admin" and collection.custom_rules is None:
        raise ApiError(403, "forbidden", "this collection is reserved to the admin key")


def read_scope(principal: Principal, collection: Collection) -> Scope:
    """What every read of this collection is narrowed to (None = all rows), or 401/403."""
    if principal.is_admin:
        return None
    _gate(principal, collection)
    if collection.owner_scoped:
        return principal.user_id
    rule = compiled_rules.compiled(collection.rules.list, principal)
    return None if rule == TRUE_SQL else rule


def check_write(principal: Principal, collection: Collection, owner_id: str | None) -> None:
    """A preset collection's write check: the owner writes (the caller already reads the row)."""
    if principal.is_admin:
        return
    read_scope(principal, collection)
    if owner_id != principal.user_id:
        raise ApiError(403, "forbidden", "only the owner may change this document")


async def _write_rule(
    db: Database, principal: Principal, coll: Collection, op: str, doc_id: str | None, body: str | None,
    precheck: bool,
) -> Sql | None:
    """A custom rule collection's write rule as the guard of the write statement (None = no guard), or 403.

    The guard checks it in the batch, atomically with the write. A first attempt trusts the guard
    alone (one query fewer per write); when the guard failed, the next attempt (``precheck``) checks
    the rule first, so a refused write gets its 403 rather than a conflict.
    """
    if principal.is_admin or coll.custom_rules is None:
        return None
    doc = None if op == "create" else "documents"
    rule = compiled_rules.compiled(coll.rules.for_operation(op), principal, doc, body)
    if rule == TRUE_SQL:
        return None
    if rule == FALSE_SQL or (precheck and not await store.allowed(db, coll, doc_id, rule)):
        raise ApiError(403, "forbidden", f"the {op} rule of {coll.name} does not allow this write")
    return rule

# -- reads -------------------------------------------------------------------------------------------


async def get(db: Database, principal: Principal, collection: Collection, doc_id: str) -> Row:
    row = await store.get(db, collection, check_id(doc_id), read_scope(principal, collection))
    if row is None:
        raise ApiError(404, "not_found", "no such document")
    return row


# -- writes ------------------------------------------------------------------------------------------


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386 JSON Merge Patch."""
    if not isinstance(patch, dict):
        return patch
    result = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


def encode_body(collection: Collection, data: Any) -> str:
    collection.validate(data)
    text = jsoncodec.dumps(data)
    size = len(text)  # characters <= UTF-8 bytes <= 4 * characters: encode only when it can matter
    if size > MAX_DOCUMENT_BYTES or (
        4 * size > MAX_DOCUMENT_BYTES and len(text.encode()) > MAX_DOCUMENT_BYTES
    ):
        raise ApiError(
            413, "document_too_large", f"a document may hold at most {MAX_DOCUMENT_BYTES} bytes of JSON"
        )
    return text


# -- JSON of a stored row ------------------------------------------------------------------------------
# Both shapes splice the stored body text in instead of decoding and re-encoding it (a list renders
# ~2 us per document this way), and are byte-identical to ``jsoncodec.dumps`` of the same dict: the
# collection name (registry grammar), op, numbers and timestamps need no escaping, nor does an id of
# the id alphabet; anything else goes through the encoder.

_owner_json = lru_cache(maxsize=4096)(jsoncodec.dumps)  # few distinct owners; None -> "null"


def _id_json(doc_id: str) -> str:
    return f'"{doc_id}"' if _ID_CHARS.issuperset(doc_id) else jsoncodec.dumps(doc_id)


def document_json(
    collection: str, doc_id: str, owner: str | None, data: str, version: int, created: int, updated: int
) -> str:
    """A document as the API returns it (the hot path of lists: one call per row)."""
    return (
        f'{{"id":{_id_json(doc_id)},"collection":"{collection}","owner_id":{_owner_json(owner)},'
        f'"version":{version},"created_at":"{iso(created)}","updated_at":"{iso(updated)}","data":{data}}}'
    )


def event_json(op: str, collection: Collection, row: Row, deleted: bool) -> str:
    """The outbox payload: the realtime event subscribers receive."""
    return (
        f'{{"type":"{op}","collection":"{collection.name}","id":{_id_json(row.id)},"version":{row.version},'
        f'"owner_id":{_owner_json(row.owner_id)},"data":{"null" if deleted else row.data},'
        f'"created_at":"{iso(row.created_at)}","updated_at":"{iso(row.updated_at)}"}}'
    )


async def _plan(
    db: Database, principal: Principal, w: Write, now: int, overlay: dict[tuple[str, str], Row | int],
    precheck: bool = True,
) -> tuple[list[Statement], Committed]:
    """One write's statements. ``overlay``: rows this batch wrote (an int: deleted at that version)."""
    coll = w.collection
    if w.op == "create":
        return await _plan_create(db, principal, w, now, overlay, precheck)

    doc_id = check_id(w.id)
    key = (coll.name, doc_id)
    seen = overlay.get(key)
    current = (
        (seen if isinstance(seen, Row) else None)
        if key in overlay
        else await store.get(db, coll, doc_id, read_scope(principal, coll))
    )
    if current is None:
        raise ApiError(404, "not_found", "no such document")
    if coll.custom_rules is None:
        check_write(principal, coll, current.owner_id)
    if w.if_match is not None and w.if_match != current.version:
        raise ApiError(
            412,
            "version_mismatch",
            f"document is at version {current.version}",
            headers={"etag": f'"{current.version}"'},
        )
    if w.op == "delete":
        rule = await _write_rule(db, principal, coll, "delete", doc_id, None, precheck)
        row = Row(doc_id, current.owner_id, current.data, current.version + 1, current.created_at, now)
        overlay[key] = row.version
        write = store.delete(coll, doc_id, current.version, rule)
        op = "deleted"
    else:
        data = w.data if w.op == "replace" else merge_patch(jsoncodec.loads(current.data), w.data)
        row = Row(
            doc_id, current.owner_id, encode_body(coll, data), current.version + 1, current.created_at, now
        )
        rule = await _write_rule(db, principal, coll, "update", doc_id, row.data, precheck)
        overlay[key] = row
        write = store.update(coll, row, current.version, rule)
        op = "updated"
    payload = event_json(op, coll, row, op == "deleted")
    if coll.lists_readers:
        after = readers(coll.name, doc_id, coll.rules.list)
        stmts = [
            outbox.insert(coll, row, op, payload, now, guarded=False,
                          prior_readers=readers(coll.name, doc_id, coll.rules.list)),
            write,
            outbox.confirm(after),
        ]
    else:
        stmts = [write, outbox.insert(coll, row, op, payload, now, guarded=True)]
    if op == "deleted":
        stmts.append(store.bury(coll, doc_id, row.version, now))
    stmts = dependent_events.around(coll.name, coll.looked_up_by, doc_id, stmts, now, current.data,
                                    None if op == "deleted" else row.data)
    return stmts, Committed(w.op, coll, row, deleted=op == "deleted")


async def _plan_create(
    db: Database, principal: Principal, w: Write, now: int, overlay: dict[tuple[str, str], Row | int],
    precheck: bool,
) -> tuple[list[Statement], Committed]:
    coll = w.collection
    doc_id = check_id(w.id) if w.id is not None else new_id()
    if principal.is_admin:
        owner = check_owner_id(w.owner_id)  # a dict here was a 500, a number a corrupt owner
    elif w.owner_id is not None:
        raise ApiError(403, "forbidden", "only the admin key may set owner_id")
    else:
        _gate(principal, coll)
        owner = principal.user_id
    if w.if_match is not None:
        raise ApiError(400, "invalid_request", "If-Match does not apply to a create")
    key = (coll.name, doc_id)
    seen = overlay.get(key)
    if key in overlay:
        taken, previous = isinstance(seen, Row), seen if isinstance(seen, int) else 0
    else:
        # a generated id is new (120 random bits): no existence or tombstone read on that hot path
        taken = w.id is not None and await store.exists(db, coll, doc_id)
        previous = 0 if taken or w.id is None else await store.tombstone_version(db, coll, doc_id)
    if taken:
        # 409 only for a document the caller may read; otherwise the same answer as a refused create
        visible = isinstance(seen, Row) or await store.get(db, coll, doc_id, read_scope(principal, coll))
        if visible:
            raise ApiError(409, "already_exists", "a document with this id already exists")
        raise ApiError(403, "forbidden", f"the create rule of {coll.name} does not allow this write")
    row = Row(doc_id, owner, encode_body(coll, w.data), previous + 1, now, now)
    rule = await _write_rule(db, principal, coll, "create", None, row.data, precheck)
    overlay[key] = row
    op = "created"
    after = None
    if coll.lists_readers:  # the new row is exactly the body: its reader fields may say who reads it
        after = compiled_rules.new_document_readers(coll.rules.list, doc_id, owner, w.data)
        if after is None:
            after = compiled_rules.readers_sql(coll.name, doc_id, coll.rules.list)
    stmts = [
        store.insert(coll, row, rule),
        outbox.insert(coll, row, op, event_json(op, coll, row, False), now, guarded=True, readers=after),
    ]
    if w.id is not None:  # a generated id is new: no document looks it up yet
        stmts = dependent_events.around(coll.name, coll.looked_up_by, doc_id, stmts, now, None, row.data)
    return stmts, Committed("create", coll, row)


async def commit(db: Database, principal: Principal, writes: list[Write]) -> list[Committed]:
    """Check every write, then commit them all in one batch (document + outbox rows), or none."""
    if not writes:
        raise ApiError(400, "invalid_request", "no writes")
    if len(writes) > MAX_BATCH_WRITES:
        raise ApiError(413, "batch_too_large", f"a batch holds at most {MAX_BATCH_WRITES} writes")
    precheck = False
    ruled = not principal.is_admin and any(w.collection.custom_rules is not None for w in writes)
    for attempt in range(_RETRIES + 1):
        now = now_ms()
        overlay: dict[tuple[str, str], Row | int] = {}
        statements: list[Statement] = []
        done: list[Committed] = []
        for w in writes:
            stmts, committed = await _plan(db, principal, w, now, overlay, precheck)
            statements += stmts
            done.append(committed)
        try:
            dependent_events.report(statements, await db.batch(statements))
            return done
        except DatabaseError as exc:
            message = str(exc)
            if not exc.constraint:
                raise
            if "documents.collection" in message or "documents.id" in message:
                if attempt == _RETRIES - 1:  # the id was taken meanwhile: the next plan answers as above
                    raise ApiError(409, "write_conflict", "the document kept changing; retry") from None
                continue
            if outbox.CONFLICT_MARKER not in message:
                raise
            if ruled and not precheck:  # perhaps a write rule refused: plan again, checking it first
                precheck = True
                continue
            if any(w.if_match is not None for w in writes):
                raise ApiError(412, "version_mismatch", "the document changed concurrently") from None
            if attempt == _RETRIES - 1:
                raise ApiError(409, "write_conflict", "the document kept changing; retry") from None
    raise AssertionError("unreachable")
