"""The query grammar (parse errors, cursors) and every operator, order and pagination through the API."""

from __future__ import annotations

import base64

import pytest

from tests.support.gateway import Client
from worker import jsoncodec
from worker.http import ApiError
from worker.paths import PathError, parse_path
from worker.query import parse_query

ITEMS = [
    {
        "title": "a",
        "status": "open",
        "priority": 1,
        "tags": ["x", "y"],
        "meta": {"score": 10, "list": [5, 6]},
    },
    {"title": "b", "status": "done", "priority": 2, "tags": ["y"], "meta": {"score": 20}},
    {"title": "c", "status": "open", "priority": 3, "tags": [], "meta": {"score": 30, "note": None}},
    {"title": "d", "status": "archived", "tags": ["z"], "meta": {"score": "high"}},
    {"title": "e", "priority": 5},
]


@pytest.fixture
async def seeded(client: Client) -> Client:
    for i, data in enumerate(ITEMS):
        assert (await client.create("notes", data, id=f"n{i}")).status == 201
    return client


async def _titles(client: Client, **body: object) -> list[str]:
    r = await client.query("notes", **body)
    assert r.status == 200, r.body
    return [d["data"]["title"] for d in r.json["documents"]]


def test_paths_parse_to_checked_keys() -> None:
    assert parse_path("a.b_2.0.c") == ("a", "b_2", 0, "c")
    for bad in ("", ".a", "a.", "a..b", "0", "a.-1", "a b", "a'b", "a.01", "$.a", "a[0]", 'a"', "é"):
        with pytest.raises(PathError):
            parse_path(bad)


@pytest.mark.parametrize(
    "body",
    [
        {"where": [["title", "===", "a"]]},
        {"where": [["title", "=="]]},
        {"where": ["title == a"]},
        {"where": [["a b", "==", 1]]},
        {"where": [["title", "==", {"x": 1}]]},
        {"where": [["title", "==", [1]]]},
        {"where": [["priority", "<", None]]},
        {"where": [["priority", ">", True]]},
        {"where": [["t", "in", []]]},
        {"where": [["t", "in", "abc"]]},
        {"where": [["t", "in", [None]]]},
        {"where": [["t", "exists", 1]]},
        {"where": [["$id", "exists", True]]},
        {"where": [["$nope", "==", 1]]},
        {"where": [["t", "==", 2**63]]},
        {"where": [["t", "in", list(range(31))]]},
        {"where": [["t", "==", 1]]} | {"limit": 201},
        {"limit": -1},
        {"limit": "5"},
        {"limit": True},
        {"count": "yes"},
        {"order_by": "title"},
        {"order_by": [["title", "up"]]},
        {"order_by": ["title", "title"]},
        {"order_by": []},
        {"where": {"title": "a"}},
        # falsy non-lists once read as "no filter" (the fuzzer sent "where": "" and got 200)
        {"where": ""},
        {"where": False},
        {"where": 0},
        {"where": {}},
    ],
)
def test_invalid_queries_are_400(body: dict) -> None:
    with pytest.raises(ApiError) as err:
        parse_query(body)
    assert err.value.status == 400


@pytest.mark.parametrize(
    ("where", "expected"),
    [
        ([["status", "==", "open"]], ["a", "c"]),
        ([["status", "!=", "open"]], ["b", "d"]),  # missing fields never match !=
        ([["status", "==", None]], ["e"]),
        ([["status", "!=", None]], ["a", "b", "c", "d"]),
        ([["priority", "<", 3]], ["a", "b"]),
        ([["priority", "<=", 3]], ["a", "b", "c"]),
        ([["priority", ">", 2]], ["c", "e"]),
        ([["priority", ">=", 2]], ["b", "c", "e"]),
        ([["meta.score", ">", 15]], ["b", "c"]),  # "high" (a string) is not a number > 15
        ([["meta.score", ">", "a"]], ["d"]),
        ([["status", "in", ["done", "archived"]]], ["b", "d"]),
        ([["status", "not-in", ["done", "archived"]]], ["a", "c"]),
        ([["tags", "array-contains", "y"]], ["a", "b"]),
        ([["title", "array-contains", "a"]], []),  # a scalar field is not an array
        ([["meta.list.1", "==", 6]], ["a"]),
        ([["meta.list", "array-contains", 5]], ["a"]),
        ([["tags", "exists", True]], ["a", "b", "c", "d"]),
        ([["tags", "exists", False]], ["e"]),
        ([["meta.note", "exists", True]], ["c"]),  # an explicit null exists
        ([["status", "==", "open"], ["priority", ">", 1]], ["c"]),
        ([["$id", "==", "n1"]], ["b"]),
        ([["$id", "in", ["n0", "n4"]]], ["a", "e"]),
        ([["$version", "==", 1]], ["a", "b", "c", "d", "e"]),
        ([["$owner_id", "==", "alice"]], ["a", "b", "c", "d", "e"]),
    ],
)
async def test_operators(seeded: Client, where: list, expected: list[str]) -> None:
    assert await _titles(seeded, where=where) == expected


@pytest.mark.parametrize(
    ("order_by", "expected"),
    [
        (None, ["a", "b", "c", "d", "e"]),
        (["priority"], ["d", "a", "b", "c", "e"]),  # missing (NULL) sorts first ascending
        ([["priority", "desc"]], ["e", "c", "b", "a", "d"]),
        ([["status", "asc"], ["priority", "desc"]], ["e", "d", "b", "c", "a"]),
        ([["$id", "desc"]], ["e", "d", "c", "b", "a"]),
    ],
)
async def test_order_by(seeded: Client, order_by: list | None, expected: list[str]) -> None:
    body = {} if order_by is None else {"order_by": order_by}
    assert await _titles(seeded, **body) == expected


@pytest.mark.parametrize(
    "order_by",
    [
        None,
        ["priority"],
        [["priority", "desc"]],
        [["status", "desc"], "title"],
        [["meta.score", "desc"]],
        [["$id", "desc"]],
    ],
)
async def test_cursor_pages_cover_everything_exactly_once(seeded: Client, order_by: list | None) -> None:
    body: dict = {} if order_by is None else {"order_by": order_by}
    everything = await _titles(seeded, **body)
    seen: list[str] = []
    cursor = None
    while True:
        r = await seeded.query("notes", limit=2, **body, **({"cursor": cursor} if cursor else {}))
        page = [d["data"]["title"] for d in r.json["documents"]]
        seen += page
        cursor = r.json["next_cursor"]
        if cursor is None:
            break
        assert len(page) == 2
    assert seen == everything


async def test_pagination_is_correct_under_concurrent_inserts(client: Client) -> None:
    for i in range(10):
        assert (
            await client.create("notes", {"title": f"t{i}", "meta": {"rank": i}}, id=f"k{i:02d}")
        ).status == 201
    seen: list[str] = []
    r = await client.query("notes", order_by=["meta.rank"], limit=3)
    cursor = r.json["next_cursor"]
    seen += [d["id"] for d in r.json["documents"]]
    n = 0
    while cursor:
        # writers keep inserting rows before and after the current position between pages
        await client.create("notes", {"title": "early", "meta": {"rank": -1}}, id=f"early{n}")
        await client.create("notes", {"title": "late", "meta": {"rank": 100}}, id=f"late{n}")
        n += 1
        r = await client.query("notes", order_by=["meta.rank"], limit=3, cursor=cursor)
        seen += [d["id"] for d in r.json["documents"]]
        cursor = r.json["next_cursor"]
    originals = [f"k{i:02d}" for i in range(10)]
    assert [s for s in seen if s.startswith("k")] == originals  # nothing skipped, nothing repeated
    assert len(seen) == len(set(seen))
    assert not any(s.startswith("early") for s in seen)  # inserted behind the cursor: not revisited
    assert seen[-n:] == [f"late{i}" for i in range(n)]  # inserted ahead: picked up in order


async def test_count_and_limit_zero(seeded: Client) -> None:
    r = await seeded.query("notes", where=[["status", "==", "open"]], count=True, limit=1)
    assert r.json["count"] == 2 and len(r.json["documents"]) == 1 and r.json["next_cursor"]
    r = await seeded.query("notes", count=True, limit=0)
    assert r.json == {"documents": [], "next_cursor": None, "count": 5}
    assert "count" not in (await seeded.query("notes")).json


async def test_cursor_must_match_its_order_and_be_well_formed(seeded: Client) -> None:
    cursor = (await seeded.query("notes", limit=1, order_by=["priority"])).json["next_cursor"]
    r = await seeded.query("notes", limit=1, cursor=cursor)  # different order_by
    assert r.status == 400
    for bad in ("!!!", "e30", base64.urlsafe_b64encode(b"[1,2]").decode(), 5, "x" * 5000):
        assert (await seeded.query("notes", cursor=bad)).status == 400


async def test_crafted_cursor_values_are_bound(seeded: Client) -> None:
    q = parse_query({})
    raw = jsoncodec.dumps_bytes({"o": q.fingerprint, "k": ["' OR 1=1 --"]})
    r = await seeded.query("notes", cursor=base64.urlsafe_b64encode(raw).decode().rstrip("="))
    assert r.status == 200 and [d["id"] for d in r.json["documents"]] == ["n0", "n1", "n2", "n3", "n4"]
