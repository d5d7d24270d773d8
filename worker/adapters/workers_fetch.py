"""The HttpClient port on the Workers runtime's ``fetch`` (Python Workers only)."""

from __future__ import annotations

from worker.outbound import HttpError, HttpResponse


class WorkersFetchClient:
    async def request(
        self,
        method: str,
        url: str,
        *,
        headers: dict[str, str] | None = None,
        body: bytes | None = None,
        timeout: float = 5.0,  # noqa: ASYNC109 -- the HttpClient port takes a timeout
    ) -> HttpResponse:
        from workers import fetch  # type: ignore[import-not-found]  # only inside a Worker

        try:
            r = await fetch(url, method=method, headers=headers or {}, body=body)
            data = await r.bytes()
        except Exception as exc:  # JsException: network failure
            raise HttpError(f"{method} {url.split('?', 1)[0]}: {type(exc).__name__}") from None
        return HttpResponse(
            status=int(r.status), body=bytes(data), headers={k.lower(): v for k, v in r.headers.items()}
        )
