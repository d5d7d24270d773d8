"""Realtime end to end: gateway (in process) -> real Centrifugo -> real WebSocket clients.

Identity is the stub authenticator of tests/support/gateway.py (``Bearer token-<user>``);
everything else is real: SQLite outbox, Centrifugo v6 configured by infra/centrifugo_config.py,
``centrifuge-python`` subscribers with tokens from ``POST /v1/realtime/token``.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import jwt
import pytest
import pytest_asyncio

from tests.support.centrifugo import Centrifugo
from tests.support.gateway import (
    Client,
    GatewayFactory,
    StubAuthenticator,
    asgi_call,
    base_settings,
    lifespan,
)
from tests.support.realtime_client import Subscriber, close
from worker import jsoncodec, outbox
from worker.adapters.httpx_client import HttpxClient
from worker.centrifugo import CentrifugoApi, CentrifugoError
from worker.channels import ADMIN_SUB
from worker.context import Gateway
from worker.realtime_tokens import connection_token, subscription_token

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
async def gw(gateways: GatewayFactory, centrifugo: Centrifugo) -> Gateway:
    return await gateways(gateway_env(centrifugo), HttpxClient())


async def grant(client: Client, user: str, channels: list[str] | None = None) -> dict[str, Any]:
    reply = await client.request("POST", "/v1/realtime/token", user=user,
                                 json={"channels": channels} if channels is not None else None)
    assert reply.status == 200, reply.body
    return reply.json


async def pending(gw: Gateway) -> list[dict[str, Any]]:
    sql = "SELECT seq, version, attempts, last_error FROM outbox WHERE sent_at IS NULL"
    return (await gw.db.execute(sql)).rows


async def drain(gw: Gateway) -> outbox.DrainResult:
    """One drain as the cron or the runbook runs it (no backoff, no one-at-a-time guard)."""
    assert gw.centrifugo is not None
    return await outbox.drain(gw.db, gw.centrifugo, gw.collections.access_rules(), limit=100)


async def test_token_endpoint_grants_only_readable_channels(gw: Gateway, centrifugo: Centrifugo) -> None:
    client = Client(gw)
    assert (await client.request("POST", "/v1/realtime/token", user=None)).status == 401
    alice = await grant(client, "alice")
    assert alice["url"] == centrifugo.ws_url and alice["user"] == "alice"
    # the rules examples (lists, tasks, teams) get user-limited collection channels like private notes
    assert {g["channel"]: g["token"] for g in alice["channels"]} == {
        "notes:*#alice": None, "posts:*": None, "lists:*#alice": None, "tasks:*#alice": None,
        "teams:*#alice": None}
    claims = jwt.decode(alice["token"], centrifugo.token_secret, algorithms=["HS256"])
    assert claims["sub"] == "alice" and 0 < claims["exp"] - claims["iat"] <= 3600
    for forbidden in ("notes:*#bob", "notes:abc#bob", "notes:*", "settings:*", "posts:x#alice", "nope:*",
                      "posts"):
        reply = await client.request("POST", "/v1/realtime/token", user="alice",
                                     json={"channels": [forbidden]})
        assert reply.status == 403, forbidden
        assert reply.json["error"]["code"] == "forbidden"
    admin = await grant(client, "admin", ["notes:*", "notes:*#alice", "settings:*"])
    assert admin["user"] == ADMIN_SUB
    for g in admin["channels"]:
        claims = jwt.decode(g["token"], centrifugo.token_secret, algorithms=["HS256"])
        assert claims["channel"] == g["channel"] and claims["sub"] == ADMIN_SUB


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
        forged = subscription_token(centrifugo.token_secret, "alice", "notes:*#alice")
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
        result = await drain(gw)
        assert (result.sent, result.failed) == (3, 0)
        # a second publish of the same rows (crash before mark, or two drains) is suppressed by Centrifugo
        await gw.db.execute("UPDATE outbox SET sent_at = NULL")
        assert (await drain(gw)).sent == 3
        # the sentinel follows the duplicates on the same channel: once it is here, any duplicate is too
        sentinel = await client.create("notes", {"title": "sentinel"}, user="alice")
        # the request path may still be backing off after the outage: drain as the cron would
        await drain(gw)
        await inbox.wait_for(4)
        assert inbox.keys() == [("notes", first.json["id"], v) for v in (1, 2, 3)] + [
            ("notes", sentinel.json["id"], 1)]
    assert await pending(gw) == []


async def test_wrong_api_key_is_refused_and_events_stay_pending(gateways: GatewayFactory,
                                                               centrifugo: Centrifugo) -> None:
    status, body = centrifugo.api("info", {}, key="not-the-key")
    assert status == 401
    gw = await gateways(gateway_env(centrifugo, CENTRIFUGO_API_KEY="not-the-key"), HttpxClient())
    assert (await Client(gw).create("notes", {"title": "x"}, user="alice")).status == 201
    rows = await pending(gw)
    assert len(rows) == 1 and "401" in rows[0]["last_error"]
    assert "not-the-key" not in rows[0]["last_error"]
    with pytest.raises(CentrifugoError, match="API key"):
        await CentrifugoApi(gw.http, centrifugo.api_url, "not-the-key").info()


async def test_connection_token_signed_with_another_key_is_refused(centrifugo: Centrifugo) -> None:
    bad = connection_token("some-other-secret-0123456789abcdef", "alice")
    from centrifuge import Client as CfClient
    from centrifuge.exceptions import CentrifugeError

    c = CfClient(centrifugo.ws_url, token=bad, timeout=5.0, proxy=None)
    await c.connect()
    try:
        with pytest.raises(CentrifugeError):
            await c.ready(timeout=5)
    finally:
        await close(c)  # also when the server accepted it: a client left open outlives the loop


async def test_sweep_publishes_what_the_request_path_left_pending(gateways: GatewayFactory,
                                                                  centrifugo: Centrifugo) -> None:
    # request-path publishing off: every committed event stays pending, as after a burst that
    # ended while the bounded request drain was at its cap
    gw = await gateways(gateway_env(centrifugo, OUTBOX_DRAIN_PER_REQUEST="0"), HttpxClient())
    client = Client(gw)
    alice = await grant(client, "alice")
    async with Subscriber(alice["url"], alice["token"]) as a:
        inbox = await a.subscribe("notes:*#alice")
        ids = [(await client.create("notes", {"title": f"t{i}"}, user="alice")).json["id"] for i in range(3)]
        assert len(await pending(gw)) == 3
        # the one-drain-at-a-time guard: a sweep never runs beside another drain of the isolate
        gw.publisher.running = True
        assert await gw.publisher.sweep() == 0
        gw.publisher.running = False
        assert await gw.publisher.sweep(batch=2) == 3  # several rounds until nothing is left
        await inbox.wait_for(3)
        assert inbox.keys() == [("notes", i, 1) for i in ids]
    assert await pending(gw) == []


def asgi_app(tmp_path: Path, cf: Centrifugo, **over: str) -> Any:
    """The local gateway (``worker.asgi``) in process, with stub identity."""
    from worker.asgi import create_app

    env = {f"TELESTACK_{k}": v for k, v in gateway_env(cf, **over).items()}
    env["TELESTACK_DB_PATH"] = str(tmp_path / "asgi.sqlite3")
    app = create_app(env)
    app.gateway.authenticator = StubAuthenticator()
    return app


async def wait_until_published(gw: Gateway, within: float) -> None:
    deadline = asyncio.get_running_loop().time() + within
    while await pending(gw) and asyncio.get_running_loop().time() < deadline:  # noqa: ASYNC110
        await asyncio.sleep(0.1)


async def test_local_gateway_sweeps_the_outbox_without_another_write(tmp_path: Path,
                                                                     centrifugo: Centrifugo) -> None:
    """The ASGI app's lifespan task is the local stand-in for the Workers cron trigger."""
    from worker.asgi import OUTBOX_SWEEP_SECONDS

    app = asgi_app(tmp_path, centrifugo, OUTBOX_DRAIN_PER_REQUEST="0")
    gw: Gateway = app.gateway
    async with lifespan(app):
        assert (await Client(gw).create("notes", {"title": "swept"}, user="alice")).status == 201
        assert len(await pending(gw)) == 1
        await wait_until_published(gw, 10 * OUTBOX_SWEEP_SECONDS + 5)
        assert await pending(gw) == [], "the periodic sweep did not publish the pending event"


async def test_the_response_is_sent_while_its_publish_is_still_in_flight(tmp_path: Path,
                                                                         centrifugo: Centrifugo) -> None:
    """A hung Centrifugo does not hold a write's response; its event stays pending and goes out later."""
    from worker.asgi import OUTBOX_SWEEP_SECONDS

    app = asgi_app(tmp_path, centrifugo)
    gw: Gateway = app.gateway
    at_response: list[list[dict[str, Any]]] = []

    async def on_send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.body":
            at_response.append(await pending(gw))

    async with lifespan(app):
        with centrifugo.hung():
            body = jsoncodec.dumps_bytes({"data": {"title": "not held up"}})
            headers = {"authorization": "Bearer token-alice", "content-type": "application/json"}
            status, _, reply = await asyncio.wait_for(
                asgi_call(app, "POST", "/v1/collections/notes/documents", body, headers, on_send), 30)
            assert status == 201, reply
            [committed] = at_response[0]  # the row was on disk when the response went out
            assert committed["attempts"] == 0
            # the request is over; its publish has started and waits on Centrifugo, which never answers
            deadline = asyncio.get_running_loop().time() + 10
            while not gw.publisher.running:
                assert asyncio.get_running_loop().time() < deadline, "the publish never started"
                await asyncio.sleep(0.01)
            assert [r["attempts"] for r in await pending(gw)] == [0]
        # Centrifugo answers again: the sweep publishes the event (Centrifugo accepted it: sent_at is set)
        await wait_until_published(gw, 10 * OUTBOX_SWEEP_SECONDS + 10)
        assert await pending(gw) == []
        sent = (await gw.db.execute("SELECT doc_id, sent_at FROM outbox")).rows
        assert [r["doc_id"] for r in sent] == [jsoncodec.loads(reply)["id"]] and sent[0]["sent_at"]


async def test_rule_collection_events_reach_exactly_the_readers_and_a_lost_reader_gets_removed(
    gw: Gateway, centrifugo: Centrifugo
) -> None:
    """lists (members array) through real Centrifugo: members get the event, a stranger does not, and a
    member taken out of ``members`` gets a ``removed`` event on their own channel."""
    client = Client(gw)
    bob, carol = await grant(client, "bob"), await grant(client, "carol")
    async with Subscriber(bob["url"], bob["token"]) as b, Subscriber(carol["url"], carol["token"]) as c:
        bob_lists = await b.subscribe("lists:*#bob")
        carol_lists = await c.subscribe("lists:*#carol")
        made = await client.create("lists", {"title": "g", "members": ["bob"]}, user="alice", id="l1")
        assert made.status == 201
        path = "/v1/collections/lists/documents/l1"
        removed = await client.request("PATCH", path, user="alice", json={"data": {"members": []}})
        assert removed.status == 200
        sentinel = await client.create("lists", {"title": "c", "members": ["carol"]}, user="alice", id="l2")
        assert sentinel.status == 201
        events = await bob_lists.wait_for(2)
        got = [(e["type"], e["id"], e["version"]) for e in events]
        assert got == [("created", "l1", 1), ("removed", "l1", 2)]
        assert events[1]["data"] is None
        seen = await carol_lists.wait_for(1)
        assert [(e["type"], e["id"]) for e in seen] == [("created", "l2")]  # never saw l1
    assert await pending(gw) == []


async def test_a_team_membership_change_reaches_its_tasks_readers_through_real_centrifugo(
    gw: Gateway, centrifugo: Centrifugo
) -> None:
    """tasks (readable by the members of the team they point to): carol, taken out of the team, gets
    ``removed`` for each of its tasks and nothing after; erin, let in, gets each task and then its
    changes; dan, in no team of those tasks, gets none of their events."""
    client = Client(gw)
    grants = {u: await grant(client, u) for u in ("carol", "erin", "dan")}
    subs = {u: Subscriber(g["url"], g["token"]) for u, g in grants.items()}
    async with subs["carol"] as c, subs["erin"] as e, subs["dan"] as d:
        carol, erin, dan = (await c.subscribe("tasks:*#carol"), await e.subscribe("tasks:*#erin"),
                            await d.subscribe("tasks:*#dan"))
        team = {"name": "t", "members": ["bob", "carol"], "editors": ["bob"]}
        assert (await client.create("teams", team, user="alice", id="t1")).status == 201
        for task in ("k1", "k2"):
            made = await client.create("tasks", {"title": task, "team_id": "t1"}, user="bob", id=task)
            assert made.status == 201
        moved = await client.request("PATCH", "/v1/collections/teams/documents/t1", user="alice",
                                     json={"data": {"members": ["bob", "erin"]}})
        assert moved.status == 200
        edited = await client.request("PATCH", "/v1/collections/tasks/documents/k1", user="bob",
                                      json={"data": {"done": True}})
        assert edited.status == 200
        # a sentinel every subscriber but erin hears, after everything above on the same channels
        other = {"name": "u", "members": ["carol", "dan"], "editors": ["alice"]}
        assert (await client.create("teams", other, user="alice", id="t2")).status == 201
        made = await client.create("tasks", {"title": "k9", "team_id": "t2"}, user="alice", id="k9")
        assert made.status == 201

        got = [(x["type"], x["id"], x["version"]) for x in await carol.wait_for(5)]
        assert got == [("created", "k1", 1), ("created", "k2", 1), ("removed", "k1", 1), ("removed", "k2", 1),
                       ("created", "k9", 1)]
        assert [x["data"] for x in carol.events[2:4]] == [None, None]
        got = [(x["type"], x["id"], x["version"]) for x in await erin.wait_for(3)]
        assert got == [("updated", "k1", 1), ("updated", "k2", 1), ("updated", "k1", 2)]
        assert erin.events[0]["data"] == {"title": "k1", "team_id": "t1"}  # the document, to show it
        assert [(x["type"], x["id"]) for x in await dan.wait_for(1)] == [("created", "k9")]
        await asyncio.sleep(0.3)  # nothing else arrives late
        assert (len(carol.events), len(erin.events), len(dan.events)) == (5, 3, 1)
    assert await pending(gw) == []
