"""An HttpClient whose peer answers from a script: for unit tests of code that calls Centrifugo's API.

Each request gets the next scripted answer (the last one repeats): a JSON-able
reply (HTTP 200), an ``HttpResponse`` as is, an exception to raise (a transport
failure), :data:`ACCEPT_ALL` (a ``batch`` call whose every broadcast succeeded), or
:data:`HANG` (a peer that never answers). The request bodies are recorded.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

from worker.outbound import HttpResponse

#: a scripted answer that never comes (the request waits until it is cancelled)
HANG = object()
#: Centrifugo's reply to a ``batch`` of broadcasts that all succeeded, one reply per command sent
ACCEPT_ALL = object()


class ScriptedHttp:
    def __init__(self, *answers: Any) -> None:
        self._answers = list(answers)
        self.requests: list[tuple[str, str, dict[str, str]]] = []
        self.bodies: list[Any] = []
        self.timeouts: list[float] = []

    async def request(self, method: str, url: str, *, headers: dict[str, str] | None = None,
                      body: bytes | None = None, timeout: float = 5.0) -> HttpResponse:  # noqa: ASYNC109
        self.requests.append((method, url, dict(headers or {})))
        self.bodies.append(json.loads(body) if body else None)
        self.timeouts.append(timeout)
        answer = self._answers.pop(0) if len(self._answers) > 1 else self._answers[0]
        if answer is HANG:
            await asyncio.Event().wait()
        if answer is ACCEPT_ALL:
            ok = {"broadcast": {"responses": [{"result": {}}]}}
            answer = {"replies": [ok for _ in self.bodies[-1]["commands"]]}
        if isinstance(answer, BaseException):
            raise answer
        if isinstance(answer, HttpResponse):
            return answer
        return HttpResponse(200, json.dumps(answer).encode())
