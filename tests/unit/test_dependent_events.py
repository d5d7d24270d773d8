"""Events for documents whose readers a looked-up document decides: a team's members change, and each
of its tasks gets a removal for the members who left and the document for the members who joined, in
the team write's own batch (config/collections teams + tasks)."""

from __future__ import annotations

import logging
from typing import Any

import pytest

from tests.support.gateway import Client, base_settings
from tests.support.scripted_http import ACCEPT_ALL, ScriptedHttp
from worker import dependent_events, jsoncodec, migrations, outbox
from worker.centrifugo import CentrifugoApi
from worker.collections import Registry

TEAMS = "/v1/collections/teams/documents"
TASKS = "/v1/collections/tasks/documents"


@pytest.fixture
async def team(client: Client) -> Client:
    """Team t1 (owner alice; members bob, carol; editor bob) with tasks k1, k2; team t2 with task k3."""
    c = client
    assert (await c.create("teams", {"name": "t", "members": ["bob", "carol"], "editors": ["bob"]},
                           id="t1")).status == 201
    assert (await c.create("teams", {"name": "u", "members": ["erin"], "editors": ["erin"]},
                           id="t2")).status == 201
    for task, team_id, editor in (("k1", "t1", "bob"), ("k2", "t1", "bob"), ("k3", "t2", "erin")):
        r = await c.create("tasks", {"title": task, "team_id": team_id}, user=editor, id=task)
        assert r.status == 201
    return c


async def _events_after(c: Client, seq: int) -> list[tuple[str, str, str, Any, Any]]:
    sql = "SELECT collection, doc_id, op, readers, prior_readers FROM outbox WHERE seq > ? ORDER BY seq"
    rows = (await c.gateway.db.execute(sql, (seq,))).rows
    return [(r["collection"], r["doc_id"], r["op"], _ids(r["readers"]), _ids(r["prior_readers"]))
            for r in rows]


def _ids(text: str | None) -> list[str] | None:
    return None if text is None else jsoncodec.loads(text)


async def _last_seq(c: Client) -> int:
    return int((await c.gateway.db.execute("SELECT coalesce(max(seq), 0) AS s FROM outbox")).rows[0]["s"])


async def _patch_team(c: Client, team_id: str, data: dict[str, Any]) -> None:
    r = await c.request("PATCH", f"{TEAMS}/{team_id}", json={"data": data})
    assert r.status == 200, r.json


async def test_a_member_taken_out_loses_each_task_and_one_let_in_gains_it(team: Client) -> None:
    c = team
    seq = await _last_seq(c)
    await _patch_team(c, "t1", {"members": ["bob", "dan"]})  # carol out, dan in
    assert await _events_after(c, seq) == [
        ("teams", "t1", "updated", ["alice", "bob", "dan"], ["alice", "bob", "carol"]),
        ("tasks", "k1", "updated", ["dan"], ["carol"]),  # readers: who gained; prior: who lost
        ("tasks", "k2", "updated", ["dan"], ["carol"]),
    ]  # k3 (team t2) has nothing
    assert (await c.gateway.db.execute("SELECT count(*) AS n FROM dependent_readers")).rows[0]["n"] == 0


async def test_the_publisher_sends_the_document_to_gained_readers_and_removed_to_lost_ones(
    team: Client,
) -> None:
    c = team
    seq = await _last_seq(c)
    await _patch_team(c, "t1", {"members": ["bob", "dan"]})
    await c.gateway.db.execute("UPDATE outbox SET sent_at = 1 WHERE seq <= ?", (seq,))
    http = ScriptedHttp(ACCEPT_ALL)
    access = c.gateway.collections.access_rules()
    await outbox.drain(c.gateway.db, CentrifugoApi(http, "http://c.invalid", "k"), access, limit=100)
    sent = [cmd["broadcast"] for cmd in http.bodies[0]["commands"]
            if cmd["broadcast"]["data"]["collection"] == "tasks"]
    assert [(b["data"]["type"], b["data"]["id"], b["channels"]) for b in sent] == [
        ("updated", "k1", ["tasks:k1#dan", "tasks:*#dan", "tasks:*"]),
        ("removed", "k1", ["tasks:k1#carol", "tasks:*#carol"]),
        ("updated", "k2", ["tasks:k2#dan", "tasks:*#dan", "tasks:*"]),
        ("removed", "k2", ["tasks:k2#carol", "tasks:*#carol"]),
    ]
    # the document as dan now reads it: same version, fields and timestamps as a GET answers
    got = (await c.request("GET", f"{TASKS}/k1", user="dan")).json
    event = sent[0]["data"]
    assert {k: event[k] for k in got} == got and event["version"] == 1
    assert sent[1]["data"]["data"] is None and sent[1]["data"]["version"] == 1


async def test_a_team_change_no_lookup_reads_writes_no_task_event(team: Client) -> None:
    """The tasks' read rule reads the team's members only: renaming it or changing editors moves nobody."""
    c = team
    seq = await _last_seq(c)
    await _patch_team(c, "t1", {"name": "renamed", "editors": ["bob", "carol"]})
    assert [e[:3] for e in await _events_after(c, seq)] == [("teams", "t1", "updated")]
    await _patch_team(c, "t1", {"members": ["carol", "bob"]})  # the same readers in another order
    assert [e[:3] for e in await _events_after(c, seq)] == [("teams", "t1", "updated")] * 2


async def test_deleting_the_team_removes_its_tasks_and_creating_it_again_gives_them_back(
    team: Client,
) -> None:
    c = team
    seq = await _last_seq(c)
    assert (await c.request("DELETE", f"{TEAMS}/t1")).status == 204
    team_again = {"name": "t", "members": ["carol"], "editors": []}
    assert (await c.create("teams", team_again, id="t1")).status == 201
    assert [e for e in await _events_after(c, seq) if e[0] == "tasks"] == [
        ("tasks", "k1", "updated", [], ["bob", "carol"]),
        ("tasks", "k2", "updated", [], ["bob", "carol"]),
        ("tasks", "k1", "updated", ["carol"], []),
        ("tasks", "k2", "updated", ["carol"], []),
    ]


async def test_a_write_in_a_batch_sees_the_tasks_written_before_it(team: Client) -> None:
    """Batch order: k4 is created (readers: bob, carol), then the team drops carol: k4 loses her too."""
    c = team
    seq = await _last_seq(c)
    r = await c.request("POST", "/v1/batch", user="admin", json={"writes": [
        {"op": "create", "collection": "tasks", "id": "k4", "data": {"title": "k4", "team_id": "t1"}},
        {"op": "patch", "collection": "teams", "id": "t1", "data": {"members": ["bob"]}},
    ]})
    assert r.status == 200, r.json
    assert [e for e in await _events_after(c, seq) if e[0] == "tasks"] == [
        ("tasks", "k4", "created", ["bob", "carol"], None),
        ("tasks", "k1", "updated", [], ["carol"]),
        ("tasks", "k2", "updated", [], ["carol"]),
        ("tasks", "k4", "updated", [], ["carol"]),
    ]


async def test_the_events_commit_with_the_write_or_not_at_all(team: Client) -> None:
    """A failure after the team statement ran (here: the database refuses the tasks' event rows) rolls
    back the team change, its own event and the staged readers with it."""
    c = team
    db = c.gateway.db
    seq = await _last_seq(c)
    before = (await c.request("GET", f"{TEAMS}/t1")).json
    db._conn.execute(  # type: ignore[attr-defined]
        "CREATE TEMP TRIGGER refuse_task_events BEFORE INSERT ON outbox WHEN NEW.collection = 'tasks' "
        "BEGIN SELECT RAISE(ABORT, 'disk full'); END")
    r = await c.request("PATCH", f"{TEAMS}/t1", json={"data": {"members": ["bob"]}})
    assert (r.status, r.json["error"]["code"]) == (500, "internal")
    assert (await c.request("GET", f"{TEAMS}/t1")).json == before
    assert await _events_after(c, seq) == []
    assert (await db.execute("SELECT count(*) AS n FROM dependent_readers")).rows[0]["n"] == 0
    assert (await c.request("GET", f"{TASKS}/k1", user="carol")).status == 200  # still a reader

    db._conn.execute("DROP TRIGGER refuse_task_events")  # type: ignore[attr-defined]
    await _patch_team(c, "t1", {"members": ["bob"]})
    assert [e[:2] for e in await _events_after(c, seq)] == [("teams", "t1"), ("tasks", "k1"), ("tasks", "k2")]
    assert (await c.request("GET", f"{TASKS}/k1", user="carol")).status == 404


async def test_above_the_bound_the_first_by_id_get_events_and_a_warning_is_logged(
    team: Client, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    c = team
    assert (await c.create("tasks", {"title": "k0", "team_id": "t1"}, user="bob", id="k0")).status == 201
    monkeypatch.setattr(dependent_events, "MAX_DEPENDENTS_PER_WRITE", 2)
    seq = await _last_seq(c)
    with caplog.at_level(logging.WARNING, logger="telestack.dependent_events"):
        await _patch_team(c, "t1", {"members": ["bob"]})
    assert [e[1] for e in await _events_after(c, seq) if e[0] == "tasks"] == ["k0", "k1"]
    assert "more than 2 tasks documents" in caplog.text
    assert (await c.request("GET", f"{TASKS}/k2", user="carol")).status == 404  # reads: the current rule


async def test_the_dependents_are_found_through_the_lookup_key_index(team: Client) -> None:
    c = team
    deps = c.gateway.collections.get("teams").looked_up_by
    assert [(d.collection, d.fields) for d in deps] == [("tasks", (("data", "members"),))]
    [stage] = dependent_events.around("teams", deps, "t1", [], 0, None, "{}")[:1]
    plan = (await c.gateway.db.execute("EXPLAIN QUERY PLAN " + stage.sql.split(") ", 1)[1],
                                       stage.params)).rows
    outer = [r["detail"] for r in plan if r["parent"] == 0]
    assert any("USING INDEX ix_tasks_" in d for d in outer), plan


def test_a_lookup_key_gets_an_index_without_being_listed() -> None:
    read = "get('teams', doc.data.group).data.members contains auth.id"
    repo = jsoncodec.loads(base_settings()["COLLECTIONS"])["collections"]
    boards = {"access": "private", "rules": {"read": read}}
    reg = Registry.from_dict({"collections": {**repo, "boards": boards}})
    wanted = migrations.index_sql(reg.get("boards")).values()
    assert any("json_extract(data, '$.group')" in sql for sql in wanted)
    assert [d.collection for d in reg.get("teams").looked_up_by] == ["tasks", "boards"]
    assert reg.get("tasks").looked_up_by == ()


async def test_a_lookup_keyed_by_the_reader_makes_every_document_a_candidate(gateways: Any) -> None:
    """``get('profiles', auth.id)``: a profile's change can move its user in or out of any board."""
    collections = {"collections": {
        "profiles": {"access": "private"},
        "boards": {"rules": {
            "read": "auth.id in doc.data.members && get('profiles', auth.id).data.active == true",
            "create": "auth != null", "update": "false", "delete": "false"}},
    }}
    gw = await gateways(base_settings(collections))
    c = Client(gw)
    made = await c.create("profiles", {"active": True}, user="admin", id="bob", owner_id="bob")
    assert made.status == 201
    for board, members in (("b1", ["bob", "carol"]), ("b2", ["carol"])):
        assert (await c.create("boards", {"members": members}, id=board)).status == 201
    seq = await _last_seq(c)
    r = await c.request("PATCH", "/v1/collections/profiles/documents/bob", user="bob",
                        json={"data": {"active": False}})
    assert r.status == 200
    boards = [e for e in await _events_after(c, seq) if e[0] == "boards"]
    assert boards == [("boards", "b1", "updated", [], ["bob"])]  # b2 never had bob


def test_the_dependents_bound_is_documented() -> None:
    from pathlib import Path

    text = (Path(__file__).parents[2] / "docs" / "rules.md").read_text()
    assert f"at most **{dependent_events.MAX_DEPENDENTS_PER_WRITE}** documents" in text


def test_the_stage_and_its_deletion_are_in_one_list_and_the_written_id_is_bound() -> None:
    """A batch that stages readers also empties the stage; the id (from the request) is never SQL text."""
    deps = Registry.from_dict(jsoncodec.loads(base_settings()["COLLECTIONS"])).get("teams").looked_up_by
    written_id = "x' OR 1=1 --"
    stmts = dependent_events.around("teams", deps, written_id, [], 0, None, "{}")
    stage, emit, clear = stmts
    assert stage.sql.startswith("INSERT INTO dependent_readers ") and "INSERT INTO outbox " in emit.sql
    assert clear.sql.startswith("DELETE FROM dependent_readers ")
    assert all(written_id not in s.sql for s in stmts) and written_id in stmts[0].params


async def test_a_nested_lookup_finds_its_dependents_through_both_documents(gateways: Any) -> None:
    """``get('groups', get('projects', doc.data.project).data.group)``: a group's change reaches the items
    of every project in it, and moving a project to another group reaches that project's items."""
    read = "get('groups', get('projects', doc.data.project).data.group).data.members contains auth.id"
    collections = {"collections": {
        "groups": {"access": "shared-read"}, "projects": {"access": "shared-read"},
        "items": {"rules": {"read": read, "create": "auth != null", "update": "false", "delete": "false"}},
    }}
    gw = await gateways(base_settings(collections))
    c = Client(gw)
    docs = (("groups", "g1", {"members": ["bob"]}), ("groups", "g2", {"members": ["carol"]}),
            ("projects", "p1", {"group": "g1"}), ("projects", "p2", {"group": "g2"}),
            ("items", "i1", {"project": "p1"}), ("items", "i2", {"project": "p2"}))
    for coll, doc_id, data in docs:
        assert (await c.create(coll, data, id=doc_id)).status == 201
    seq = await _last_seq(c)
    r = await c.request("PATCH", "/v1/collections/groups/documents/g1", json={"data": {"members": ["dan"]}})
    assert r.status == 200
    r = await c.request("PATCH", "/v1/collections/projects/documents/p2", json={"data": {"group": "g1"}})
    assert r.status == 200
    assert [e for e in await _events_after(c, seq) if e[0] == "items"] == [
        ("items", "i1", "updated", ["dan"], ["bob"]), ("items", "i2", "updated", ["dan"], ["carol"])]
