"""Channel rules, the generated Centrifugo config and the drain's bookkeeping (no server needed)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from infra import centrifugo_config
from tests.support.paths import CONFIG
from worker import realtime
from worker.adapters.sqlite import SqliteDatabase
from worker.outbound import HttpError, HttpResponse
from worker.principal import Principal
from worker.settings import Settings

ACCESS = {"notes": "private", "posts": "shared-read", "settings": "admin"}
ALICE, ADMIN = Principal("alice"), Principal(None, is_admin=True)


@pytest.mark.parametrize(("principal", "channel", "expected"), [
    (ALICE, "notes:*#alice", "open"),
    (ALICE, "notes:n1#alice", "open"),
    (ALICE, "notes:*#bob", False),
    (ALICE, "notes:*#alice,bob", False),
    (ALICE, "notes:*", False),
    (ALICE, "notes:n1", False),
    (ALICE, "posts:*", "open"),
    (ALICE, "posts:p1", "open"),
    (ALICE, "posts:*#alice", False),
    (ALICE, "settings:*", False),
    (ALICE, "unknown:*", False),
    (ALICE, "notes", False),
    (ALICE, "notes:", False),
    (ALICE, "notes:a:b#alice", False),
    (ADMIN, "notes:*", "token"),
    (ADMIN, "notes:*#alice", "token"),
    (ADMIN, "settings:s1", "token"),
    (Principal(None), "posts:*", False),
])
def test_authorize_channel(principal: Principal, channel: str, expected: object) -> None:
    assert realtime.authorize_channel(principal, channel, ACCESS) == expected


def test_event_channels_per_access_rule() -> None:
    assert realtime.event_channels("private", "notes", "n1", "alice") == [
        "notes:n1#alice", "notes:*#alice", "notes:*"]
    # admin-owned private document: the admin firehose only
    assert realtime.event_channels("private", "notes", "n1", None) == ["notes:*"]
    assert realtime.event_channels("shared-read", "posts", "p1", "bob") == ["posts:p1", "posts:*"]
    assert realtime.event_channels("admin", "settings", "s1", None) == ["settings:s1", "settings:*"]
    # an owner id that would escape the user-limited list gets no user channel
    assert realtime.event_channels("private", "notes", "n1", "eve#x,alice") == ["notes:*"]


def test_generated_config_matches_the_channel_rules() -> None:
    doc = centrifugo_config.build_config(centrifugo_config.load_collection_access(CONFIG),
                                         centrifugo_config.load_options(CONFIG), port=8123,
                                         allowed_origins=("http://localhost:8787",))
    text = json.dumps(doc)
    assert "key" not in json.dumps(doc["http_api"]) and "hmac" not in text  # no secret in the file
    assert doc["http_server"] == {"address": "127.0.0.1", "port": 8123}
    assert doc["health"] == {"enabled": True}
    assert doc["client"]["allowed_origins"] == ["http://localhost:8787"]
    ns = {n["name"]: n for n in doc["channel"]["namespaces"]}
    assert ns["notes"]["allow_user_limited_channels"] and not ns["notes"]["allow_subscribe_for_client"]
    assert ns["posts"]["allow_subscribe_for_client"] and not ns["posts"]["allow_user_limited_channels"]
    assert not ns["settings"]["allow_subscribe_for_client"]
    assert not ns["settings"]["allow_user_limited_channels"]
    for n in ns.values():
        assert n["force_recovery"] and n["history_size"] > 0 and n["history_ttl"]
        assert not n["allow_publish_for_client"] and not n["allow_subscribe_for_anonymous"]


@pytest.mark.parametrize(("access", "options", "message"), [
    ({"x": "private"}, {}, "namespace name"),
    ({"notes": "public"}, {}, "access"),
    ({"notes": "private"}, {"history": {"size": 0}, "recovery": True}, "recovery"),
    ({"notes": "private"}, {"history": {"size": 10, "ttl": "soon"}}, "duration"),
])
def test_config_errors_name_the_key(access: dict[str, str], options: dict[str, Any], message: str) -> None:
    with pytest.raises(centrifugo_config.ConfigError, match=message):
        centrifugo_config.build_config(access, options, port=8000)


class FakeCentrifugo:
    """Answers /api/batch with a scripted reply (or a transport error)."""

    def __init__(self, reply: Any) -> None:
        self.reply = reply
        self.bodies: list[dict[str, Any]] = []

    async def request(self, method: str, url: str, *, headers: dict[str, str] | None = None,
                      body: bytes | None = None, timeout: float = 5.0) -> HttpResponse:  # noqa: ASYNC109
        self.bodies.append(json.loads(body or b"{}"))
        if isinstance(self.reply, Exception):
            raise self.reply
        return HttpResponse(200, json.dumps(self.reply).encode())


@pytest.fixture
def outbox_db(tmp_path: Path) -> SqliteDatabase:
    db = SqliteDatabase(tmp_path / "o.sqlite3")
    for stmt in (CONFIG / "migrations" / "0002_outbox.sql").read_text().split(";"):
        if stmt.strip():
            db.execute_sync(stmt)
    for i, (doc, version) in enumerate([("a", 1), ("b", 1), ("a", 2)]):
        payload = json.dumps({"type": "created", "collection": "posts", "id": doc, "version": version})
        db.execute_sync("INSERT INTO outbox (collection, doc_id, owner_id, version, op, payload, "
                        "created_at) VALUES ('posts', ?, 'u1', ?, 'created', ?, ?)",
                        (doc, version, payload, i))
    return db


SETTINGS = Settings(admin_key="k",
                    collections_json=json.dumps({"collections": {"posts": {"access": "shared-read"}}}),
                    centrifugo_api_url="http://centrifugo.invalid", centrifugo_api_key="api-key")


async def test_drain_publishes_in_commit_order_in_one_batch(outbox_db: SqliteDatabase) -> None:
    ok = {"broadcast": {"responses": [{"result": {}}, {"result": {}}]}}
    fake = FakeCentrifugo({"replies": [ok, ok, ok]})
    result = await realtime.drain(outbox_db, fake, SETTINGS, limit=10)
    assert (result.sent, result.failed, result.error) == (3, 0, None)
    [body] = fake.bodies
    assert [c["broadcast"]["data"]["id"] for c in body["commands"]] == ["a", "b", "a"]
    assert body["parallel"] is False
    assert body["commands"][0]["broadcast"]["channels"] == ["posts:a", "posts:*"]
    assert len({c["broadcast"]["idempotency_key"] for c in body["commands"]}) == 3
    assert (await realtime.drain(outbox_db, fake, SETTINGS, limit=10)).sent == 0  # nothing left


async def test_one_failed_broadcast_leaves_only_its_row_pending(outbox_db: SqliteDatabase) -> None:
    ok = {"broadcast": {"responses": [{"result": {}}, {"result": {}}]}}
    unknown = {"error": {"code": 102, "message": "unknown channel"}}
    bad = {"broadcast": {"responses": [{"result": {}}, unknown]}}
    fake = FakeCentrifugo({"replies": [ok, bad, ok]})
    result = await realtime.drain(outbox_db, fake, SETTINGS, limit=10)
    assert (result.sent, result.failed, result.unavailable) == (2, 1, False)
    sql = "SELECT doc_id, attempts, last_error FROM outbox WHERE sent_at IS NULL"
    rows = outbox_db.execute_sync(sql).rows
    assert rows == [{"doc_id": "b", "attempts": 1, "last_error": "centrifugo error 102: unknown channel"}]


async def test_transport_failure_keeps_every_row_pending(outbox_db: SqliteDatabase) -> None:
    result = await realtime.drain(outbox_db, FakeCentrifugo(HttpError("refused")), SETTINGS, limit=2)
    assert (result.sent, result.failed, result.unavailable) == (0, 2, True)
    assert "unreachable" in (result.error or "")
    sql = "SELECT doc_id, attempts FROM outbox WHERE sent_at IS NULL ORDER BY seq"
    rows = outbox_db.execute_sync(sql).rows
    assert rows == [{"doc_id": "a", "attempts": 1}, {"doc_id": "b", "attempts": 1},
                    {"doc_id": "a", "attempts": 0}]
    assert "api-key" not in (result.error or "")
