"""Chaos run: a steady mixed load on a running local stack while each component is frozen, then killed.

Against the stack ``make up`` started (its endpoints and pid files from ``pulumi stack output``, as
``scripts.ops`` reads them), several users write (creates, merge patches, two-document batches, a
small upload), query, and listen on Centrifugo (one subscriber per user on its private channel, and
the admin firehose). Meanwhile, for each component the stack runs (read from its pid files, so a
service added later is included), in turn:

1. ``SIGSTOP`` for a while, then ``SIGCONT``: recovery = SIGCONT to healthy;
2. ``kill -9`` of its process group, a while down, then the operator's restart (``scripts/up``, what
   ``make up`` runs before its smoke suite; ``--restart`` to change it): recovery = the new process
   running to healthy.

Healthy = ``GET /v1/health`` answers 200 with every check ``ok`` or ``disabled``, and the component's
process is alive. Afterwards every acknowledged write is read back, every batch is checked whole or
absent, and every subscriber's events are compared with the acknowledged writes it may read,
de-duplicated by (id, version). A subscriber told by Centrifugo that it cannot recover what it missed
(a restarted Centrifugo keeps no history) re-reads its documents, as the SDK's listeners do; an event
whose document it then read at that version or later is counted ``covered by re-read``, not lost.

Targets (exit 4 when one is missed): 0 acknowledged writes lost, 0 partial batches, 0 events lost,
every recovery within 5 s. The JSON report goes to ``--report``; the table to stdout, progress to stderr.
The stack is left running and healthy (a failed restart is exit 3).

    .venv/bin/python scripts/chaos.py --stack local            # full run (about ten minutes)
    .venv/bin/python scripts/chaos.py --stack local --short    # each fault once, short holds (CI)

Exit codes: 0 every target met; 1 the run failed; 2 usage; 3 the stack was not healthy (before the
run, or after a restart); 4 a target was missed; 130 interrupted.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import signal
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any
from uuid import uuid4

ROOT = Path(__file__).resolve().parents[1]
if sys.path[0] == str(ROOT / "scripts"):  # run as a script: import from the repo, not scripts/
    sys.path[0] = str(ROOT)  # (scripts/secrets.py shadows the stdlib's, so no `secrets` here)

import httpx  # noqa: E402
from centrifuge import (  # noqa: E402
    Client,
    PublicationContext,
    SubscribedContext,
    SubscriptionEventHandler,
)

from infra.local_process import running_pid  # noqa: E402
from scripts.ops import stack as stacks  # noqa: E402
from scripts.ops.console import ExitStatus, OpsError  # noqa: E402

COLLECTION = "notes"
RECOVERY_TARGET_S = 5.0
HTTP_TIMEOUT_S = 30.0
#: how long the run waits at the end for subscribers to catch up (outbox retries, reconnects)
SETTLE_S = 30.0


@dataclass(frozen=True)
class Plan:
    """How long each phase lasts; ``--short`` is the CI lane."""

    users: int
    rounds: int
    hold_s: float  # a fault held this long (frozen, or dead before the restart)
    calm_s: float  # load without a fault between two faults
    pace_s: float  # pause between one user's operations


FULL = Plan(users=4, rounds=2, hold_s=8.0, calm_s=6.0, pace_s=0.05)
SHORT = Plan(users=3, rounds=1, hold_s=3.0, calm_s=2.0, pace_s=0.1)


# --- the report ------------------------------------------------------------------------------------


@dataclass
class FaultResult:
    component: str
    fault: str  # "SIGSTOP" or "kill -9"
    held_s: float = 0.0
    #: SIGCONT, or the restarted process running, to healthy; None = never healthy
    recovery_s: float | None = None
    requests: int = 0
    answered_5xx: int = 0
    #: requests with no answer at all (connection refused or reset, the client's timeout)
    no_answer: int = 0
    statuses_5xx: dict[str, int] = field(default_factory=dict)
    restart_command_s: float | None = None


@dataclass
class SubscriberResult:
    name: str
    expected: int = 0
    delivered: int = 0
    covered_by_reread: int = 0
    lost: int = 0
    duplicates: int = 0
    unrecoverable_gaps: int = 0
    lost_examples: list[str] = field(default_factory=list)


@dataclass
class Report:
    stack: str
    mode: str
    components: list[str]
    duration_s: float = 0.0
    writes_acknowledged: int = 0
    writes_present: int = 0
    writes_lost: int = 0
    lost_examples: list[str] = field(default_factory=list)
    batches_attempted: int = 0
    batches_partial: int = 0
    uploads_acknowledged: int = 0
    uploads_present: int = 0
    requests: int = 0
    faults: list[FaultResult] = field(default_factory=list)
    subscribers: list[SubscriberResult] = field(default_factory=list)

    def missed_targets(self) -> list[str]:
        missed = []
        if self.writes_lost:
            missed.append(f"{self.writes_lost} acknowledged writes lost")
        if self.uploads_present < self.uploads_acknowledged:
            missed.append(f"{self.uploads_acknowledged - self.uploads_present} acknowledged uploads lost")
        if self.batches_partial:
            missed.append(f"{self.batches_partial} partial batches")
        for sub in self.subscribers:
            if sub.lost:
                missed.append(f"subscriber {sub.name}: {sub.lost} events lost")
        for f in self.faults:
            if f.recovery_s is None or f.recovery_s > RECOVERY_TARGET_S:
                got = "never" if f.recovery_s is None else f"{f.recovery_s:.1f} s"
                missed.append(f"{f.component} {f.fault}: recovered {got} (target {RECOVERY_TARGET_S:g} s)")
        return missed

    def table(self) -> str:
        lines = [
            f"chaos run on stack {self.stack} ({self.mode}, {self.duration_s:.0f} s, "
            f"{self.requests} requests)",
            f"writes acknowledged {self.writes_acknowledged}, present afterwards {self.writes_present}, "
            f"lost {self.writes_lost}; batches {self.batches_attempted}, partial {self.batches_partial}; "
            f"uploads acknowledged {self.uploads_acknowledged}, present {self.uploads_present}",
            "",
            "| component | fault | held s | recovery s | requests | 5xx | no answer | 5xx codes |",
            "| --- | --- | --- | --- | --- | --- | --- | --- |",
        ]
        for f in self.faults:
            rec = "never" if f.recovery_s is None else f"{f.recovery_s:.2f}"
            codes = ", ".join(f"{k} x{v}" for k, v in sorted(f.statuses_5xx.items())) or "-"
            lines.append(f"| {f.component} | {f.fault} | {f.held_s:.1f} | {rec} | {f.requests} | "
                         f"{f.answered_5xx} | {f.no_answer} | {codes} |")
        lines += ["", "| subscriber | expected | delivered | covered by re-read | lost | duplicates | gaps |",
                  "| --- | --- | --- | --- | --- | --- | --- |"]
        for s in self.subscribers:
            lines.append(f"| {s.name} | {s.expected} | {s.delivered} | {s.covered_by_reread} | {s.lost} | "
                         f"{s.duplicates} | {s.unrecoverable_gaps} |")
        missed = self.missed_targets()
        lines += ["", "targets: " + ("all met" if not missed else "MISSED: " + "; ".join(missed))]
        return "\n".join(lines)


# --- what the load did -----------------------------------------------------------------------------


@dataclass
class Outcome:
    """One request: when it ended, and its status (None = no answer)."""

    at: float
    status: int | None
    code: str = ""


@dataclass
class Ledger:
    """Everything the load was told: acknowledged versions, batches tried, uploads, every outcome."""

    #: doc id -> (owner, newest acknowledged version, its data)
    acked: dict[str, tuple[str, int, dict[str, Any]]] = field(default_factory=dict)
    #: every acknowledged (owner, doc id, version): the events subscribers must see
    events: set[tuple[str, str, int]] = field(default_factory=set)
    #: ids of each batch's two documents, acknowledged or not
    batches: list[tuple[str, str]] = field(default_factory=list)
    #: object key -> content of acknowledged uploads
    uploads: dict[str, bytes] = field(default_factory=dict)
    outcomes: list[Outcome] = field(default_factory=list)

    def ack(self, owner: str, doc: dict[str, Any]) -> None:
        doc_id, version = doc["id"], int(doc["version"])
        known = self.acked.get(doc_id)
        if known is None or known[1] < version:
            self.acked[doc_id] = (owner, version, doc["data"])
        self.events.add((owner, doc_id, version))


@dataclass
class User:
    name: str
    id: str
    token: str
    docs: list[str] = field(default_factory=list)


class Api:
    """The gateway as the load sees it: every answer (or its absence) lands in the ledger."""

    def __init__(self, http: httpx.AsyncClient, ledger: Ledger) -> None:
        self.http = http
        self.ledger = ledger

    async def call(self, method: str, path: str, token: str, body: Any = None) -> httpx.Response | None:
        try:
            r = await self.http.request(method, path, json=body, headers={"authorization": f"Bearer {token}"})
        except httpx.HTTPError:
            self.ledger.outcomes.append(Outcome(time.monotonic(), None))
            return None
        code = ""
        if r.status_code >= 500:
            with contextlib.suppress(ValueError, KeyError, TypeError, AttributeError):
                code = r.json()["error"]["code"]
        self.ledger.outcomes.append(Outcome(time.monotonic(), r.status_code, code))
        return r


# --- the load ----------------------------------------------------------------------------------------


async def sign_up(http: httpx.AsyncClient, run_id: str, i: int) -> User:
    email = f"{run_id}-u{i}@chaos.telestack.test"
    r = await http.post("/v1/auth/signup", json={"email": email, "password": uuid4().hex})
    if r.status_code != 201:
        raise OpsError(f"signup answered {r.status_code}: {r.text[:200]}", ExitStatus.DEPENDENCY_UNHEALTHY)
    body = r.json()
    return User(name=f"u{i}", id=body["user"]["id"], token=body["access_token"])


async def create_note(api: Api, user: User, n: int) -> None:
    doc_id = f"c-{user.name}-{n}-{uuid4().hex[:6]}"
    r = await api.call("POST", f"/v1/collections/{COLLECTION}/documents", user.token,
                       {"id": doc_id, "data": {"title": f"note {n}", "priority": n % 6}})
    if r is not None and r.status_code == 201:
        api.ledger.ack(user.id, r.json())
        user.docs.append(doc_id)


async def patch_note(api: Api, user: User, n: int) -> None:
    if not user.docs:
        return
    doc_id = user.docs[n % len(user.docs)]
    r = await api.call("PATCH", f"/v1/collections/{COLLECTION}/documents/{doc_id}", user.token,
                       {"body": f"edit {n}", "status": "done" if n % 2 else "open"})
    if r is not None and r.status_code == 200:
        api.ledger.ack(user.id, r.json())


async def batch_pair(api: Api, user: User, n: int) -> None:
    """Two documents in one batch: afterwards both must exist or neither."""
    pair = (f"b-{user.name}-{n}-a-{uuid4().hex[:6]}", f"b-{user.name}-{n}-b-{uuid4().hex[:6]}")
    api.ledger.batches.append(pair)
    writes = [{"op": "create", "collection": COLLECTION, "id": i, "data": {"title": f"pair {n}"}}
              for i in pair]
    r = await api.call("POST", "/v1/batch", user.token, {"writes": writes})
    if r is not None and r.status_code == 200:
        for result in r.json()["results"]:
            api.ledger.ack(user.id, result["document"])


async def query_notes(api: Api, user: User, n: int) -> None:
    await api.call("POST", f"/v1/collections/{COLLECTION}/query", user.token,
                   {"where": [["priority", ">=", n % 6]], "limit": 20})


async def upload(api: Api, user: User, n: int) -> None:
    """A presigned PUT, acknowledged when the object store answered 200."""
    key = f"users/{user.id}/chaos-{n}-{uuid4().hex[:6]}.txt"
    content = f"chaos {n}".encode()
    r = await api.call("POST", "/v1/storage/upload-url", user.token,
                       {"key": key, "size": len(content), "content_type": "text/plain"})
    if r is None or r.status_code != 200:
        return
    signed = r.json()
    try:
        put = await api.http.put(signed["url"], content=content, headers=signed.get("headers") or {})
    except httpx.HTTPError:
        return
    if put.status_code == 200:
        api.ledger.uploads[key] = content


#: one user's cycle of operations: mostly writes, some reads, now and then an upload
CYCLE = (create_note, patch_note, query_notes, batch_pair, patch_note, create_note, query_notes, upload)


async def user_load(api: Api, user: User, pace: float, stop: asyncio.Event) -> None:
    n = 0
    while not stop.is_set():
        await CYCLE[n % len(CYCLE)](api, user, n)
        n += 1
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), pace)


# --- subscribers -------------------------------------------------------------------------------------


@dataclass
class Watcher(SubscriptionEventHandler):
    """One subscription: what arrived, and when Centrifugo said it could not recover what was missed."""

    name: str
    owner: str | None  # None = the admin firehose (every user's events)
    received: list[tuple[str, int]] = field(default_factory=list)
    #: newest version of each document read back after an unrecoverable gap
    reread: dict[str, int] = field(default_factory=dict)
    gaps: int = 0
    subscribed: asyncio.Event = field(default_factory=asyncio.Event)
    pending_rereads: set[asyncio.Task[None]] = field(default_factory=set)
    reread_fn: Any = None

    async def on_publication(self, ctx: PublicationContext) -> None:
        data = ctx.pub.data
        if isinstance(data, dict) and data.get("collection") == COLLECTION:
            self.received.append((str(data["id"]), int(data["version"])))

    async def on_subscribed(self, ctx: SubscribedContext) -> None:
        self.subscribed.set()
        if ctx.was_recovering and not ctx.recovered:
            self.gaps += 1
            task = asyncio.create_task(self.reread_fn(self))
            self.pending_rereads.add(task)
            task.add_done_callback(self.pending_rereads.discard)


async def read_all(http: httpx.AsyncClient, token: str, owners: list[str]) -> dict[str, int]:
    """id -> version of every note of these owners (paged), as a re-reading listener does."""
    versions: dict[str, int] = {}
    cursor = None
    while True:
        body: dict[str, Any] = {"where": [["$owner_id", "in", owners]], "limit": 200}
        if cursor:
            body["cursor"] = cursor
        for attempt in range(60):  # the gateway may itself be the component that is down
            try:
                r = await http.post(f"/v1/collections/{COLLECTION}/query", json=body,
                                    headers={"authorization": f"Bearer {token}"})
                if r.status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            await asyncio.sleep(min(1.0, 0.1 * (attempt + 1)))
        else:
            raise OpsError("the gateway never answered a query while re-reading")
        page = r.json()
        versions.update({d["id"]: int(d["version"]) for d in page["documents"]})
        cursor = page.get("next_cursor")
        if not cursor:
            return versions


async def realtime_token(http: httpx.AsyncClient, token: str, channel: str) -> tuple[str, str, str]:
    """(ws url, connection token, subscription token or "") from ``POST /v1/realtime/token``."""
    r = await http.post("/v1/realtime/token", json={"channels": [channel]},
                        headers={"authorization": f"Bearer {token}"})
    if r.status_code != 200:
        raise OpsError(f"realtime token answered {r.status_code}", ExitStatus.DEPENDENCY_UNHEALTHY)
    body = r.json()
    return body["url"], body["token"], body["channels"][0]["token"] or ""


async def subscribe(http: httpx.AsyncClient, watcher: Watcher, token: str, channel: str) -> Client:
    url, conn_token, sub_token = await realtime_token(http, token, channel)
    client = Client(url, token=conn_token, timeout=5.0, proxy=None, max_reconnect_delay=1.0)
    sub = client.new_subscription(channel, watcher, token=sub_token)
    await client.connect()
    await sub.subscribe()
    await asyncio.wait_for(watcher.subscribed.wait(), 15)
    return client


def score(watcher: Watcher, expected: set[tuple[str, int]]) -> SubscriberResult:
    seen = set(watcher.received)
    missing = [e for e in sorted(expected - seen)]
    lost = [e for e in missing if watcher.reread.get(e[0], 0) < e[1]]
    return SubscriberResult(
        name=watcher.name, expected=len(expected), delivered=len(expected & seen),
        covered_by_reread=len(missing) - len(lost), lost=len(lost),
        duplicates=len(watcher.received) - len(seen), unrecoverable_gaps=watcher.gaps,
        lost_examples=[f"{i}@v{v}" for i, v in lost[:10]],
    )


# --- the stack and its faults ------------------------------------------------------------------------


def signal_component(pid: int, sig: signal.Signals) -> None:
    """The whole process group when the component leads one (how local_process starts services)."""
    if os.getpgid(pid) == pid:
        os.killpg(pid, sig)
    else:
        os.kill(pid, sig)


async def stack_healthy(http: httpx.AsyncClient) -> bool:
    try:
        r = await http.get("/v1/health", timeout=5)
    except httpx.HTTPError:
        return False
    if r.status_code != 200:
        return False
    return all(c.get("status") in ("ok", "disabled") for c in r.json().get("checks", {}).values())


async def wait_healthy(http: httpx.AsyncClient, pid_file: str, since: float, limit: float) -> float | None:
    """Seconds from ``since`` until the component runs and the stack reports healthy; None past ``limit``."""
    while time.monotonic() - since < limit:
        if running_pid(pid_file) is not None and await stack_healthy(http):
            return time.monotonic() - since
        await asyncio.sleep(0.1)
    return None


async def pause_fault(http: httpx.AsyncClient, component: str, pid_file: str, plan: Plan) -> FaultResult:
    result = FaultResult(component, "SIGSTOP")
    pid = running_pid(pid_file)
    if pid is None:
        raise OpsError(f"{component} is not running", ExitStatus.DEPENDENCY_UNHEALTHY)
    signal_component(pid, signal.SIGSTOP)
    started = time.monotonic()
    try:
        await asyncio.sleep(plan.hold_s)
    finally:
        signal_component(pid, signal.SIGCONT)
    resumed = time.monotonic()
    result.held_s = resumed - started
    result.recovery_s = await wait_healthy(http, pid_file, resumed, 60)
    return result


async def kill_fault(http: httpx.AsyncClient, component: str, pid_file: str, plan: Plan,
                     restart: list[str], log: Path) -> FaultResult:
    result = FaultResult(component, "kill -9")
    pid = running_pid(pid_file)
    if pid is None:
        raise OpsError(f"{component} is not running", ExitStatus.DEPENDENCY_UNHEALTHY)
    signal_component(pid, signal.SIGKILL)
    killed = time.monotonic()
    await asyncio.sleep(plan.hold_s)
    with log.open("ab") as out:
        proc = await asyncio.create_subprocess_exec(*restart, cwd=ROOT, stdout=out, stderr=out)
    restarted = await wait_restarted(pid_file, pid, proc)
    result.held_s = (restarted or time.monotonic()) - killed
    if restarted is not None:
        result.recovery_s = await wait_healthy(http, pid_file, restarted, 60)
    code = await proc.wait()
    result.restart_command_s = time.monotonic() - killed - plan.hold_s
    if code != 0:
        raise OpsError(f"restart ({' '.join(restart)}) exited {code}; see {log}",
                       ExitStatus.DEPENDENCY_UNHEALTHY)
    return result


async def wait_restarted(pid_file: str, old_pid: int, proc: asyncio.subprocess.Process) -> float | None:
    """When the restart brought up a new process for the component (polled); None if it never did."""
    while proc.returncode is None:
        pid = running_pid(pid_file)
        if pid is not None and pid != old_pid:
            return time.monotonic()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(proc.wait(), 0.05)
    pid = running_pid(pid_file)
    return time.monotonic() if pid is not None and pid != old_pid else None


def tally(result: FaultResult, outcomes: list[Outcome], start: float, end: float) -> None:
    """What the load was answered between the fault's start and the end of its recovery."""
    for o in outcomes:
        if start <= o.at <= end:
            result.requests += 1
            if o.status is None:
                result.no_answer += 1
            elif o.status >= 500:
                result.answered_5xx += 1
                key = f"{o.status} {o.code}".strip()
                result.statuses_5xx[key] = result.statuses_5xx.get(key, 0) + 1


# --- verification ------------------------------------------------------------------------------------


async def verify_writes(http: httpx.AsyncClient, admin: str, ledger: Ledger, report: Report) -> None:
    owners = sorted({owner for owner, _, _ in ledger.acked.values()})
    present: dict[str, int] = await read_all(http, admin, owners) if owners else {}
    report.writes_acknowledged = len(ledger.events)
    lost = [(i, v) for _, i, v in ledger.events if present.get(i, 0) < v]
    report.writes_lost = len(lost)
    report.writes_present = report.writes_acknowledged - len(lost)
    report.lost_examples = [f"{i}@v{v}" for i, v in sorted(lost)[:10]]
    report.batches_attempted = len(ledger.batches)
    report.batches_partial = sum(1 for a, b in ledger.batches if (a in present) != (b in present))
    await verify_data(http, admin, ledger, present, report)


async def verify_data(http: httpx.AsyncClient, admin: str, ledger: Ledger, present: dict[str, int],
                      report: Report) -> None:
    """A document still at its acknowledged version holds the acknowledged data (a sample of 200)."""
    same = [i for i, (_, v, _) in ledger.acked.items() if present.get(i) == v][:200]
    for doc_id in same:
        r = await http.get(f"/v1/collections/{COLLECTION}/documents/{doc_id}",
                           headers={"authorization": f"Bearer {admin}"})
        if r.status_code != 200 or r.json()["data"] != ledger.acked[doc_id][2]:
            report.writes_lost += 1
            report.writes_present -= 1
            report.lost_examples.append(f"{doc_id}: data differs from the acknowledged write")


async def verify_uploads(http: httpx.AsyncClient, admin: str, ledger: Ledger, report: Report) -> None:
    report.uploads_acknowledged = len(ledger.uploads)
    for key, content in ledger.uploads.items():
        r = await http.post("/v1/storage/download-url", json={"key": key},
                            headers={"authorization": f"Bearer {admin}"})
        if r.status_code != 200:
            continue
        got = await http.get(r.json()["url"])
        report.uploads_present += got.status_code == 200 and got.content == content


async def settle(watchers: list[Watcher], expected: dict[str, set[tuple[str, int]]]) -> None:
    """Wait until every subscriber has (or re-read past) every event it should get, or SETTLE_S passed."""
    deadline = time.monotonic() + SETTLE_S
    while time.monotonic() < deadline:
        if all(score(w, expected[w.name]).lost == 0 and not w.pending_rereads for w in watchers):
            return
        await asyncio.sleep(0.25)


# --- the run -----------------------------------------------------------------------------------------


async def run(target: stacks.Target, plan: Plan, mode: str, restart: list[str], log: Path) -> Report:
    components = [name for name, f in target.pid_files.items() if running_pid(f) is not None]
    report = Report(stack=target.stack, mode=mode, components=components)
    ledger = Ledger()
    started = time.monotonic()
    limits = httpx.Limits(max_connections=64)
    async with httpx.AsyncClient(base_url=target.gateway_url, timeout=HTTP_TIMEOUT_S, limits=limits,
                                 trust_env=False) as http:
        if not await stack_healthy(http):
            raise OpsError("the stack is not healthy before the run (GET /v1/health)",
                           ExitStatus.DEPENDENCY_UNHEALTHY)
        run_id = f"chaos-{uuid4().hex[:8]}"
        users = [await sign_up(http, run_id, i) for i in range(plan.users)]
        watchers, clients = await start_subscribers(http, target.admin_key, users)
        stop = asyncio.Event()
        api = Api(http, ledger)
        load = [asyncio.create_task(user_load(api, u, plan.pace_s, stop)) for u in users]
        try:
            for _ in range(plan.rounds):
                for name in components:
                    for fault in ("SIGSTOP", "kill -9"):
                        await asyncio.sleep(plan.calm_s)
                        progress(f"{fault} {name}")
                        at = time.monotonic()
                        pid_file = target.pid_files[name]
                        if fault == "SIGSTOP":
                            result = await pause_fault(http, name, pid_file, plan)
                        else:
                            result = await kill_fault(http, name, pid_file, plan, restart, log)
                        tally(result, ledger.outcomes, at, time.monotonic())
                        report.faults.append(result)
                        rec = "never" if result.recovery_s is None else f"{result.recovery_s:.2f} s"
                        progress(f"  recovered in {rec}; {result.answered_5xx} 5xx, "
                                 f"{result.no_answer} without answer")
            await asyncio.sleep(plan.calm_s)
        finally:
            stop.set()
            await asyncio.gather(*load, return_exceptions=True)
        progress("load stopped; waiting for subscribers, then reading everything back")
        expected = expected_events(ledger, users, watchers)
        await settle(watchers, expected)
        report.subscribers = [score(w, expected[w.name]) for w in watchers]
        for client in clients:
            await client.disconnect()
        await verify_writes(http, target.admin_key, ledger, report)
        await verify_uploads(http, target.admin_key, ledger, report)
        report.requests = len(ledger.outcomes)
    report.duration_s = time.monotonic() - started
    return report


async def start_subscribers(http: httpx.AsyncClient, admin: str, users: list[User]
                            ) -> tuple[list[Watcher], list[Client]]:
    """One subscriber per user on its private channel, and the admin firehose of the collection."""
    owners = [u.id for u in users]
    tokens = {u.id: u.token for u in users}

    async def reread(w: Watcher) -> None:
        token = tokens[w.owner] if w.owner else admin
        w.reread.update(await read_all(http, token, [w.owner] if w.owner else owners))

    watchers = [Watcher(name=u.name, owner=u.id, reread_fn=reread) for u in users]
    channels = [f"{COLLECTION}:*#{u.id}" for u in users]
    watchers.append(Watcher(name="admin firehose", owner=None, reread_fn=reread))
    channels.append(f"{COLLECTION}:*")
    clients = []
    for w, channel in zip(watchers, channels, strict=True):
        clients.append(await subscribe(http, w, tokens[w.owner] if w.owner else admin, channel))
    return watchers, clients


def expected_events(ledger: Ledger, users: list[User], watchers: list[Watcher]
                    ) -> dict[str, set[tuple[str, int]]]:
    """Per subscriber, the acknowledged (id, version) pairs its channel carries."""
    by_owner: dict[str, set[tuple[str, int]]] = {u.id: set() for u in users}
    for owner, doc_id, version in ledger.events:
        by_owner.setdefault(owner, set()).add((doc_id, version))
    everything = set().union(*by_owner.values()) if by_owner else set()
    return {w.name: by_owner.get(w.owner, set()) if w.owner else everything for w in watchers}


def progress(message: str) -> None:
    print(f"[chaos] {message}", file=sys.stderr, flush=True)


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="scripts/chaos.py", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--stack", default=os.environ.get("TELESTACK_STACK", "local"), help="Pulumi stack (local)")
    p.add_argument("--short", action="store_true", help="each fault once with short holds (the CI lane)")
    p.add_argument("--report", type=Path, default=None,
                   help="where the JSON report goes (default <state>/chaos/report-<time>.json)")
    p.add_argument("--restart", default="scripts/up",
                   help="the operator's restart command, run from the repository (default scripts/up)")
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        target = stacks.resolve(args.stack)
        target.require("gateway_url", "admin_key")
        if not target.pid_files:
            raise OpsError(f"stack {args.stack} has no pid files: chaos needs a local stack",
                           ExitStatus.USAGE)
        state = Path(target.state_dir or ROOT / ".telestack") / "chaos"
        state.mkdir(parents=True, exist_ok=True)
        stamp = time.strftime("%Y%m%dT%H%M%S")
        report_path = args.report or state / f"report-{stamp}.json"
        plan, mode = (SHORT, "short") if args.short else (FULL, "full")
        report = asyncio.run(run(target, plan, mode, args.restart.split(), state / f"restart-{stamp}.log"))
    except OpsError as exc:
        progress(f"failed: {exc}")
        return int(exc.status)
    except KeyboardInterrupt:
        progress("interrupted (the stack may need `make up`)")
        return int(ExitStatus.INTERRUPTED)
    report_path.write_text(json.dumps(asdict(report), indent=2) + "\n")
    print(report.table())
    progress(f"report: {report_path}")
    return int(ExitStatus.VERIFICATION_FAILED if report.missed_targets() else ExitStatus.OK)


if __name__ == "__main__":
    sys.exit(main())
