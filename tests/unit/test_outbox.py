"""outbox.py: the guarded insert, one drain's bookkeeping, one isolate's publishing."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.paths import CONFIG
from tests.support.scripted_http import ACCEPT_ALL, HANG, ScriptedHttp
from worker import outbox
from worker.adapters.sqlite import SqliteDatabase
from worker.centrifugo import CentrifugoApi
from worker.collections import Collection
from worker.database import DatabaseError, Statement
from worker.migrations import split_sql
from worker.outbound import HttpError
from worker.store import Row

ACCESS = {"posts": "shared-read"}
OK = {"broadcast": {"responses": [{"result": {}}, {"result": {}}]}}


def api(http: ScriptedHttp) -> CentrifugoApi:
    return CentrifugoApi(http, "http://centrifugo.invalid", "api-key")


@pytest.fixture
def outbox_db(tmp_path: Path) -> Iterator[SqliteDatabase]:
    """The outbox table as migrated, holding three events of commit order a1, b1, a2."""
    db = SqliteDatabase(tmp_path / "o.sqlite3")
    for name in ("0002_outbox.sql", "0003_rules.sql"):  # 0003 adds the readers columns
        for stmt in split_sql((CONFIG / "migrations" / name).read_text()):
            db.execute_sync(stmt)
    for i, (doc, version) in enumerate([("a", 1), ("b", 1), ("a", 2)]):
        payload = json.dumps({"type": "created", "collection": "posts", "id": doc, "version": version})
        db.execute_sync("INSERT INTO outbox (collection, doc_id, owner_id, version, op, payload, "
                        "created_at) VALUES ('posts', ?, 'u1', ?, 'created', ?, ?)",
                        (doc, version, payload, i))
    yield db
    db.close()


def rows(db: SqliteDatabase) -> list[dict[str, Any]]:
    sql = "SELECT doc_id, version, sent_at, attempts, last_error FROM outbox ORDER BY seq"
    return db.execute_sync(sql).rows


# ---------------------------------------------------------------- SQL


async def test_a_guarded_insert_fails_the_batch_when_the_statement_before_it_changed_nothing(
    outbox_db: SqliteDatabase,
) -> None:
    posts, row = Collection("posts", "shared-read"), Row("c", "u1", "{}", 2, 5, 5)
    outbox_db.execute_sync("CREATE TABLE doc (id TEXT PRIMARY KEY, version INTEGER)")
    outbox_db.execute_sync("INSERT INTO doc VALUES ('c', 1)")
    lost_race = Statement("UPDATE doc SET version = 2 WHERE id = 'c' AND version = 7")
    with pytest.raises(DatabaseError) as err:
        await outbox_db.batch([lost_race, outbox.insert(posts, row, "updated", "{}", 5, guarded=True)])
    assert err.value.constraint and outbox.CONFLICT_MARKER in str(err.value)
    assert len(rows(outbox_db)) == 3  # nothing of the batch committed
    won = Statement("UPDATE doc SET version = 2 WHERE id = 'c' AND version = 1")
    await outbox_db.batch([won, outbox.insert(posts, row, "updated", "{}", 5, guarded=True)])
    assert rows(outbox_db)[-1] == {"doc_id": "c", "version": 2, "sent_at": None, "attempts": 0,
                                   "last_error": None}


async def test_failing_count_is_the_pending_rows_that_failed(outbox_db: SqliteDatabase) -> None:
    assert await outbox.failing_count(outbox_db) == 0
    await outbox.drain(outbox_db, api(ScriptedHttp(HttpError("refused"))), ACCESS, limit=2)
    assert await outbox.failing_count(outbox_db) == 2


# ---------------------------------------------------------------- one drain


async def test_drain_publishes_in_commit_order_in_one_batch(outbox_db: SqliteDatabase) -> None:
    http = ScriptedHttp({"replies": [OK, OK, OK]})
    result = await outbox.drain(outbox_db, api(http), ACCESS, limit=10)
    assert (result.sent, result.failed, result.error) == (3, 0, None)
    [body] = http.bodies
    assert [c["broadcast"]["data"]["id"] for c in body["commands"]] == ["a", "b", "a"]
    assert body["parallel"] is False
    assert body["commands"][0]["broadcast"]["channels"] == ["posts:a", "posts:*"]
    assert len({c["broadcast"]["idempotency_key"] for c in body["commands"]}) == 3
    assert all(r["sent_at"] is not None and r["attempts"] == 1 for r in rows(outbox_db))
    assert (await outbox.drain(outbox_db, api(http), ACCESS, limit=10)).sent == 0  # nothing left


async def test_drain_takes_the_oldest_rows_up_to_its_limit(outbox_db: SqliteDatabase) -> None:
    http = ScriptedHttp({"replies": [OK, OK]})
    assert (await outbox.drain(outbox_db, api(http), ACCESS, limit=2)).sent == 2
    assert [(r["doc_id"], r["version"]) for r in rows(outbox_db) if r["sent_at"] is None] == [("a", 2)]


async def test_one_failed_broadcast_leaves_only_its_row_pending(outbox_db: SqliteDatabase) -> None:
    unknown = {"error": {"code": 102, "message": "unknown channel"}}
    bad = {"broadcast": {"responses": [{"result": {}}, unknown]}}
    result = await outbox.drain(outbox_db, api(ScriptedHttp({"replies": [OK, bad, OK]})), ACCESS, limit=10)
    assert (result.sent, result.failed, result.unavailable) == (2, 1, False)
    sql = "SELECT doc_id, attempts, last_error FROM outbox WHERE sent_at IS NULL"
    assert outbox_db.execute_sync(sql).rows == [
        {"doc_id": "b", "attempts": 1, "last_error": "centrifugo error 102: unknown channel"}]


async def test_transport_failure_keeps_every_row_pending(outbox_db: SqliteDatabase) -> None:
    result = await outbox.drain(outbox_db, api(ScriptedHttp(HttpError("refused"))), ACCESS, limit=2)
    assert (result.sent, result.failed, result.unavailable) == (0, 2, True)
    assert "unreachable" in (result.error or "")
    sql = "SELECT doc_id, attempts FROM outbox WHERE sent_at IS NULL ORDER BY seq"
    assert outbox_db.execute_sync(sql).rows == [
        {"doc_id": "a", "attempts": 1}, {"doc_id": "b", "attempts": 1}, {"doc_id": "a", "attempts": 0}]
    assert "api-key" not in (result.error or "")


async def test_a_later_success_marks_a_failed_row_sent_and_clears_its_error(
    outbox_db: SqliteDatabase,
) -> None:
    await outbox.drain(outbox_db, api(ScriptedHttp(HttpError("refused"))), ACCESS, limit=1)
    assert rows(outbox_db)[0]["last_error"] == "centrifugo unreachable: HttpError"
    await outbox.drain(outbox_db, api(ScriptedHttp({"replies": [OK]})), ACCESS, limit=1)
    first = rows(outbox_db)[0]
    assert first["sent_at"] is not None and first["attempts"] == 2 and first["last_error"] is None


async def test_rows_that_cannot_be_published_are_kept_with_the_reason(outbox_db: SqliteDatabase) -> None:
    outbox_db.execute_sync("UPDATE outbox SET payload = 'not json' WHERE doc_id = 'b'")
    http = ScriptedHttp({"replies": [OK]})
    result = await outbox.drain(outbox_db, api(http), {"other": "private"}, limit=10)
    assert (result.sent, result.failed, result.error) == (0, 3, "unknown collection")
    assert http.bodies == []  # nothing publishable: Centrifugo is not called
    result = await outbox.drain(outbox_db, api(ScriptedHttp({"replies": [OK, OK]})), ACCESS, limit=10)
    assert (result.sent, result.failed) == (2, 1)
    kept = [r["last_error"] for r in rows(outbox_db) if r["sent_at"] is None]
    assert kept == ["payload is not a JSON object"]


async def test_a_row_that_failed_too_often_no_longer_blocks_the_queue(outbox_db: SqliteDatabase) -> None:
    outbox_db.execute_sync("UPDATE outbox SET attempts = ? WHERE doc_id = 'a' AND version = 1",
                           (outbox.MAX_ATTEMPTS,))
    http = ScriptedHttp({"replies": [OK, OK]})
    assert (await outbox.drain(outbox_db, api(http), ACCESS, limit=10)).sent == 2
    assert [c["broadcast"]["data"]["id"] for c in http.bodies[0]["commands"]] == ["b", "a"]
    assert [r["attempts"] for r in rows(outbox_db) if r["sent_at"] is None] == [outbox.MAX_ATTEMPTS]


# ---------------------------------------------------------------- one isolate's publishing


def publisher(db: SqliteDatabase, http: ScriptedHttp | None, per_write: int = 20) -> outbox.Publisher:
    return outbox.Publisher(db, api(http) if http else None, ACCESS, per_write=per_write)


async def test_after_write_publishes_everything_pending(outbox_db: SqliteDatabase) -> None:
    pub = publisher(outbox_db, ScriptedHttp(ACCEPT_ALL), per_write=2)
    await pub.after_write()  # two full rounds: the second takes the third row
    assert all(r["sent_at"] is not None for r in rows(outbox_db)) and not pub.running


async def test_one_drain_at_a_time_and_a_busy_drain_goes_round_again(outbox_db: SqliteDatabase) -> None:
    http = ScriptedHttp(ACCEPT_ALL)
    pub = publisher(outbox_db, http)
    pub.running = True
    await pub.after_write()
    assert await pub.sweep() == 0
    assert http.bodies == [] and pub.dirty  # the running drain is asked to go round again
    pub.running = False
    assert await pub.sweep(batch=2) == 3  # several rounds until nothing is left
    assert not pub.dirty


async def test_nothing_is_published_without_centrifugo_or_when_writes_do_not_publish(
    outbox_db: SqliteDatabase,
) -> None:
    await publisher(outbox_db, None).after_write()
    assert await publisher(outbox_db, None).sweep() == 0
    http = ScriptedHttp(ACCEPT_ALL)
    await publisher(outbox_db, http, per_write=0).after_write()
    assert http.bodies == [] and all(r["sent_at"] is None for r in rows(outbox_db))
    assert await publisher(outbox_db, http, per_write=0).sweep() == 3  # the sweep still does


async def test_after_a_failure_writes_back_off_but_the_cron_does_not(outbox_db: SqliteDatabase) -> None:
    http = ScriptedHttp(HttpError("refused"), HttpError("refused"), ACCEPT_ALL)
    pub = publisher(outbox_db, http)
    await pub.after_write()
    assert len(http.bodies) == 1 and all(r["attempts"] == 1 for r in rows(outbox_db))
    await pub.after_write()  # paused: Centrifugo just failed
    assert len(http.bodies) == 1
    # the sweep asks whether Centrifugo is back (one info call, no attempt counted); it is not
    assert await pub.sweep() == 0
    assert [u.rsplit("/", 1)[1] for _, u, _ in http.requests] == ["batch", "info"]
    assert all(r["attempts"] == 1 for r in rows(outbox_db))
    assert await pub.sweep(respect_backoff=False) == 3
    # Centrifugo answered the cron: the next write publishes at once, without waiting out the pause
    outbox_db.execute_sync("INSERT INTO outbox (collection, doc_id, owner_id, version, op, payload, "
                           "created_at) VALUES ('posts', 'c', 'u1', 1, 'created', '{\"id\": \"c\"}', 9)")
    await pub.after_write()
    assert all(r["sent_at"] is not None for r in rows(outbox_db))


async def test_a_sweep_does_not_wait_out_a_long_pause_once_centrifugo_answers(
    outbox_db: SqliteDatabase,
) -> None:
    """A long outage grows the pause to 30 s; once Centrifugo is back the sweep publishes at once."""
    http = ScriptedHttp(HttpError("refused"), {"result": {}}, ACCEPT_ALL)
    pub = publisher(outbox_db, http)
    await pub.after_write()
    pub._backoff = 30.0  # as after many failures in a row
    pub._paused_until = time.monotonic() + 30.0
    assert await pub.sweep() == 3
    assert [u.rsplit("/", 1)[1] for _, u, _ in http.requests] == ["batch", "info", "batch"]
    await pub.after_write()  # and writes publish at once again
    assert not pub._paused()


async def test_after_write_ends_by_its_deadline_and_leaves_the_rows_pending(
    outbox_db: SqliteDatabase, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(outbox, "PUBLISH_DEADLINE_SECONDS", 0.05)
    http = ScriptedHttp(HANG)  # Centrifugo accepts the call and never answers
    pub = publisher(outbox_db, http)
    await pub.after_write()  # returns (does not raise) once the deadline passed
    assert len(http.bodies) == 1 and not pub.running  # the guard is released for the next drain
    assert all(r["sent_at"] is None and r["attempts"] == 0 for r in rows(outbox_db))


async def test_after_write_never_raises(outbox_db: SqliteDatabase) -> None:
    outbox_db.close()  # the database is gone: the write committed earlier, its event waits for the sweep
    await publisher(outbox_db, ScriptedHttp({"replies": [OK]})).after_write()
