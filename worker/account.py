"""An account's lifecycle beyond sign-in: the session claims it carries, and deleting it completely.

Claims. A session's access token carries ``email`` and ``email_verified``
(read into :class:`~worker.principal.Principal`). Both are set when the session
is created; when they change (a verification, an email change) every live
session of the user gets the new values in its core-side payload
(:func:`refresh_claims`), which the core signs into the session's *next* access
token: the client refreshes to see them (the verify endpoint says so). A token
issued before keeps its old claims until it expires.

Deletion (:func:`delete_account`) removes, in this order: the user's sessions;
every document they own, in batches of :data:`BATCH` that each commit the
deletes together with their outbox ``deleted`` events (listeners update like for
any delete); every object under their storage prefix; the user in the core
(with it its sessions, metadata and verification state); then their documents
once more (a write made meanwhile with a still-valid access token). A row in
``account_deletions`` is written first and marked finished last; every step is
idempotent, so a deletion that was interrupted at any point is completed by
running it again (``ops delete-user``), and ``ops account-deletions`` lists the
unfinished ones.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from worker import documents
from worker.http import ApiError
from worker.outbound import HttpError
from worker.principal import Principal
from worker.storage import Signer, user_prefix

if TYPE_CHECKING:
    from worker.context import Gateway
    from worker.database import Database
    from worker.supertokens import SuperTokens

log = logging.getLogger("telestack.account")

#: documents deleted per batch (one D1 batch each, with their outbox rows)
BATCH = 100
#: S3 ListObjectsV2 page size
LIST_PAGE = 1000
_S3 = "{http://s3.amazonaws.com/doc/2006-03-01/}"
_ADMIN = Principal(user_id=None, is_admin=True)
#: every collection that holds documents, configured or not (a data-protection deletion must reach rows
#: of a collection since removed from config/); a skip-scan: one index seek per collection, where
#: SELECT DISTINCT would read the whole index (D1 bills rows read)
_COLLECTIONS_SQL = (
    "WITH RECURSIVE c(name) AS (SELECT min(collection) FROM documents UNION ALL "
    "SELECT (SELECT min(collection) FROM documents WHERE collection > c.name) FROM c "
    "WHERE c.name IS NOT NULL) SELECT name FROM c WHERE name IS NOT NULL"
)


def session_claims(email: str, verified: bool) -> dict[str, Any]:
    """What a session's access token says about its user's address."""
    return {"email": email, "email_verified": verified}


async def refresh_claims(supertokens: SuperTokens, user_id: str, claims: dict[str, Any]) -> int:
    """Merge ``claims`` into every live session's payload (signed into each one's next token)."""
    updated = 0
    for handle in await supertokens.session_handles(user_id):
        payload = await supertokens.session_payload(handle)
        if payload is None:
            continue  # ended meanwhile
        if await supertokens.set_session_payload(handle, {**payload, **claims}):
            updated += 1
    return updated


@dataclass(frozen=True, slots=True)
class DeletionReport:
    user_id: str
    documents_deleted: int
    objects_deleted: int
    finished: bool


async def _record_start(db: Database, user_id: str, by: str) -> None:
    now = int(time.time() * 1000)
    await db.execute("INSERT INTO account_deletions (user_id, requested_at, requested_by) VALUES (?, ?, ?)"
                     " ON CONFLICT (user_id) DO NOTHING", (user_id, now, by))
    await db.execute("UPDATE account_deletions SET attempts = attempts + 1 WHERE user_id = ?", (user_id,))


async def delete_documents(gateway: Gateway, db: Database, user_id: str) -> int:
    """Delete every document ``user_id`` owns, BATCH at a time, each batch with its outbox events."""
    deleted = 0
    names = [r["name"] for r in (await db.execute(_COLLECTIONS_SQL)).rows]
    for name in names:
        try:
            collection = gateway.collections.get(name)
        except ApiError:
            collection = None  # no longer configured: no channel to tell, the rows still go
        while True:
            rows = (await db.execute(
                "SELECT id FROM documents WHERE collection = ? AND owner_id = ? ORDER BY id LIMIT ?",
                (name, user_id, BATCH))).rows
            if not rows:
                break
            if collection is None:
                await db.execute("DELETE FROM documents WHERE collection = ? AND owner_id = ? AND id <= ?",
                                 (name, user_id, rows[-1]["id"]))  # exactly the batch selected above
            else:
                writes = [documents.Write("delete", collection, r["id"]) for r in rows]
                try:
                    await documents.commit(db, _ADMIN, writes)
                except ApiError as exc:
                    if exc.status == 404:  # one of them went meanwhile: select again
                        continue
                    raise
            deleted += len(rows)
            await db.execute("UPDATE account_deletions SET documents_deleted = documents_deleted + ?"
                             " WHERE user_id = ?", (len(rows), user_id))
    return deleted


async def delete_objects(gateway: Gateway, user_id: str) -> int:
    """Delete every object under the user's storage prefix; 0 when the stack has no storage."""
    s = gateway.settings
    if not (s.s3_endpoint and s.s3_bucket and s.s3_access_key_id and s.s3_secret_access_key):
        return 0
    # server to server: sign for the endpoint the gateway reaches, not the public one clients use
    signer = Signer(s.s3_endpoint.rstrip("/"), s.s3_bucket, s.s3_region or "us-east-1", s.s3_access_key_id,
                    s.s3_secret_access_key)
    deleted = 0
    while True:  # each round lists the first page again: what was deleted is gone from it
        url = signer.presign("GET", None, 300, query={"list-type": "2", "prefix": user_prefix(user_id),
                                                      "max-keys": str(LIST_PAGE)})
        keys = _listed_keys(await _s3(gateway, "GET", url, 200))
        if not keys:
            return deleted
        for key in keys:
            await _s3(gateway, "DELETE", signer.presign("DELETE", key, 300), 204)
            deleted += 1


async def _s3(gateway: Gateway, method: str, url: str, expected: int) -> bytes:
    try:
        resp = await gateway.http.request(method, url, timeout=30)
    except HttpError:
        raise ApiError(503, "storage_unavailable", "object storage is unreachable; the deletion resumes "
                                                   "when retried") from None
    if resp.status not in (expected, 200, 204):
        log.error("storage %s during an account deletion -> HTTP %d", method, resp.status)
        raise ApiError(502, "storage_error", f"object storage answered {resp.status}; retry the deletion")
    return resp.body


def _listed_keys(body: bytes) -> list[str]:
    import xml.etree.ElementTree as ET  # lazily: only a deletion parses a listing (cold starts stay lean)

    root = ET.fromstring(body)  # noqa: S314 - our S3 server's answer
    return [el.text for el in root.iter(f"{_S3}Key") if el.text] or [
        el.text for el in root.iter("Key") if el.text]


async def delete_account(gateway: Gateway, db: Database, user_id: str, *, by: str) -> DeletionReport:
    """Delete everything of ``user_id``; safe to run again after any failure (see the module docstring)."""
    supertokens = gateway.supertokens
    await _record_start(db, user_id, by)
    await supertokens.revoke_user_sessions(user_id)
    docs = await delete_documents(gateway, db, user_id)
    objects = await delete_objects(gateway, user_id)
    await db.execute("UPDATE account_deletions SET objects_deleted = objects_deleted + ? WHERE user_id = ?",
                     (objects, user_id))
    await supertokens.remove_user_metadata(user_id)
    await supertokens.remove_user(user_id)
    docs += await delete_documents(gateway, db, user_id)
    await db.execute("UPDATE account_deletions SET finished_at = ? WHERE user_id = ?",
                     (int(time.time() * 1000), user_id))
    return DeletionReport(user_id, docs, objects, True)


async def deletions(db: Database, *, unfinished_only: bool = False) -> list[dict[str, Any]]:
    """The recorded deletions, newest first (what ``ops account-deletions`` prints)."""
    sql = ("SELECT user_id, requested_at, requested_by, documents_deleted, objects_deleted, attempts,"
           " finished_at FROM account_deletions")
    if unfinished_only:
        sql += " WHERE finished_at IS NULL"
    return (await db.execute(sql + " ORDER BY requested_at DESC", ())).rows
