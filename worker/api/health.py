"""GET /v1/health: per-dependency status (db, realtime, storage, auth); public, cheap, never slow."""

from __future__ import annotations

from typing import TYPE_CHECKING

from worker.http import Response
from worker.operations import Operation, documented, obj
from worker.routing import Route

if TYPE_CHECKING:
    from worker.context import Context


_CHECK = obj({"status": {"enum": ["ok", "degraded", "down", "disabled"]}, "latency_ms": {"type": "number"},
               "error": {"type": "string"}}, ("status",))
_REPORT = obj({"status": {"enum": ["ok", "degraded", "down"]},
               "checks": {"type": "object", "additionalProperties": _CHECK}}, ("status", "checks"))
HEALTH = Operation("per-dependency status (db, realtime, storage, auth)", "none",
                   {200: _REPORT, 503: _REPORT})


@documented(HEALTH)
async def get_health(ctx: Context) -> Response:
    status, body = await ctx.gateway.health.report()
    return Response.json(body, status=status, headers={"cache-control": "no-store"})


ROUTES: list[Route] = [Route("GET", "/v1/health", get_health)]
