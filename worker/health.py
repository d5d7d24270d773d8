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
from typing import TYPE_CHECKING, Any

from worker.outbound import HttpError

if TYPE_CHECKING:
    from worker.app import Gateway

PROBE_TIMEOUT = 1.5  # seconds per dependency
CACHE_SECONDS = 2.0

Probe = Callable[["Gateway"], Awaitable[str | None]]  # None = ok; a short reason otherwise


class Unhealthy(Exception):
    """A probe's one-line reason (never a secret, never a stack trace)."""


async def _db(gateway: Gateway) -> str | None:
    await gateway.db.execute("SELECT 1")
    return None


async def _realtime(gateway: Gateway) -> str | None:
    from worker import realtime

    api = realtime.api_for(gateway.settings, gateway.http)
    if api is None:
        return "disabled"
    try:
        await api.info(time_limit=PROBE_TIMEOUT)
    except realtime.RealtimeError as exc:
        raise Unhealthy(str(exc)) from None
    pending = await gateway.db.execute(
        "SELECT count(*) AS n FROM outbox WHERE sent_at IS NULL AND attempts > 0")
    failing = int(pending.rows[0]["n"]) if pending.rows else 0
    return f"{failing} outbox events failed to publish and are pending" if failing else None


async def _storage(gateway: Gateway) -> str | None:
    from worker.storage import Signer

    s = gateway.settings
    if not (s.s3_endpoint and s.s3_bucket and s.s3_access_key_id):
        return "disabled"
    internal = Signer(s.s3_endpoint.rstrip("/"), s.s3_bucket, s.s3_region or "us-east-1",
                      s.s3_access_key_id, s.s3_secret_access_key)
    resp = await _get(gateway, "HEAD", internal.presign("HEAD", None, 60))
    if resp == 403:
        raise Unhealthy("storage refused the gateway's credentials (403)")
    if resp == 404:
        raise Unhealthy("bucket does not exist (404)")
    if resp != 200:
        raise Unhealthy(f"storage answered HTTP {resp}")
    return None


async def _auth(gateway: Gateway) -> str | None:
    url = gateway.settings.auth_url
    if not url:
        return "disabled"
    status = await _get(gateway, "GET", url.rstrip("/") + "/hello")
    if status != 200:
        raise Unhealthy(f"auth core answered HTTP {status}")
    return None


async def _get(gateway: Gateway, method: str, url: str) -> int:
    try:
        resp = await gateway.http.request(method, url, timeout=PROBE_TIMEOUT)
    except HttpError as exc:
        raise Unhealthy(f"unreachable: {type(exc).__name__}") from None
    return resp.status


PROBES: dict[str, Probe] = {"db": _db, "realtime": _realtime, "storage": _storage, "auth": _auth}


async def _run(gateway: Gateway, name: str, probe: Probe) -> dict[str, Any]:
    started = time.monotonic()
    try:
        note = await asyncio.wait_for(probe(gateway), PROBE_TIMEOUT + 0.5)
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


async def report(gateway: Gateway) -> tuple[int, dict[str, Any]]:
    """(HTTP status, body): 200 ok/degraded, 503 only when the database is down."""
    cached = gateway.cache.get("health.report")
    if cached and time.monotonic() - cached[0] < CACHE_SECONDS:
        return cached[1]
    names = list(PROBES)
    results = await asyncio.gather(*(_run(gateway, n, PROBES[n]) for n in names))
    checks = dict(zip(names, results, strict=True))
    if checks["db"]["status"] != "ok":
        overall, status = "down", 503
    elif any(c["status"] not in ("ok", "disabled") for c in checks.values()):
        overall, status = "degraded", 200
    else:
        overall, status = "ok", 200
    value = (status, {"status": overall, "checks": checks})
    gateway.cache["health.report"] = (time.monotonic(), value)
    return value
