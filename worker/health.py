"""Per-dependency health that never blocks: every probe runs concurrently under a short timeout.

A slow or down dependency makes the report ``degraded``, not an error: the gateway
still serves what it can. Only an unusable database makes the whole report ``down``
(HTTP 503), because no endpoint works without it. Results are cached per isolate
for a moment so the public endpoint cannot be used to amplify load on dependencies.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

from worker import outbox
from worker.centrifugo import CentrifugoApi, CentrifugoError
from worker.database import Database
from worker.outbound import HttpClient, HttpError
from worker.settings import Settings
from worker.storage import Signer

PROBE_TIMEOUT = 1.5  # seconds per dependency
CACHE_SECONDS = 2.0

Report = tuple[int, dict[str, Any]]  # (HTTP status, body)


class Unhealthy(Exception):
    """A probe's one-line reason (never a secret, never a stack trace)."""


class Health:
    """One isolate's health report: the probes, and the last report for :data:`CACHE_SECONDS`."""

    def __init__(
        self, settings: Settings, db: Database, http: HttpClient, centrifugo: CentrifugoApi | None
    ) -> None:
        self._settings = settings
        self._db = db
        self._http = http
        self._centrifugo = centrifugo
        #: (monotonic time, report) of the last run; None = probe again on the next call
        self.cached: tuple[float, Report] | None = None

    async def report(self) -> Report:
        """(HTTP status, body): 200 ok/degraded, 503 only when the database is down."""
        if self.cached and time.monotonic() - self.cached[0] < CACHE_SECONDS:
            return self.cached[1]
        probes: dict[str, Callable[[], Awaitable[str | None]]] = {
            "db": self._db_probe, "realtime": self._realtime, "storage": self._storage, "auth": self._auth}
        results = await asyncio.gather(*(_run(probe) for probe in probes.values()))
        checks = dict(zip(probes, results, strict=True))
        if checks["db"]["status"] != "ok":
            overall, status = "down", 503
        elif any(c["status"] not in ("ok", "disabled") for c in checks.values()):
            overall, status = "degraded", 200
        else:
            overall, status = "ok", 200
        value = (status, {"status": overall, "checks": checks})
        self.cached = (time.monotonic(), value)
        return value

    # each probe: None = ok, "disabled" = not configured, another string = degraded; Unhealthy = down

    async def _db_probe(self) -> str | None:
        await self._db.execute("SELECT 1")
        return None

    async def _realtime(self) -> str | None:
        if self._centrifugo is None:
            return "disabled"
        try:
            await self._centrifugo.info(time_limit=PROBE_TIMEOUT)
        except CentrifugoError as exc:
            raise Unhealthy(str(exc)) from None
        failing = await outbox.failing_count(self._db)
        return f"{failing} outbox events failed to publish and are pending" if failing else None

    async def _storage(self) -> str | None:
        s = self._settings
        if not (s.s3_endpoint and s.s3_bucket and s.s3_access_key_id):
            return "disabled"
        internal = Signer(s.s3_endpoint.rstrip("/"), s.s3_bucket, s.s3_region or "us-east-1",
                          s.s3_access_key_id, s.s3_secret_access_key)
        status = await self._status("HEAD", internal.presign("HEAD", None, 60))
        if status == 403:
            raise Unhealthy("storage refused the gateway's credentials (403)")
        if status == 404:
            raise Unhealthy("bucket does not exist (404)")
        if status != 200:
            raise Unhealthy(f"storage answered HTTP {status}")
        return None

    async def _auth(self) -> str | None:
        url = self._settings.auth_url
        if not url:
            return "disabled"
        status = await self._status("GET", url.rstrip("/") + "/hello")
        if status != 200:
            raise Unhealthy(f"auth core answered HTTP {status}")
        return None

    async def _status(self, method: str, url: str) -> int:
        try:
            resp = await self._http.request(method, url, timeout=PROBE_TIMEOUT)
        except HttpError as exc:
            raise Unhealthy(f"unreachable: {type(exc).__name__}") from None
        return resp.status


async def _run(probe: Callable[[], Awaitable[str | None]]) -> dict[str, Any]:
    started = time.monotonic()
    try:
        note = await asyncio.wait_for(probe(), PROBE_TIMEOUT + 0.5)
    except Unhealthy as exc:
        return {"status": "down", "error": str(exc)}
    except TimeoutError:
        return {"status": "down", "error": f"no answer within {PROBE_TIMEOUT}s"}
    except Exception as exc:  # a probe must never take the endpoint down
        return {"status": "down", "error": type(exc).__name__}
    if note == "disabled":
        return {"status": "disabled"}
    if note:
        return {"status": "degraded", "error": note}
    return {"status": "ok", "latency_ms": round((time.monotonic() - started) * 1000, 1)}
