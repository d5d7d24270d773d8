"""The outbound HTTP port (SuperTokens, Centrifugo, JWKS, the D1 HTTP API).

Workers use ``fetch``; CPython uses httpx. The core awaits this protocol only.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol


@dataclass(slots=True)
class HttpResponse:
    status: int
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)


class HttpError(Exception):
    """Transport failure (connection refused, timeout): the dependency is unreachable."""


class HttpClient(Protocol):
    async def request(
        self,
        method: str,
        url: str,
        *,
        headers: dict[str, str] | None = None,
        body: bytes | None = None,
        timeout: float = 5.0,  # noqa: ASYNC109 - the port carries the deadline; Workers' fetch has no task groups
    ) -> HttpResponse: ...
