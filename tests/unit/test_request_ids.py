"""request_ids.py and app.secure: an id, nosniff and no-store on every answer; the id in errors and logs."""

from __future__ import annotations

import io
import logging

import pytest

from tests.support.gateway import Client
from worker import request_ids
from worker.http import Request

DOCS = "/v1/collections/notes/documents"


def _secured(headers: dict[str, str]) -> str:
    assert headers["x-content-type-options"] == "nosniff"
    assert headers["cache-control"] == "no-store"
    return headers["x-request-id"]


async def test_every_kind_of_answer_is_secured_with_its_own_id(client: Client) -> None:
    created = await client.create("notes", {"title": "x"}, id="n1")
    answers = [
        created,
        await client.request("GET", f"{DOCS}/n1"),
        await client.request("DELETE", f"{DOCS}/n1"),  # 204, no body
        await client.request("GET", f"{DOCS}/n1", user=None),  # 401
        await client.request("GET", f"{DOCS}/n1", user="bob"),  # 404 of RLS
        await client.request("GET", "/v1/nowhere"),  # the router's 404
        await client.request("PUT", "/v1/batch"),  # 405
        await client.request("GET", "/v1/openapi.json", user=None),
        await client.request("OPTIONS", DOCS, user=None, headers={"origin": "http://x.test",
                                                                 "access-control-request-method": "POST"}),
    ]
    ids = [_secured(a.headers) for a in answers]
    assert len(set(ids)) == len(ids)
    for answer in answers:
        if answer.status >= 400 and answer.body:
            assert answer.json["error"]["request_id"] == answer.headers["x-request-id"]


@pytest.mark.parametrize(("sent", "kept"), [
    ("req-2026-12-03.abc:1", True),
    ("a" * 128, True),
    ("short", False),
    ("a" * 129, False),
    ("evil\nInjected: line", False),
    ("id with spaces 12345", False),
    ("%0d%0aSet-Cookie:x=1", False),
])
async def test_a_client_id_is_kept_only_when_sane(client: Client, sent: str, kept: bool) -> None:
    r = await client.request("GET", f"{DOCS}/missing", headers={"x-request-id": sent})
    got = r.headers["x-request-id"]
    assert (got == sent) is kept and r.json["error"]["request_id"] == got
    if not kept:
        assert len(got) == 32 and int(got, 16) >= 0


async def test_every_log_line_of_a_request_carries_its_id(client: Client) -> None:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.addFilter(request_ids.LogContext())
    handler.setFormatter(logging.Formatter(request_ids.LOG_FORMAT))
    logger = logging.getLogger("telestack")
    logger.addHandler(handler)
    level = logger.level
    logger.setLevel(logging.INFO)
    try:
        await client.request("GET", f"{DOCS}/missing", headers={"x-request-id": "trace-0001"})
        logging.getLogger("telestack.outbox").info("outside any request")
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)
    lines = stream.getvalue().splitlines()
    assert any(f"request_id=trace-0001 GET {DOCS}/missing -> 404" in line for line in lines)
    assert lines[-1].endswith("request_id=- outside any request")


def test_a_fresh_id_each_time() -> None:
    request = Request("GET", "/v1/health")
    assert request_ids.of(request) != request_ids.of(request)
