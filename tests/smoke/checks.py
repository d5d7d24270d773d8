"""The smoke checks, in order: what a real app does against a freshly deployed stack.

Everything a run creates carries its run id (``smoke-<UTC stamp>-<hex>``): user
emails ``smoke+<run>@smoke.telestack.test``, document ids ``<run>-<n>`` with
``meta.smoke_run`` = run id, object keys ``users/<uid>/smoke/<run>/…``. The run
journals each creation before making it (see cleanup.py), so a crashed run is
found and removed later by ``--cleanup-stale``.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from typing import Any

import httpx

from scripts.ops.stack import Target
from tests.smoke import account
from tests.smoke.client import Api, User, describe
from tests.smoke.runner import Check, CheckFailed, expect

#: how long a subscriber that must NOT receive an event keeps listening after the owner got it
NEGATIVE_WINDOW_S = 1.5
EVENT_TIMEOUT_S = 10.0


@dataclass
class Smoke:
    target: Target
    api: Api
    run_id: str
    collection: str = "notes"
    users: dict[str, User] = field(default_factory=dict)
    #: (collection, id, owner label) of every document still to delete
    docs: list[tuple[str, str, str]] = field(default_factory=list)
    objects: list[str] = field(default_factory=list)
    journal: Any = None  # cleanup.Journal
    _seq: int = 0

    def new_id(self) -> str:
        self._seq += 1
        return f"{self.run_id}-{self._seq}"

    def body(self, title: str, **extra: Any) -> dict[str, Any]:
        return {
            "title": f"{title} ({self.run_id})",
            "tags": ["smoke"],
            "meta": {"smoke_run": self.run_id},
            **extra,
        }

    def record_doc(self, doc_id: str, owner: str) -> None:
        self.docs.append((self.collection, doc_id, owner))
        if self.journal:
            self.journal.add("docs", [self.collection, doc_id])

    async def create(self, who: str, title: str, **extra: Any) -> dict[str, Any]:
        doc_id = self.new_id()
        self.record_doc(doc_id, who)
        r = await self.api.call(
            "POST",
            self.api.doc_path(self.collection),
            token=self.users[who].access_token,
            json={"id": doc_id, "data": self.body(title, **extra)},
        )
        expect(r.status_code == 201, f"user {who} create → {describe(r)}")
        return dict(r.json())


async def check_health(s: Smoke) -> str:
    r = await s.api.call("GET", "/v1/health")
    body = r.json() if r.headers.get("content-type", "").startswith("application/json") else {}
    checks = body.get("checks", {}) if isinstance(body, dict) else {}
    bad = {k: v.get("status") for k, v in checks.items() if isinstance(v, dict) and v.get("status") != "ok"}
    expect(
        r.status_code == 200 and body.get("status") == "ok" and not bad,
        f"GET /v1/health → {r.status_code} status={body.get('status')!r}"
        + (f", not ok: {', '.join(f'{k}={v}' for k, v in bad.items())}" if bad else ""),
    )
    return ", ".join(f"{k} ok" for k in checks)


async def check_signup(s: Smoke) -> str:
    for label in ("A", "B"):
        user = User(
            label, f"smoke+{s.run_id}-{label.lower()}@smoke.telestack.test", secrets.token_urlsafe(18)
        )
        if s.journal:
            s.journal.add("emails", user.email)
        r = await s.api.call("POST", "/v1/auth/signup", json={"email": user.email, "password": user.password})
        expect(r.status_code == 201, f"sign-up of user {label} → {describe(r)}")
        body = r.json()
        user.id = body["user"]["id"]
        if s.journal:
            s.journal.add("users", user.id)
        s.users[label] = user
    expect(s.users["A"].id != s.users["B"].id, "two sign-ups returned the same user id")
    return "users A and B created"


async def check_signin(s: Smoke) -> str:
    for user in s.users.values():
        r = await s.api.call("POST", "/v1/auth/signin", json={"email": user.email, "password": user.password})
        expect(r.status_code == 200, f"sign-in of user {user.label} → {describe(r)}")
        user.access_token, user.refresh_token = r.json()["access_token"], r.json()["refresh_token"]
        me = await s.api.call("GET", "/v1/auth/me", token=user.access_token)
        expect(
            me.status_code == 200 and me.json()["user"]["id"] == user.id,
            f"/v1/auth/me for user {user.label} → {describe(me)}",
        )
    wrong = await s.api.call(
        "POST", "/v1/auth/signin", json={"email": s.users["A"].email, "password": "wrong-pw-1"}
    )
    expect(wrong.status_code == 401, f"sign-in with a wrong password → {describe(wrong)} (expected 401)")
    return "both signed in; wrong password refused (401)"


async def check_documents(s: Smoke) -> str:
    a = s.users["A"]
    doc = await s.create("A", "crud", status="open", priority=1)
    doc_id, path = doc["id"], s.api.doc_path(s.collection, doc["id"])
    expect(doc["owner_id"] == a.id and doc["version"] == 1, f"created document has owner/version {doc}")
    r = await s.api.call("GET", path, token=a.access_token)
    expect(
        r.status_code == 200 and r.json()["data"] == s.body("crud", status="open", priority=1),
        f"read back → {describe(r)}",
    )
    q = await s.api.call(
        "POST",
        f"/v1/collections/{s.collection}/query",
        token=a.access_token,
        json={"where": [["meta.smoke_run", "==", s.run_id], ["status", "==", "open"]], "count": True},
    )
    expect(q.status_code == 200, f"query → {describe(q)}")
    ids = [d["id"] for d in q.json()["documents"]]
    expect(
        doc_id in ids and q.json().get("count") == len(ids),
        f"query found {ids}, count {q.json().get('count')}",
    )
    p = await s.api.call(
        "PATCH",
        path,
        token=a.access_token,
        json={"data": {"status": "done", "priority": None}},
        headers={"If-Match": '"1"'},
    )
    expect(p.status_code == 200, f"patch → {describe(p)}")
    data = p.json()["data"]
    expect(
        p.json()["version"] == 2 and data["status"] == "done" and "priority" not in data,
        f"merge patch gave version {p.json()['version']} data {data}",
    )
    d = await s.api.call("DELETE", path, token=a.access_token)
    expect(d.status_code == 204, f"delete → {describe(d)}")
    gone = await s.api.call("GET", path, token=a.access_token)
    expect(gone.status_code == 404, f"read after delete → {describe(gone)} (expected 404)")
    s.docs = [x for x in s.docs if x[1] != doc_id]
    return "create, read, query (count), merge-patch, delete"


async def check_rls(s: Smoke) -> str:
    doc = await s.create("A", "private")
    path = s.api.doc_path(s.collection, doc["id"])
    b = s.users["B"]
    r = await s.api.call("GET", path, token=b.access_token)
    expect(r.status_code in (403, 404), f"user B read A's private document → {describe(r)}")
    r = await s.api.call("PATCH", path, token=b.access_token, json={"data": {"title": "hijacked"}})
    expect(r.status_code in (403, 404), f"user B patched A's private document → {describe(r)}")
    r = await s.api.call("DELETE", path, token=b.access_token)
    expect(r.status_code in (403, 404), f"user B deleted A's private document → {describe(r)}")
    q = await s.api.call(
        "POST",
        f"/v1/collections/{s.collection}/query",
        token=b.access_token,
        json={"where": [["meta.smoke_run", "==", s.run_id]]},
    )
    expect(
        q.status_code == 200 and not q.json()["documents"],
        f"user B's query returned A's documents: {[d['id'] for d in q.json().get('documents', [])]}",
    )
    anon = await s.api.call("GET", path)
    expect(anon.status_code == 401, f"anonymous read → {describe(anon)} (expected 401)")
    intact = await s.api.call("GET", path, token=s.users["A"].access_token)
    expect(
        intact.status_code == 200 and intact.json()["version"] == 1,
        f"A's document changed: {describe(intact)}",
    )
    return "B refused read/patch/delete/query; anonymous 401"


async def _realtime_token(s: Smoke, who: str, channels: list[str] | None = None) -> httpx.Response:
    return await s.api.call(
        "POST",
        "/v1/realtime/token",
        token=s.users[who].access_token,
        json={"channels": channels} if channels is not None else None,
    )


async def check_realtime(s: Smoke) -> str:
    from tests.smoke.realtime import Subscriber

    grants: dict[str, dict[str, Any]] = {}
    for who in ("A", "B"):
        r = await _realtime_token(s, who)
        expect(r.status_code == 200, f"realtime token for {who} → {describe(r)}")
        grants[who] = r.json()
    url = grants["A"].get("url") or s.target.centrifugo_ws_url
    expect(bool(url), "no WebSocket URL (token response 'url' or stack output centrifugo_ws_url)")
    a_channel = f"{s.collection}:*#{s.users['A'].id}"
    stolen = await _realtime_token(s, "B", [a_channel])
    expect(
        stolen.status_code == 403, f"B asked for A's channel {a_channel} → {describe(stolen)} (expected 403)"
    )

    def channel_of(who: str) -> dict[str, Any]:
        for g in grants[who]["channels"]:
            if g["collection"] == s.collection:
                return dict(g)
        raise CheckFailed(
            f"{who}'s realtime token grants no {s.collection} channel: {grants[who]['channels']}"
        )

    subs = {who: Subscriber(url, grants[who]["token"]) for who in ("A", "B")}
    try:
        for who, sub in subs.items():
            try:
                await sub.connect()
            except Exception as exc:
                raise CheckFailed(f"{who} could not connect to {url}: {type(exc).__name__}: {exc}") from None
        inboxes = {}
        for who, sub in subs.items():
            g = channel_of(who)
            inboxes[who] = await sub.subscribe(g["channel"], g.get("token"))
            expect(
                inboxes[who].refused is None and inboxes[who].subscribed.is_set(),
                f"{who} could not subscribe to its own channel {g['channel']} (code {inboxes[who].refused})",
            )
        doc = await s.create("A", "realtime")
        got = await inboxes["A"].wait_until(
            lambda: inboxes["A"].has(s.collection, doc["id"], 1), EVENT_TIMEOUT_S
        )
        expect(
            got,
            f"A's subscriber got no event for {doc['id']} within {EVENT_TIMEOUT_S:.0f}s: "
            f"{inboxes['A'].events[-3:]}",
        )
        leaked = await inboxes["B"].wait_until(
            lambda: inboxes["B"].has(s.collection, doc["id"]), NEGATIVE_WINDOW_S
        )
        expect(not leaked, f"B's subscriber received A's private event for {doc['id']}")
    finally:
        for sub in subs.values():
            await sub.close()
    return "A received its event; B received nothing; B refused A's channel (403)"


async def check_storage(s: Smoke) -> str:
    a, b = s.users["A"], s.users["B"]
    key = f"users/{a.id}/smoke/{s.run_id}/hello.txt"
    payload = f"smoke {s.run_id} ✓\n".encode() + secrets.token_bytes(512)
    if s.journal:
        s.journal.add("objects", key)
    s.objects.append(key)
    r = await s.api.call(
        "POST",
        "/v1/storage/upload-url",
        token=a.access_token,
        json={"key": key, "content_type": "application/octet-stream", "size": len(payload)},
    )
    expect(r.status_code == 200, f"upload-url → {describe(r)}")
    signed = r.json()
    up = await s.api.http.put(signed["url"], content=payload, headers=signed["headers"])
    expect(up.status_code in (200, 201, 204), f"presigned upload → {up.status_code} {up.text[:160]!r}")
    longer = await s.api.http.put(signed["url"], content=payload + b"!", headers=signed["headers"])
    expect(longer.status_code == 403, f"upload of another size → {longer.status_code} (expected 403)")
    r = await s.api.call("POST", "/v1/storage/download-url", token=a.access_token, json={"key": key})
    expect(r.status_code == 200, f"download-url → {describe(r)}")
    down = await s.api.http.get(r.json()["url"])
    expect(
        down.status_code == 200 and down.content == payload,
        f"presigned download → {down.status_code}, {len(down.content)} bytes "
        f"(expected {len(payload)} identical)",
    )
    other = await s.api.call("POST", "/v1/storage/download-url", token=b.access_token, json={"key": key})
    expect(other.status_code == 403, f"B asked to download A's object → {describe(other)} (expected 403)")
    return f"{len(payload)} bytes round-tripped; another size refused by the bucket; B refused (403)"


async def check_schema(s: Smoke) -> str:
    a = s.users["A"]
    doc_id = s.new_id()
    s.record_doc(doc_id, "A")
    r = await s.api.call(
        "POST",
        s.api.doc_path(s.collection),
        token=a.access_token,
        json={"id": doc_id, "data": {"title": 12345, "meta": {"smoke_run": s.run_id}}},
    )
    expect(r.status_code == 422, f"schema-invalid create → {describe(r)} (expected 422)")
    g = await s.api.call("GET", s.api.doc_path(s.collection, doc_id), token=a.access_token)
    expect(g.status_code == 404, f"the refused document exists anyway: {describe(g)}")
    return "422 " + str(r.json()["error"]["code"])


async def check_if_match(s: Smoke) -> str:
    a = s.users["A"]
    doc = await s.create("A", "concurrency")
    path = s.api.doc_path(s.collection, doc["id"])
    ok = await s.api.call(
        "PATCH", path, token=a.access_token, json={"data": {"status": "done"}}, headers={"If-Match": '"1"'}
    )
    expect(
        ok.status_code == 200 and ok.json()["version"] == 2,
        f"patch with the current If-Match → {describe(ok)}",
    )
    stale = await s.api.call(
        "PATCH", path, token=a.access_token, json={"data": {"status": "open"}}, headers={"If-Match": '"1"'}
    )
    expect(stale.status_code == 412, f"patch with a stale If-Match → {describe(stale)} (expected 412)")
    now = await s.api.call("GET", path, token=a.access_token)
    expect(
        now.json()["version"] == 2 and now.json()["data"]["status"] == "done",
        f"the stale write changed the document: {now.json()}",
    )
    return "current version accepted, stale version refused (412)"


async def _create_in(s: Smoke, collection: str, who: str, data: dict[str, Any]) -> str:
    """A document of an example rules collection, recorded for cleanup before it is made."""
    doc_id = s.new_id()
    s.docs.append((collection, doc_id, who))
    if s.journal:
        s.journal.add("docs", [collection, doc_id])
    r = await s.api.call("POST", s.api.doc_path(collection), token=s.users[who].access_token,
                         json={"id": doc_id, "data": {**data, "meta": {"smoke_run": s.run_id}}})
    expect(r.status_code == 201, f"user {who} create in {collection} → {describe(r)}")
    return doc_id


async def _call(s: Smoke, who: str, method: str, collection: str, doc_id: str,
                data: dict[str, Any] | None = None) -> httpx.Response:
    return await s.api.call(method, s.api.doc_path(collection, doc_id), token=s.users[who].access_token,
                            json=None if data is None else {"data": data})


async def _delete_own(s: Smoke, collection: str, doc_id: str, who: str) -> None:
    d = await _call(s, who, "DELETE", collection, doc_id)
    expect(d.status_code == 204, f"{who} deleting {collection}/{doc_id} → {describe(d)}")
    s.docs = [x for x in s.docs if x[:2] != (collection, doc_id)]


async def check_sharing(s: Smoke) -> str:
    """config/collections/lists.yaml: a list shared through its members array."""
    b = s.users["B"]
    lid = await _create_in(s, "lists", "A", {"title": f"list ({s.run_id})", "members": [b.id]})
    r = await _call(s, "B", "GET", "lists", lid)
    expect(r.status_code == 200, f"member B reading the shared list → {describe(r)}")
    r = await _call(s, "B", "PATCH", "lists", lid, {"items": [{"text": "milk"}]})
    expect(r.status_code == 200, f"member B editing the list → {describe(r)}")
    r = await _call(s, "B", "PATCH", "lists", lid, {"members": [b.id, "someone-else"]})
    expect(r.status_code == 403, f"member B changing the members → {describe(r)} (expected 403)")
    r = await _call(s, "B", "DELETE", "lists", lid)
    expect(r.status_code == 403, f"member B deleting the list → {describe(r)} (expected 403)")
    r = await _call(s, "A", "PATCH", "lists", lid, {"members": []})
    expect(r.status_code == 200, f"owner A removing B → {describe(r)}")
    r = await _call(s, "B", "GET", "lists", lid)
    expect(r.status_code == 404, f"B reading after removal → {describe(r)} (expected 404)")
    q = await s.api.call("POST", "/v1/collections/lists/query", token=b.access_token,
                         json={"where": [["meta.smoke_run", "==", s.run_id]], "count": True})
    expect(q.status_code == 200 and q.json()["count"] == 0, f"B's query after removal → {describe(q)}")
    await _delete_own(s, "lists", lid, "A")
    return "member reads and edits, may not change members or delete; removed member gets 404"


async def check_team_tasks(s: Smoke) -> str:
    """config/collections/teams.yaml, tasks.yaml: tasks read by the team's members, written by editors."""
    a, b = s.users["A"], s.users["B"]
    tid = await _create_in(s, "teams", "A", {"name": f"team ({s.run_id})", "members": [a.id, b.id],
                                             "editors": [a.id]})
    kid = await _create_in(s, "tasks", "A", {"title": "task", "team_id": tid})
    r = await _call(s, "B", "GET", "tasks", kid)
    expect(r.status_code == 200, f"team member B reading a task → {describe(r)}")
    r = await s.api.call("POST", s.api.doc_path("tasks"), token=b.access_token,
                         json={"data": {"title": "x", "team_id": tid, "meta": {"smoke_run": s.run_id}}})
    expect(r.status_code == 403, f"non-editor B creating a task → {describe(r)} (expected 403)")
    r = await _call(s, "B", "PATCH", "tasks", kid, {"done": True})
    expect(r.status_code == 403, f"non-editor B editing a task → {describe(r)} (expected 403)")
    r = await _call(s, "A", "PATCH", "teams", tid, {"members": [a.id]})
    expect(r.status_code == 200, f"owner A removing B from the team → {describe(r)}")
    r = await _call(s, "B", "GET", "tasks", kid)
    expect(r.status_code == 404, f"B reading a task after leaving the team → {describe(r)} (expected 404)")
    await _delete_own(s, "tasks", kid, "A")
    await _delete_own(s, "teams", tid, "A")
    return "member reads; non-editor refused create/edit (403); removed member gets 404"


CHECKS: list[Check[Smoke]] = [
    Check("health", check_health, description="GET /v1/health: every dependency ok"),
    Check("auth.signup", check_signup, description="two fresh users sign up"),
    Check("auth.signin", check_signin, ("auth.signup",), "both sign in; /me; wrong password refused"),
    Check("documents.crud", check_documents, ("auth.signin",), "create/read/query/patch/delete"),
    Check("documents.rls", check_rls, ("auth.signin",), "user B refused on A's private document"),
    Check(
        "realtime.events", check_realtime, ("auth.signin",), "A's subscriber gets A's change, B's does not"
    ),
    Check("storage.roundtrip", check_storage, ("auth.signin",), "presigned PUT + GET; wrong size, B refused"),
    Check("documents.schema", check_schema, ("auth.signin",), "schema-invalid write refused (422)"),
    Check("documents.if_match", check_if_match, ("auth.signin",), "stale If-Match refused (412)"),
    Check("rules.sharing", check_sharing, ("auth.signin",), "lists shared by a members array"),
    Check("rules.team_tasks", check_team_tasks, ("auth.signin",), "tasks readable by the team's members"),
    Check("auth.verification", account.check_verification, ("auth.signin",),
          "verification link mailed and used once (or 503 where the stack sends no mail)"),
    Check("auth.reset", account.check_reset, ("auth.signin",),
          "reset link mailed, same answer for unknown addresses (or 503 without mail)"),
    Check("auth.deletion", account.check_deletion, ("auth.signin",),
          "a user deletes their account: sign-in, refresh and their documents gone"),
]

