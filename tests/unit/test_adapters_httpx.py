"""HttpxClient: the HttpClient port on httpx (lower-cased headers; transport errors -> HttpError)."""

from __future__ import annotations

import httpx
import pytest

from worker.adapters.httpx_client import HttpxClient
from worker.outbound import HttpError


async def test_request_round_trip() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(201, content=b'{"ok":true}', headers={"X-Thing": "1"})

    client = HttpxClient(httpx.AsyncClient(transport=httpx.MockTransport(handler)))
    r = await client.request("POST", "http://svc/api", headers={"a": "b"}, body=b"hi")
    assert (r.status, r.body, r.headers["x-thing"]) == (201, b'{"ok":true}', "1")
    assert seen[0].content == b"hi" and seen[0].headers["a"] == "b"
    await client.aclose()


async def test_transport_failure_is_http_error_without_query_string() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused")

    client = HttpxClient(httpx.AsyncClient(transport=httpx.MockTransport(handler)))
    with pytest.raises(HttpError) as err:
        await client.request("GET", "http://svc/x?token=secret")
    assert "secret" not in str(err.value)
    await client.aclose()
