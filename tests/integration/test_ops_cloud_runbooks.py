"""The runbooks that read or write the database, on a cloud stack: ``migrate``, ``health``, ``status``
and ``drain-outbox`` through the D1 REST API (a loopback fake of it keeping real SQLite files) and a
real Centrifugo — the same commands and code paths as on the local stack, the stack given as
``TELESTACK_*`` environment variables, as a CI job against a deployed stack gives it.
"""

from __future__ import annotations

import io
import json
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from scripts.ops.cli import main
from scripts.ops.gateway_runtime import migration_files
from tests.support.centrifugo import Centrifugo
from tests.support.cloudflare_d1 import FakeD1, serve_fake_d1
from tests.support.ops import migrate_sqlite
from worker.channels import event_channels

ACCOUNT = "fedcba9876543210fedcba9876543210"
TOKEN = "cf-runbook-token-NEVER-PRINTED-91c2"

pytestmark = pytest.mark.stack


@pytest.fixture
def d1(tmp_path: Path) -> Iterator[FakeD1]:
    with serve_fake_d1(tmp_path / "d1", token=TOKEN, account_id=ACCOUNT) as server:
        yield server


def _stack_env(monkeypatch: pytest.MonkeyPatch, d1: FakeD1, database_id: str, **extra: str) -> None:
    """Only the cloud stack's variables: no local path leaks in from the developer's environment."""
    import os

    for key in [k for k in os.environ if k.startswith("TELESTACK_")]:
        monkeypatch.delenv(key)
    values = {
        "CLOUDFLARE_ACCOUNT_ID": ACCOUNT,
        "CLOUDFLARE_API_TOKEN": TOKEN,
        "CLOUDFLARE_API_BASE": d1.base_url,
        "D1_DATABASE_ID": database_id,
        **extra,
    }
    for key, value in values.items():
        monkeypatch.setenv(f"TELESTACK_{key}", value)


def _run(*argv: str) -> tuple[int, Any, str]:
    out, err = io.StringIO(), io.StringIO()
    from scripts.ops.console import Console

    code = main([*argv, "--json"], Console(stdout=out, stderr=err))
    text = out.getvalue() + err.getvalue()
    assert TOKEN not in text
    return code, json.loads(out.getvalue()), text


def _tables(d1: FakeD1, database_id: str) -> set[str]:
    con = sqlite3.connect(d1.path(database_id))
    try:
        names = {r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    finally:
        con.close()
    return {n for n in names if not n.startswith("_cf_")}  # D1's own table is in every database


def test_migrate_plans_applies_and_is_then_a_no_op_on_a_cloud_d1(
    d1: FakeD1, monkeypatch: pytest.MonkeyPatch
) -> None:
    fresh = d1.create_database("telestack-dev")
    _stack_env(monkeypatch, d1, fresh)

    code, body, _ = _run("health")
    assert code == 3 and body["unhealthy"] == ["database"], body  # not migrated yet: named, exit 3

    code, body, _ = _run("migrate", "--dry-run")
    names = [name for name, _ in migration_files()]
    assert code == 0 and body["applied"] == [] and body["pending"][: len(names)] == names
    assert "CREATE TABLE" in body["sql"][names[0]]
    assert _tables(d1, fresh) == set(), "a dry run wrote to the database"

    code, body, _ = _run("migrate")
    assert code == 0 and body["applied_now"][: len(names)] == names
    assert {"documents", "outbox", "_migrations"} <= _tables(d1, fresh)

    code, body, _ = _run("migrate")
    assert code == 0 and body["applied_now"] == [], "a second apply found work to do"

    code, body, _ = _run("health")
    assert code == 0 and body["healthy"], body


def test_status_reports_the_backlog_and_drain_publishes_it_to_centrifugo(
    d1: FakeD1, centrifugo: Centrifugo, monkeypatch: pytest.MonkeyPatch
) -> None:
    live = d1.create_database("telestack-dev")
    migrate_sqlite(d1.path(live))
    con = sqlite3.connect(d1.path(live))
    with con:  # what a Worker left behind when its publish failed: committed rows, events pending
        for i in range(3):
            event = {"type": "created", "collection": "posts", "id": f"p{i}", "version": 1,
                     "owner_id": "u1", "data": {"n": i}, "updated_at": "2026-11-28T19:00:00Z"}
            con.execute(
                "INSERT INTO outbox (collection, doc_id, owner_id, version, op, payload, created_at,"
                " attempts) VALUES ('posts', ?, 'u1', 1, 'created', ?, 1764356400000, 2)",
                (f"p{i}", json.dumps(event)),
            )
    con.close()
    _stack_env(
        monkeypatch, d1, live,
        CENTRIFUGO_API_URL=centrifugo.api_url, CENTRIFUGO_API_KEY=centrifugo.api_key,
        CENTRIFUGO_WS_URL=centrifugo.ws_url,
    )

    code, body, _ = _run("status")
    assert code == 0 and body["outbox"]["pending"] == 3 and body["outbox"]["max_attempts"] == 2, body
    assert body["dependencies"]["database"]["ok"] and body["dependencies"]["realtime"]["ok"]

    code, body, _ = _run("drain-outbox")
    assert code == 0 and body["published"] == 3 and body["pending"] == 0, body
    channel = event_channels("shared-read", "posts", "p1", "u1")[0]
    status, reply = centrifugo.api("history", {"channel": channel, "limit": 10})
    assert status == 200 and any(
        p["data"]["id"] == "p1" for p in reply["result"]["publications"]
    ), f"{channel}: {reply}"

    code, body, _ = _run("status")
    assert body["outbox"]["pending"] == 0
