# ruff: noqa: S608  -- every statement here inlines placeholders only ("?, ?, ..."), never a value
"""The outbox: a write's change event, committed in the write's own batch, then published to Centrifugo.

Commit. The document core appends :func:`insert` to the batch of every write. For
an update or delete the row is *guarded*: its ``op`` is NULL unless the statement
before it changed exactly one row, and ``outbox.op`` is NOT NULL, so a write that
lost a race (the version moved under it) fails the whole batch (:data:`CONFLICT_MARKER`).
A committed document therefore always has its event, and a failed one never has.

Publish. :func:`drain` sends pending rows in commit order (``seq``) with one
``/api/batch`` call of ``broadcast`` commands and marks them sent. A failed publish
leaves the row pending with ``attempts``/``last_error``; the next write, the sweep
(Workers cron trigger, ASGI lifespan task) or the ``drain-outbox`` runbook sends it.
Each broadcast carries an idempotency key derived from the row, so a row published
twice (crash between publish and mark, two concurrent drains) reaches subscribers
once while Centrifugo remembers the key (5 minutes). A row that failed
:data:`MAX_ATTEMPTS` times stops being retried (it stays pending with its
``last_error`` for an operator) so it cannot block newer events forever.

:class:`Publisher` is one isolate's publishing: one drain at a time, a backoff after
Centrifugo failed, and a deadline on the work a write leaves for after its response.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from worker import jsoncodec
from worker.centrifugo import CentrifugoApi, CentrifugoError
from worker.channels import event_channels
from worker.collections import Collection
from worker.database import Database, Statement
from worker.rule_sql import MAX_READERS_PER_EVENT, Sql
from worker.store import Row

log = logging.getLogger("telestack.outbox")

#: the NOT NULL column a guarded insert leaves NULL when the write lost its race (see the module doc)
CONFLICT_MARKER = "outbox.op"
#: a row that failed this many times is left for an operator (it no longer blocks the queue head)
MAX_ATTEMPTS = 25
#: the publishing a write leaves for after its response ends by then, whatever Centrifugo does: Workers
#: grant ``waitUntil`` work about 30 s, and a stuck task must not hold the one-drain-at-a-time guard
PUBLISH_DEADLINE_SECONDS = 10.0
#: drain rounds one write's publish may run (later writes mark the running drain dirty instead)
ROUNDS_AFTER_WRITE = 8
#: D1 allows 100 bound parameters per statement
_PARAMS_PER_STATEMENT = 90
#: after a failed publish, write-triggered drains pause this long (doubling, capped)
_BACKOFF_START, _BACKOFF_MAX = 0.5, 30.0


# ---------------------------------------------------------------- SQL


def insert(
    collection: Collection, row: Row, op: str, payload: str, now_ms: int, *, guarded: bool,
    readers: Sql | None = None, prior_readers: Sql | None = None,
) -> Statement:
    """The change event, appended in the write's batch; ``guarded`` ties it to the preceding statement.

    ``readers``/``prior_readers``: sub-selects (``rule_sql.readers``) listing who may read the
    document after / before the write, evaluated in the batch (see the module doc).
    """
    op_sql = "CASE WHEN changes() = 1 THEN ? END" if guarded else "?"
    params: tuple[Any, ...] = (collection.name, row.id, row.owner_id, row.version, op, payload, now_ms)
    if readers is None and prior_readers is None:
        return Statement(
            "INSERT INTO outbox (collection, doc_id, owner_id, version, op, payload, created_at) "
            f"VALUES (?, ?, ?, ?, {op_sql}, ?, ?)",
            params,
        )
    after, before = readers or Sql("NULL"), prior_readers or Sql("NULL")
    return Statement(
        "INSERT INTO outbox (collection, doc_id, owner_id, version, op, payload, created_at, readers, "
        f"prior_readers) VALUES (?, ?, ?, ?, {op_sql}, ?, ?, {after.text}, {before.text})",
        params + after.params + before.params,
    )


def confirm(readers: Sql) -> Statement:
    """After a write whose event was inserted before it (to record its prior readers): the guard, and
    the readers after the write. Same rule as a guarded insert: no row changed -> ``op`` NULL -> the
    batch fails on :data:`CONFLICT_MARKER`."""
    return Statement(
        f"UPDATE outbox SET op = CASE WHEN changes() = 1 THEN op END, readers = {readers.text} "
        "WHERE seq = (SELECT max(seq) FROM outbox)",
        readers.params,
    )


_PENDING_SQL = (
    "SELECT seq, collection, doc_id, owner_id, version, payload, readers, prior_readers FROM outbox "
    "WHERE sent_at IS NULL AND attempts < ? ORDER BY seq LIMIT ?"
)


async def failing_count(db: Database) -> int:
    """Pending events whose publish has failed at least once (what health reports as degraded)."""
    result = await db.execute("SELECT count(*) AS n FROM outbox WHERE sent_at IS NULL AND attempts > 0")
    return int(result.rows[0]["n"]) if result.rows else 0


async def _record(db: Database, sent: list[int], failed: dict[str, list[int]]) -> None:
    now_ms = int(time.time() * 1000)
    statements: list[Statement] = []
    for chunk in _chunks(sent):
        marks = ",".join("?" * len(chunk))
        statements.append(Statement(
            "UPDATE outbox SET sent_at = ?, attempts = attempts + 1, last_error = NULL "
            f"WHERE seq IN ({marks})",
            (now_ms, *chunk)))
    for error, seqs in failed.items():
        for chunk in _chunks(seqs):
            marks = ",".join("?" * len(chunk))
            statements.append(Statement(
                f"UPDATE outbox SET attempts = attempts + 1, last_error = ? WHERE seq IN ({marks})",
                (error[:500], *chunk)))
    if statements:
        await db.batch(statements)


def _chunks(values: list[int]) -> list[list[int]]:
    return [values[i:i + _PARAMS_PER_STATEMENT] for i in range(0, len(values), _PARAMS_PER_STATEMENT)]


# ---------------------------------------------------------------- one drain


@dataclass(slots=True)
class DrainResult:
    sent: int = 0
    failed: int = 0
    error: str | None = None
    #: Centrifugo could not be reached or refused the call as a whole (not one bad event)
    unavailable: bool = False


async def drain(db: Database, centrifugo: CentrifugoApi, access_by_collection: Mapping[str, str],
                limit: int) -> DrainResult:
    """Publish up to ``limit`` pending events, oldest first, and record the outcome of each.

    One ``/api/batch`` call carries one ordered ``broadcast`` per event, so a document's
    events reach Centrifugo in commit order. If the call fails as a whole nothing is
    marked sent (every row stays pending, ``attempts`` + 1); if one broadcast fails only
    its row stays pending. Never raises for a Centrifugo problem: it is reported in
    ``DrainResult.error`` so a write that already committed still succeeds.
    """
    result = DrainResult()
    if limit <= 0:
        return result
    rows = (await db.execute(_PENDING_SQL, (MAX_ATTEMPTS, limit))).rows
    if not rows:
        return result
    commands: list[dict[str, Any]] = []
    sent: list[int] = []
    failed: dict[str, list[int]] = {}
    publishable: list[tuple[dict[str, Any], int]] = []  # (row, how many commands it made)
    for row in rows:
        access = access_by_collection.get(row["collection"])
        try:
            data = jsoncodec.loads(row["payload"])
        except ValueError:
            data = None
        if access is None or not isinstance(data, dict):
            why = "unknown collection" if access is None else "payload is not a JSON object"
            failed.setdefault(why, []).append(row["seq"])
            continue
        made = _commands(row, access, data)
        publishable.append((row, len(made)))
        commands += made
    if commands:
        try:
            replies = await centrifugo.batch(commands)
        except CentrifugoError as exc:
            result.error, result.unavailable = str(exc), True
            failed.setdefault(str(exc), []).extend(row["seq"] for row, _ in publishable)
        else:
            if len(replies) != len(commands):
                raise CentrifugoError("batch reply does not match the commands sent")
            at = 0
            for row, n in publishable:
                problems = [p for p in map(_broadcast_problem, replies[at:at + n]) if p is not None]
                at += n
                if problems:
                    failed.setdefault(problems[0], []).append(row["seq"])
                else:
                    sent.append(row["seq"])
    await _record(db, sent, failed)
    result.sent = len(sent)
    result.failed = sum(len(v) for v in failed.values())
    if result.failed and result.error is None:
        result.error = next(iter(failed))
    return result


def _reader_list(text: str | None, seq: int) -> list[str] | None:
    if text is None:
        return None
    ids = [u for u in jsoncodec.loads(text) if isinstance(u, str)]
    if len(ids) > MAX_READERS_PER_EVENT:
        log.warning("outbox row %s has more than %d readers; the event goes to the first %d by id",
                    seq, MAX_READERS_PER_EVENT, MAX_READERS_PER_EVENT)
        ids = ids[:MAX_READERS_PER_EVENT]
    return ids


def _commands(row: Mapping[str, Any], access: str, data: dict[str, Any]) -> list[dict[str, Any]]:
    """The broadcasts of one event: to its readers, and a removal event to readers it lost.

    A collection that lists readers (``Collection.lists_readers``) stored them with the event: the
    readers after the write get it (for a delete: the readers before it), and whoever could read the
    document before but not after gets ``{"type": "removed", ...}`` without the data.
    """
    collection, doc_id, version = row["collection"], row["doc_id"], row["version"]
    key = f"{collection}/{doc_id}/{version}/{row['seq']}"
    after = _reader_list(row.get("readers"), row["seq"])
    before = _reader_list(row.get("prior_readers"), row["seq"]) or []
    if after is None and not before:
        channels = event_channels(access, collection, doc_id, row["owner_id"])
        return [{"broadcast": {"channels": channels, "data": data, "idempotency_key": key}}]
    deleted = data.get("type") == "deleted"
    targets = before if deleted else (after or [])
    out = [{"broadcast": {"channels": event_channels(access, collection, doc_id, None, readers=targets),
                          "data": data, "idempotency_key": key}}]
    lost = [] if deleted else sorted(set(before) - set(targets))
    if lost:
        removal = {k: data.get(k) for k in ("collection", "id", "version", "owner_id", "created_at",
                                             "updated_at")}
        channels = [c for c in event_channels(access, collection, doc_id, None, readers=lost) if "#" in c]
        out.append({"broadcast": {"channels": channels, "data": {"type": "removed", **removal, "data": None},
                                  "idempotency_key": f"{key}/removed"}})
    return out


def _broadcast_problem(reply: Any) -> str | None:
    """None when every channel of a broadcast accepted the publication, else why not."""
    if not isinstance(reply, dict):
        return "malformed batch reply"
    if reply.get("error"):
        return f"centrifugo error {reply['error'].get('code')}: {reply['error'].get('message')}"
    responses = (reply.get("broadcast") or {}).get("responses")
    if not isinstance(responses, list):
        return "malformed broadcast reply"
    for item in responses:
        err = item.get("error") if isinstance(item, dict) else None
        if err:
            return f"centrifugo error {err.get('code')}: {err.get('message')}"
    return None


# ---------------------------------------------------------------- one isolate's publishing


class Publisher:
    """Drains the outbox for one isolate: after writes, and on the periodic sweep.

    Within an isolate only one drain runs at a time: a write that finds one running
    marks it dirty and returns, and the running drain goes round again, so a burst of
    writes becomes a few batched publishes instead of one per write.
    """

    def __init__(
        self, db: Database, centrifugo: CentrifugoApi | None, access_by_collection: Mapping[str, str],
        *, per_write: int,
    ) -> None:
        self._db = db
        self._centrifugo = centrifugo
        self._access = access_by_collection
        #: rows one drain round publishes after a write (0 = only the sweep publishes)
        self.per_write = per_write
        self.running = False
        self.dirty = False
        self._paused_until = 0.0
        self._backoff = 0.0

    async def after_write(self) -> None:
        """Publish what a write committed (behind older pending rows); runs once its response is sent.

        Bounded by :data:`PUBLISH_DEADLINE_SECONDS`; never raises: the write committed, and an
        event that did not go out stays pending for the next write or the sweep.
        """
        try:
            async with asyncio.timeout(PUBLISH_DEADLINE_SECONDS):
                await self._publish(batch=self.per_write, rounds=ROUNDS_AFTER_WRITE, respect_backoff=True)
        except TimeoutError:
            log.warning("outbox publish passed its %ss deadline; events stay pending",
                        PUBLISH_DEADLINE_SECONDS)
        except Exception:
            log.exception("outbox publish failed; events stay pending")

    async def sweep(self, *, rounds: int = 10, batch: int = 100, respect_backoff: bool = True) -> int:
        """Publish whatever is pending, under the same one-drain-at-a-time guard as writes.

        A write's drain is bounded, so a burst can end with its last events still pending;
        the Workers cron trigger (``respect_backoff=False``: it is the scheduled retry) and
        the ASGI lifespan task call this so they go out without waiting for the next write.
        Returns how many events were sent. While writes are paused, the sweep first asks Centrifugo
        whether it is back (:meth:`_answers_again`), so a long outage's pause is not waited out.
        """
        if respect_backoff and self._paused() and not self.running and await self._answers_again():
            self._note_answered()
        return await self._publish(batch=batch, rounds=rounds, respect_backoff=respect_backoff)

    def _paused(self) -> bool:
        return time.monotonic() < self._paused_until

    async def _answers_again(self) -> bool:
        """One ``info`` call: cheap, and unlike a failed publish it costs no row an attempt.

        The pause doubles up to 30 s while Centrifugo is down; without asking, the events of an
        outage would wait up to that long after Centrifugo came back (seen in the chaos run).
        """
        if self._centrifugo is None:
            return False
        try:
            await self._centrifugo.info()
        except CentrifugoError:
            return False
        return True

    async def _publish(self, *, batch: int, rounds: int, respect_backoff: bool) -> int:
        """The one drain loop: rounds of :func:`drain` while a round was full or a write came in meanwhile."""
        if self.running:
            self.dirty = True
            return 0
        if self._centrifugo is None or batch <= 0:
            return 0
        if respect_backoff and self._paused():
            return 0  # Centrifugo failed recently: leave the rows for a later drain
        self.running = True
        sent = 0
        try:
            for _ in range(rounds):
                self.dirty = False
                res = await drain(self._db, self._centrifugo, self._access, batch)
                sent += res.sent
                self._note(res)
                if res.unavailable or not (self.dirty or res.sent + res.failed >= batch):
                    break
        finally:
            self.running = False
        return sent

    def _note(self, res: DrainResult) -> None:
        if res.unavailable:
            self._backoff = min(max(self._backoff * 2, _BACKOFF_START), _BACKOFF_MAX)
            self._paused_until = time.monotonic() + self._backoff
            log.warning("outbox publish failed (%d pending kept): %s", res.failed, res.error)
        else:  # Centrifugo answered: writes publish again at once
            self._note_answered()

    def _note_answered(self) -> None:
        self._backoff = 0.0
        self._paused_until = 0.0
