"""kill -9 of a real gateway process between commit and publish: the event is delivered after restart.

Gateway A is a real ``python -m worker.asgi`` whose Centrifugo API URL is a port that
accepts connections and never answers, so after a write commits its publish hangs.
The write's response does not wait for that publish; once it has arrived (the outbox
row is on disk, unpublished) the test SIGKILLs A with the publish in flight. Gateway B
(same SQLite file, the real Centrifugo) drains the row on its next write.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.support.centrifugo import Centrifugo
from tests.support.gateway import serve
from tests.support.process import Process, silent_url
from tests.support.realtime_client import Subscriber
from worker.realtime_tokens import connection_token

pytestmark = pytest.mark.stack
ADMIN = "crash-test-admin-key-0123456789"


def start_gateway(workdir: Path, db: Path, api_url: str, cf: Centrifugo) -> tuple[Process, str]:
    return serve(workdir, {
        "TELESTACK_DB_PATH": str(db), "TELESTACK_ADMIN_KEY": ADMIN, "TELESTACK_CENTRIFUGO_API_URL": api_url,
        "TELESTACK_CENTRIFUGO_API_KEY": cf.api_key, "TELESTACK_CENTRIFUGO_TOKEN_SECRET": cf.token_secret,
        "TELESTACK_CENTRIFUGO_WS_URL": cf.ws_url,
    })


@pytest.fixture
def silent_port() -> Iterator[str]:
    with silent_url() as url:
        yield url


def outbox(db: Path) -> list[tuple[int, int, int | None, int]]:
    with sqlite3.connect(db) as conn:
        return conn.execute("SELECT seq, version, sent_at, attempts FROM outbox ORDER BY seq").fetchall()


async def test_kill_between_commit_and_publish(tmp_path: Path, centrifugo: Centrifugo,
                                               silent_port: str) -> None:
    db = tmp_path / "gateway.sqlite3"
    auth = {"authorization": f"Bearer {ADMIN}"}
    token = connection_token(centrifugo.token_secret, "alice")
    gw_a, url_a = start_gateway(tmp_path, db, silent_port, centrifugo)
    try:
        async with Subscriber(centrifugo.ws_url, token) as alice:
            inbox = await alice.subscribe("notes:*#alice")
            async with httpx.AsyncClient(trust_env=False, timeout=30) as http:
                body = {"data": {"title": "survives"}, "owner_id": "alice"}
                # answered at once: publishing runs after the response, and here it hangs
                write = await http.post(f"{url_a}/v1/collections/notes/documents", headers=auth, json=body)
                assert write.status_code == 201, write.text
                rows = outbox(db)
                assert len(rows) == 1 and rows[0][2] is None and rows[0][3] == 0  # publish still in flight
                os.kill(gw_a.pid, signal.SIGKILL)
                gw_a.wait(timeout=10)
            rows = outbox(db)
            assert len(rows) == 1 and rows[0][2] is None and rows[0][3] == 0  # committed, never published

            gw_b, url_b = start_gateway(tmp_path, db, centrifugo.api_url, centrifugo)
            try:
                async with httpx.AsyncClient(trust_env=False, timeout=30) as http:
                    later = await http.post(f"{url_b}/v1/collections/notes/documents", headers=auth,
                                            json={"data": {"title": "next"}, "owner_id": "alice"})
                    assert later.status_code == 201
                events = await inbox.wait_for(2)
                assert [e["data"]["title"] for e in events] == ["survives", "next"]
                # rows are marked sent once Centrifugo confirmed, after B's response: wait for the mark
                deadline = time.monotonic() + 10
                while not all(sent is not None for _, _, sent, _ in outbox(db)):
                    assert time.monotonic() < deadline, f"published but never marked sent: {outbox(db)}"
                    await asyncio.sleep(0.05)
            finally:
                gw_b.send_signal(signal.SIGTERM)
                gw_b.wait(timeout=10)
    finally:
        if gw_a.poll() is None:
            gw_a.kill()
            gw_a.wait(timeout=10)


async def test_kill_after_a_team_change_commits_its_tasks_removals_are_delivered(
    tmp_path: Path, centrifugo: Centrifugo, silent_port: str
) -> None:
    """The removals a team change gives its tasks are committed with the change: killed before any
    publish, the next gateway on the same database delivers them, in commit order."""
    db = tmp_path / "gateway.sqlite3"
    auth = {"authorization": f"Bearer {ADMIN}"}
    docs = "/v1/collections/{}/documents"
    gw_a, url_a = start_gateway(tmp_path, db, silent_port, centrifugo)
    try:
        async with httpx.AsyncClient(trust_env=False, timeout=30) as http:
            team = {"data": {"name": "t", "members": ["bob", "carol"], "editors": ["bob"]}, "id": "t1",
                    "owner_id": "alice"}
            assert (await http.post(url_a + docs.format("teams"), headers=auth, json=team)).status_code == 201
            for task in ("k1", "k2"):
                body = {"data": {"title": task, "team_id": "t1"}, "id": task, "owner_id": "bob"}
                made = await http.post(url_a + docs.format("tasks"), headers=auth, json=body)
                assert made.status_code == 201
            moved = await http.patch(url_a + docs.format("teams") + "/t1", headers=auth,
                                     json={"data": {"members": ["bob"]}})
            assert moved.status_code == 200
        os.kill(gw_a.pid, signal.SIGKILL)
        gw_a.wait(timeout=10)
        with sqlite3.connect(db) as conn:
            rows = conn.execute("SELECT collection, doc_id, readers, prior_readers, sent_at FROM outbox "
                                "WHERE seq > 3 ORDER BY seq").fetchall()
        assert rows == [("teams", "t1", '["alice","bob"]', '["alice","bob","carol"]', None),
                        ("tasks", "k1", "[]", '["carol"]', None), ("tasks", "k2", "[]", '["carol"]', None)]

        async with Subscriber(centrifugo.ws_url, connection_token(centrifugo.token_secret, "carol")) as carol:
            inbox = await carol.subscribe("tasks:*#carol")
            gw_b, _ = start_gateway(tmp_path, db, centrifugo.api_url, centrifugo)
            try:  # B's outbox sweep publishes what A committed (the created tasks first, in commit order)
                events = await inbox.wait_for(4, within=20)
                assert [(e["type"], e["id"]) for e in events] == [
                    ("created", "k1"), ("created", "k2"), ("removed", "k1"), ("removed", "k2")]
            finally:
                gw_b.send_signal(signal.SIGTERM)
                gw_b.wait(timeout=10)
    finally:
        if gw_a.poll() is None:
            gw_a.kill()
            gw_a.wait(timeout=10)
