"""The HttpClient port on the Workers runtime's ``fetch`` (Python Workers only).

``timeout`` becomes ``AbortSignal.timeout(ms)``: the runtime aborts the request,
body read included, when it passes, so a dependency that accepts the connection
and never answers (a hung Centrifugo) costs a request its timeout, not the
isolate's whole time budget.
"""

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
        from js import AbortSignal  # type: ignore[import-not-found]  # only inside a Worker
        from workers import fetch  # type: ignore[import-not-found]

        signal = AbortSignal.timeout(max(1, round(timeout * 1000)))
        try:
            r = await fetch(url, method=method, headers=headers or {}, body=body, signal=signal)
            data = await r.bytes()
        except Exception as exc:  # JsException / AbortError: network failure or the timeout passed
            raise HttpError(f"{method} {url.split('?', 1)[0]}: {type(exc).__name__}") from None
        return HttpResponse(
            status=int(r.status), body=bytes(data), headers={k.lower(): v for k, v in r.headers.items()}
        )
