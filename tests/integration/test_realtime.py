"""Realtime end to end: gateway (in process) -> real Centrifugo -> real WebSocket clients.

Identity is the stub authenticator of tests/support/gateway.py (``Bearer token-<user>``);
everything else is real: SQLite outbox, Centrifugo v6 configured by infra/centrifugo_config.py,
``centrifuge-python`` subscribers with tokens from ``POST /v1/realtime/token``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import jwt
import pytest
import pytest_asyncio

from tests.support.centrifugo import Centrifugo
from tests.support.gateway import Client, StubAuthenticator, base_settings, make_gateway
from tests.support.realtime_client import Subscriber, close
from worker import realtime
from worker.adapters.httpx_client import HttpxClient
from worker.app import Gateway

pytestmark = pytest.mark.stack


def gateway_env(cf: Centrifugo, **over: str) -> dict[str, str]:
    return {
        **base_settings(),
        "CENTRIFUGO_API_URL": cf.api_url,
        "CENTRIFUGO_API_KEY": cf.api_key,
        "CENTRIFUGO_TOKEN_SECRET": cf.token_secret,
        "CENTRIFUGO_WS_URL": cf.ws_url,
        **over,
    }


@pytest_asyncio.fixture
async def gw(tmp_path: Path, centrifugo: Centrifugo) -> AsyncIterator[Gateway]:
    env = gateway_env(centrifugo)
    gateway = await make_gateway(tmp_path / "gw.sqlite3", settings=env, http=HttpxClient())
    yield gateway
    await gateway.http.aclose()  # type: ignore[attr-defined]
    gateway.db.close()  # type: ignore[attr-defined]


async def grant(client: Client, user: str, channels: list[str] | None = None) -> dict[str, Any]:
    reply = await client.request("POST", "/v1/realtime/token", user=user,
                                 json={"channels": channels} if channels is not None else None)
    assert reply.status == 200, reply.body
    return reply.json


async def pending(gw: Gateway) -> list[dict[str, Any]]:
    sql = "SELECT seq, version, attempts, last_error FROM outbox WHERE sent_at IS NULL"
    return (await gw.db.execute(sql)).rows


async def test_token_endpoint_grants_only_readable_channels(gw: Gateway, centrifugo: Centrifugo) -> None:
    client = Client(gw)
    assert (await client.request("POST", "/v1/realtime/token", user=None)).status == 401
    alice = await grant(client, "alice")
    assert alice["url"] == centrifugo.ws_url and alice["user"] == "alice"
    assert {g["channel"]: g["token"] for g in alice["channels"]} == {"notes:*#alice": None, "posts:*": None}
    claims = jwt.decode(alice["token"], centrifugo.token_secret, algorithms=["HS256"])
    assert claims["sub"] == "alice" and 0 < claims["exp"] - claims["iat"] <= 3600
    for forbidden in ("notes:*#bob", "notes:abc#bob", "notes:*", "settings:*", "posts:x#alice", "nope:*",
                      "posts"):
        reply = await client.request("POST", "/v1/realtime/token", user="alice",
                                     json={"channels": [forbidden]})
        assert reply.status == 403, forbidden
        assert reply.json["error"]["code"] == "forbidden"
    admin = await grant(client, "admin", ["notes:*", "notes:*#alice", "settings:*"])
    assert admin["user"] == realtime.ADMIN_SUB
    for g in admin["channels"]:
        claims = jwt.decode(g["token"], centrifugo.token_secret, algorithms=["HS256"])
        assert claims["channel"] == g["channel"] and claims["sub"] == realtime.ADMIN_SUB


async def test_events_arrive_in_version_order(gw: Gateway, centrifugo: Centrifugo) -> None:
    client = Client(gw)
    created = await client.create("notes", {"title": "draft"}, user="alice")
    assert created.status == 201
    doc_id = created.json["id"]
    alice = await grant(client, "alice", ["notes:*#alice", f"notes:{doc_id}#alice", "posts:*"])
    bob = await grant(client, "bob")
    async with Subscriber(alice["url"], alice["token"]) as a, Subscriber(bob["url"], bob["token"]) as b:
        coll = await a.subscribe("notes:*#alice")
        doc = await a.subscribe(f"notes:{doc_id}#alice")
        bob_posts = await b.subscribe("posts:*")
        path = f"/v1/collections/notes/documents/{doc_id}"
        patch = await client.request("PATCH", path, user="alice", json={"data": {"status": "open"}})
        assert patch.status == 200
        put = await client.request("PUT", path, user="alice", json={"data": {"title": "final"}})
        assert put.status == 200
        assert (await client.request("DELETE", path, user="alice")).status == 204
        post = await client.create("posts", {"title": "hello"}, user="alice")
        events = await doc.wait_for(3)
        assert [(e["type"], e["version"]) for e in events] == [("updated", 2), ("updated", 3), ("deleted", 4)]
        assert events[1]["data"] == {"title": "final"} and events[2]["data"] is None
        assert [e["version"] for e in await coll.wait_for(3)] == [2, 3, 4]
        shared = await bob_posts.wait_for(1)
        assert shared[0]["id"] == post.json["id"] and shared[0]["owner_id"] == "alice"
    assert await pending(gw) == []


async def test_private_events_never_reach_another_user(gw: Gateway, centrifugo: Centrifugo) -> None:
    client = Client(gw)
    secret = await client.create("notes", {"title": "alice only"}, user="alice")
    bob = await grant(client, "bob")
    async with Subscriber(bob["url"], bob["token"]) as b:
        # asking Centrifugo directly for alice's channels by name: refused (103 permission denied)
        for channel in ("notes:*#alice", f"notes:{secret.json['id']}#alice", "notes:*", "settings:*"):
            refused = await b.subscribe(channel, expect_ok=False)
            assert refused.refused == 103, channel
        # a subscription token for another user's channel does not help either (sub must match)
        forged = realtime.subscription_token(centrifugo.token_secret, "alice", "notes:*#alice")
        own = await b.subscribe("notes:*#bob")
        for i in range(3):
            await client.create("notes", {"title": f"alice {i}"}, user="alice")
        sentinel = await client.create("notes", {"title": "bob's"}, user="bob")
        received = await own.wait_for(1)
        assert [e["id"] for e in received] == [sentinel.json["id"]]
        assert all(e["owner_id"] == "bob" for e in own.events)
    async with Subscriber(bob["url"], bob["token"]) as b2:
        refused = await b2.subscribe("notes:*#alice", token=forged, expect_ok=False)
        assert refused.refused is not None and not refused.events


async def test_admin_firehose_needs_the_admin_token(gw: Gateway, centrifugo: Centrifugo) -> None:
    client = Client(gw)
    admin = await grant(client, "admin", ["notes:*", "settings:*"])
    tokens = {g["channel"]: g["token"] for g in admin["channels"]}
    async with Subscriber(admin["url"], admin["token"]) as s:
        notes = await s.subscribe("notes:*", tokens["notes:*"])
        await client.create("notes", {"title": "a"}, user="alice")
        await client.create("notes", {"title": "b"}, user="bob")
        assert {e["owner_id"] for e in await notes.wait_for(2)} == {"alice", "bob"}


async def test_centrifugo_down_then_drain_delivers_each_version_once(gw: Gateway,
                                                                    centrifugo: Centrifugo) -> None:
    client = Client(gw)
    centrifugo.stop()
    first = await client.create("notes", {"title": "v1"}, user="alice")
    assert first.status == 201  # the write does not depend on realtime
    path = f"/v1/collections/notes/documents/{first.json['id']}"
    for title in ("v2", "v3"):
        reply = await client.request("PUT", path, user="alice", json={"data": {"title": title}})
        assert reply.status == 200
    stuck = await pending(gw)  # the first failure also pauses request-triggered publishing (backoff)
    assert len(stuck) == 3 and stuck[0]["attempts"] >= 1 and "unreachable" in stuck[0]["last_error"]

    centrifugo.start()
    alice = await grant(client, "alice")
    async with Subscriber(alice["url"], alice["token"]) as a:
        inbox = await a.subscribe("notes:*#alice")
        result = await realtime.drain(gw.db, gw.http, gw.settings, limit=100)
        assert (result.sent, result.failed) == (3, 0)
        # a second publish of the same rows (crash before mark, or two drains) is suppressed by Centrifugo
        await gw.db.execute("UPDATE outbox SET sent_at = NULL")
        assert (await realtime.drain(gw.db, gw.http, gw.settings, limit=100)).sent == 3
        # the sentinel follows the duplicates on the same channel: once it is here, any duplicate is too
        sentinel = await client.create("notes", {"title": "sentinel"}, user="alice")
        # the request path may still be backing off after the outage: drain as the cron would
        await realtime.drain(gw.db, gw.http, gw.settings, limit=100)
        await inbox.wait_for(4)
        assert inbox.keys() == [("notes", first.json["id"], v) for v in (1, 2, 3)] + [
            ("notes", sentinel.json["id"], 1)]
    assert await pending(gw) == []


async def test_wrong_api_key_is_refused_and_events_stay_pending(tmp_path: Path,
                                                               centrifugo: Centrifugo) -> None:
    status, body = centrifugo.api("info", {}, key="not-the-key")
    assert status == 401
    env = gateway_env(centrifugo, CENTRIFUGO_API_KEY="not-the-key")
    gw = await make_gateway(tmp_path / "wrong.sqlite3", settings=env, http=HttpxClient())
    try:
        assert (await Client(gw).create("notes", {"title": "x"}, user="alice")).status == 201
        rows = await pending(gw)
        assert len(rows) == 1 and "401" in rows[0]["last_error"]
        assert "not-the-key" not in rows[0]["last_error"]
        with pytest.raises(realtime.RealtimeError, match="API key"):
            await realtime.CentrifugoApi(gw.http, centrifugo.api_url, "not-the-key").info()
    finally:
        await gw.http.aclose()  # type: ignore[attr-defined]
        gw.db.close()  # type: ignore[attr-defined]


async def test_connection_token_signed_with_another_key_is_refused(centrifugo: Centrifugo) -> None:
    bad = realtime.connection_token("some-other-secret-0123456789abcdef", "alice")
    from centrifuge import Client as CfClient
    from centrifuge.exceptions import CentrifugeError

    c = CfClient(centrifugo.ws_url, token=bad, timeout=5.0, proxy=None)
    await c.connect()
    with pytest.raises(CentrifugeError):
        await c.ready(timeout=5)
    await close(c)


async def test_sweep_publishes_what_the_request_path_left_pending(tmp_path: Path,
                                                                  centrifugo: Centrifugo) -> None:
    # request-path publishing off: every committed event stays pending, as after a burst that
    # ended while the bounded request drain was at its cap
    env = gateway_env(centrifugo, OUTBOX_DRAIN_PER_REQUEST="0")
    gw = await make_gateway(tmp_path / "sweep.sqlite3", settings=env, http=HttpxClient())
    try:
        client = Client(gw)
        alice = await grant(client, "alice")
        async with Subscriber(alice["url"], alice["token"]) as a:
            inbox = await a.subscribe("notes:*#alice")
            ids = [(await client.create("notes", {"title": f"t{i}"}, user="alice")).json["id"]
                   for i in range(3)]
            assert len(await pending(gw)) == 3
            # the one-drain-at-a-time guard: a sweep never runs beside another drain of the isolate
            realtime._drain_state(gw)["running"] = True
            assert await realtime.sweep(gw) == 0
            realtime._drain_state(gw)["running"] = False
            assert await realtime.sweep(gw, batch=2) == 3  # several rounds until nothing is left
            await inbox.wait_for(3)
            assert inbox.keys() == [("notes", i, 1) for i in ids]
        assert await pending(gw) == []
    finally:
        await gw.http.aclose()  # type: ignore[attr-defined]
        gw.db.close()  # type: ignore[attr-defined]


async def test_local_gateway_sweeps_the_outbox_without_another_write(tmp_path: Path,
                                                                     centrifugo: Centrifugo) -> None:
    """The ASGI app's lifespan task is the local stand-in for the Workers cron trigger."""
    import asyncio

    from worker.asgi import OUTBOX_SWEEP_SECONDS, create_app

    env = {f"TELESTACK_{k}": v for k, v in gateway_env(centrifugo, OUTBOX_DRAIN_PER_REQUEST="0").items()}
    env["TELESTACK_DB_PATH"] = str(tmp_path / "asgi.sqlite3")
    app = create_app(env)
    gw: Gateway = app.gateway
    gw.cache["authenticator"] = StubAuthenticator()
    inbox: list[dict[str, Any]] = [{"type": "lifespan.startup"}]
    sent: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    stop = asyncio.Event()

    async def receive() -> dict[str, Any]:
        if inbox:
            return inbox.pop()
        await stop.wait()
        return {"type": "lifespan.shutdown"}

    lifespan = asyncio.create_task(app({"type": "lifespan"}, receive, sent.put))
    try:
        assert (await asyncio.wait_for(sent.get(), 30))["type"] == "lifespan.startup.complete"
        assert (await Client(gw).create("notes", {"title": "swept"}, user="alice")).status == 201
        assert len(await pending(gw)) == 1
        deadline = asyncio.get_running_loop().time() + 10 * OUTBOX_SWEEP_SECONDS + 5
        while await pending(gw) and asyncio.get_running_loop().time() < deadline:  # noqa: ASYNC110
            await asyncio.sleep(0.1)
        assert await pending(gw) == [], "the periodic sweep did not publish the pending event"
    finally:
        stop.set()
        await asyncio.wait_for(lifespan, 30)
