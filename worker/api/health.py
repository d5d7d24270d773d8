"""GET /v1/health: per-dependency status (db, realtime, storage, auth); public, cheap, never slow."""

from __future__ import annotations

from typing import TYPE_CHECKING

from worker.http import Response
from worker.routing import Route

if TYPE_CHECKING:
    from worker.context import Context


async def get_health(ctx: Context) -> Response:
    status, body = await ctx.gateway.health.report()
    return Response.json(body, status=status, headers={"cache-control": "no-store"})


ROUTES: list[Route] = [Route("GET", "/v1/health", get_health)]
