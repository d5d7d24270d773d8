"""The HttpClient port on ``httpx.AsyncClient`` (CPython only: the local stack, ops, tests)."""

from __future__ import annotations

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
            r = await self._client.request(method, url, headers=headers, content=body, timeout=timeout)
        except httpx.HTTPError as exc:
            raise HttpError(f"{method} {url.split('?', 1)[0]}: {type(exc).__name__}") from None
        return HttpResponse(
            status=r.status_code, body=r.content, headers={k.lower(): v for k, v in r.headers.items()}
        )

    async def aclose(self) -> None:
        await self._client.aclose()
