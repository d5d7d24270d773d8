"""A client for Centrifugo's server HTTP API over the HttpClient port (``X-API-Key`` auth, JSON bodies)."""

from __future__ import annotations

from typing import Any

from worker import jsoncodec
from worker.outbound import HttpClient, HttpError
from worker.settings import Settings

#: per call: a slow realtime tier holds up publishing (never a response) for at most this long per round
API_TIMEOUT_SECONDS = 2.0


class CentrifugoError(Exception):
    """Centrifugo could not be reached or refused the call (never contains the API key)."""


def api_base(url: str) -> str:
    """CENTRIFUGO_API_URL may be the server root or its ``/api`` prefix; both mean the same."""
    url = url.rstrip("/")
    return url if url.endswith("/api") else url + "/api"


class CentrifugoApi:
    def __init__(self, http: HttpClient, url: str, key: str, *, timeout: float = API_TIMEOUT_SECONDS) -> None:
        self._http = http
        self._base = api_base(url)
        self._key = key
        self._timeout = timeout

    @classmethod
    def from_settings(cls, settings: Settings, http: HttpClient) -> CentrifugoApi | None:
        """None when realtime is not configured (events then stay pending in the outbox)."""
        if not settings.centrifugo_api_url or not settings.centrifugo_api_key:
            return None
        return cls(http, settings.centrifugo_api_url, settings.centrifugo_api_key)

    async def call(self, method: str, params: dict[str, Any], *,
                   time_limit: float | None = None) -> dict[str, Any]:
        """POST /api/<method>; returns the decoded body or raises CentrifugoError (no secret in it)."""
        headers = {"content-type": "application/json", "x-api-key": self._key}
        try:
            resp = await self._http.request("POST", f"{self._base}/{method}", headers=headers,
                                            body=jsoncodec.dumps_bytes(params),
                                            timeout=time_limit or self._timeout)
        except HttpError as exc:
            raise CentrifugoError(f"centrifugo unreachable: {type(exc).__name__}") from None
        if resp.status == 401:
            raise CentrifugoError("centrifugo refused the API key (401)")
        if resp.status != 200:
            raise CentrifugoError(f"centrifugo answered HTTP {resp.status}")
        try:
            body = jsoncodec.loads(resp.body)
        except ValueError:
            raise CentrifugoError("centrifugo answered with invalid JSON") from None
        if not isinstance(body, dict):
            raise CentrifugoError("centrifugo answered with a non-object")
        return body

    async def batch(self, commands: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Run commands in order in one round trip; one reply per command."""
        body = await self.call("batch", {"commands": commands, "parallel": False})
        replies = body.get("replies")
        if not isinstance(replies, list) or len(replies) != len(commands):
            raise CentrifugoError("centrifugo batch reply does not match the commands sent")
        return replies

    async def info(self, *, time_limit: float | None = None) -> dict[str, Any]:
        body = await self.call("info", {}, time_limit=time_limit)
        if "error" in body:
            raise CentrifugoError(f"centrifugo info failed: {body['error']}")
        return body
