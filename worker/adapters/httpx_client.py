"""The HttpClient port on ``httpx.AsyncClient`` (CPython only: the local stack, ops, tests).

``timeout`` is the whole call's deadline, as ``AbortSignal.timeout`` is on Workers. httpx's own
timeout applies to each phase apart (waiting for a pooled connection, connecting, writing, each
read), so a dependency that accepts and trickles, or a pool full of calls to a hung server, could
hold a request for several times it; the outer ``asyncio.timeout`` bounds the sum.
"""

from __future__ import annotations

import asyncio

import httpx

from worker.outbound import HttpError, HttpResponse


class HttpxClient:
    def __init__(self, client: httpx.AsyncClient | None = None) -> None:
        self._client = client or httpx.AsyncClient()

    async def request(
        self,
        method: str,
        url: str,
        *,
        headers: dict[str, str] | None = None,
        body: bytes | None = None,
        timeout: float = 5.0,  # noqa: ASYNC109 -- the HttpClient port takes a timeout
    ) -> HttpResponse:
        try:
            async with asyncio.timeout(timeout):
                r = await self._client.request(method, url, headers=headers, content=body, timeout=timeout)
        except TimeoutError:
            raise HttpError(f"{method} {url.split('?', 1)[0]}: no answer within {timeout:g}s") from None
        except httpx.HTTPError as exc:
            raise HttpError(f"{method} {url.split('?', 1)[0]}: {type(exc).__name__}") from None
        return HttpResponse(
            status=r.status_code, body=r.content, headers={k.lower(): v for k, v in r.headers.items()}
        )

    async def aclose(self) -> None:
        await self._client.aclose()
