"""HttpxClient: the HttpClient port on httpx (lower-cased headers; transport errors -> HttpError)."""

from __future__ import annotations

import asyncio
import contextlib
import time

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


async def test_timeout_bounds_the_whole_call_not_each_read() -> None:
    """A server that trickles its body (a byte every 0.2 s) never trips httpx's per-read timeout;
    the port's timeout is the whole call's deadline, so the call still ends at about 1 s."""

    handlers: list[asyncio.Task[None]] = []

    async def trickle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        handlers.append(asyncio.current_task())  # type: ignore[arg-type]
        try:
            await reader.readuntil(b"\r\n\r\n")
            writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 1000\r\n\r\n")
            with contextlib.suppress(ConnectionError):
                for _ in range(1000):
                    writer.write(b".")
                    await writer.drain()
                    await asyncio.sleep(0.2)
        finally:  # also when cancelled: no writer left for the garbage collector after the loop closed
            writer.close()

    server = await asyncio.start_server(trickle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    client = HttpxClient()
    started = time.monotonic()
    try:
        with pytest.raises(HttpError) as err:
            # the outer bound only turns a regression into a failure instead of a 200 s hang
            await asyncio.wait_for(client.request("GET", f"http://127.0.0.1:{port}/slow", timeout=1.0), 30)
    finally:
        elapsed = time.monotonic() - started
        await client.aclose()
        server.close()
        for task in handlers:
            task.cancel()
        await asyncio.gather(*handlers, return_exceptions=True)
        await server.wait_closed()
    assert "no answer within 1s" in str(err.value)
    # generous slack: the point is that the deadline holds at all (without it: 1000 x 0.2 s)
    assert elapsed < 10, elapsed
