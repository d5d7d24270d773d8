"""The query conformance table (tests/conformance/query_semantics.json) against the real gateway on SQLite.

The same file drives the Web SDK's client-side evaluator (sdk/web/test/unit/conformance.test.mjs), so
a live query in the SDK and a fresh query on the server agree on every row. Each group gets its own
gateway (``worker.asgi.create_app``: real routing, auth by the admin key, migrations run by the ASGI
lifespan) on a fresh SQLite file, with the table's collection as the only one configured.
"""

from __future__ import annotations

import asyncio
import json
import shutil
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from worker.asgi import create_app

ROOT = Path(__file__).resolve().parents[2]
TABLE = json.loads((ROOT / "tests/conformance/query_semantics.json").read_text(encoding="utf-8"))
ADMIN_KEY = "conformance-admin-key-0123456789"
COLLECTION = "conformance"
BASE = f"/v1/collections/{COLLECTION}"


@asynccontextmanager
async def lifespan(app: Any) -> AsyncIterator[None]:
    """Drive the ASGI lifespan by hand (startup applies the migrations; shutdown closes the database)."""
    inbox: list[dict[str, Any]] = [{"type": "lifespan.startup"}]
    sent: list[dict[str, Any]] = []
    wake = asyncio.Event()

    async def receive() -> dict[str, Any]:
        while not inbox:
            wake.clear()
            await wake.wait()
        return inbox.pop(0)

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    task = asyncio.create_task(app({"type": "lifespan"}, receive, send))
    while not sent:
        await asyncio.sleep(0.01)
        assert not task.done() or sent, "lifespan ended without answering"
    assert sent[0]["type"] == "lifespan.startup.complete", sent[0]
    try:
        yield
    finally:
        inbox.append({"type": "lifespan.shutdown"})
        wake.set()
        await task


@asynccontextmanager
async def gateway(tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    config = tmp_path / "config"
    (config / "collections").mkdir(parents=True)
    (config / "collections" / f"{COLLECTION}.yaml").write_text(yaml.safe_dump(TABLE["collection"]))
    shutil.copytree(ROOT / "config" / "migrations", config / "migrations")
    app = create_app({
        "TELESTACK_ADMIN_KEY": ADMIN_KEY,
        "TELESTACK_CONFIG_DIR": str(config),
        "TELESTACK_DB_PATH": str(tmp_path / "gateway.sqlite3"),
    })
    async with lifespan(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://gateway",
                                     headers={"authorization": f"Bearer {ADMIN_KEY}"}) as http:
            yield http


async def run_case(http: httpx.AsyncClient, case: dict[str, Any]) -> list[str]:
    """What the server answered, compared with the row; an empty list when they agree."""
    problems: list[str] = []
    body = dict(case["query"])
    pages: list[list[str]] = []
    while True:
        reply = await http.post(f"{BASE}/query", json=body)
        if reply.status_code != 200:
            return [f"{case['name']}: HTTP {reply.status_code} {reply.text}"]
        page = reply.json()
        pages.append([d["id"] for d in page["documents"]])
        if "count" in case and len(pages) == 1 and page.get("count") != case["count"]:
            problems.append(f"{case['name']}: count {page.get('count')} != {case['count']}")
        if "pages" not in case or page["next_cursor"] is None:
            break
        body = {**case["query"], "cursor": page["next_cursor"]}
        if len(pages) > 50:
            return [f"{case['name']}: paging does not end"]
    if "pages" in case:
        if pages != case["pages"]:
            problems.append(f"{case['name']}: pages {pages} != {case['pages']}")
    elif pages[0] != case["ids"]:
        problems.append(f"{case['name']}: ids {pages[0]} != {case['ids']}")
    return problems


def test_table_is_well_formed() -> None:
    names = [g["name"] for g in TABLE["groups"]]
    assert len(names) == len(set(names))
    ops = set()
    for group in TABLE["groups"]:
        ids = {d["id"] for d in group["documents"]}
        for case in group["cases"]:
            assert ("ids" in case) != ("pages" in case), case["name"]
            expected = case.get("ids") or [i for p in case.get("pages", []) for i in p]
            assert set(expected) <= ids, case["name"]
            ops.update(w[1] for w in case["query"].get("where", []))
    # every operator of the grammar has at least one row
    assert ops == {"==", "!=", "<", "<=", ">", ">=", "in", "not-in", "array-contains", "exists"}


@pytest.mark.parametrize("group", TABLE["groups"], ids=lambda g: g["name"])
async def test_gateway_agrees_with_table(tmp_path: Path, group: dict[str, Any]) -> None:
    async with gateway(tmp_path) as http:
        for doc in group["documents"]:
            reply = await http.post(f"{BASE}/documents", json=doc)
            assert reply.status_code == 201, reply.text
        problems = [p for case in group["cases"] for p in await run_case(http, case)]
    assert not problems, "\n".join(problems)


async def test_refused_without_the_admin_key(tmp_path: Path) -> None:
    """The table's collection is admin-only: the same query without a key or with a wrong one is refused."""
    async with gateway(tmp_path) as http:
        no_key = await http.post(f"{BASE}/query", json={}, headers={"authorization": ""})
        wrong = await http.post(f"{BASE}/query", json={}, headers={"authorization": "Bearer nope"})
    assert no_key.status_code == 401 and no_key.json()["error"]["code"] == "unauthenticated"
    assert wrong.status_code == 401 and wrong.json()["error"]["code"] == "invalid_token", wrong.text
