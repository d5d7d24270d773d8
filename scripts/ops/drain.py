"""``drain-outbox``: publish every pending outbox event now (worker/outbox.py's drain, run from here).

When to use: ``status`` shows a backlog (Centrifugo was down, its API key was
rotated, the gateway crashed between commit and publish). Idempotent: only
rows with ``sent_at IS NULL`` are published; a repeated publish is harmless
because clients dedupe on (collection, id, version).
"""

from __future__ import annotations

import argparse
import asyncio
from typing import Any

from scripts.ops.console import Console, ExitStatus, OpsError, Step, add_command
from scripts.ops.gateway_runtime import collections_json, open_database
from scripts.ops.stack import Target

_PENDING = "SELECT count(*) AS n FROM outbox WHERE sent_at IS NULL"


def gateway_settings(target: Target) -> Any:
    from worker.settings import from_mapping

    return from_mapping(
        {
            "ADMIN_KEY": target.admin_key or "ops",
            "COLLECTIONS": collections_json(target),
            "CENTRIFUGO_API_URL": target.centrifugo_api_url,
            "CENTRIFUGO_API_KEY": target.centrifugo_api_key,
            "CENTRIFUGO_WS_URL": target.centrifugo_ws_url,
        }
    )


async def pending(target: Target) -> int:
    async with open_database(target) as db:
        return await _count(db)


async def drain_all(target: Target, console: Console, batch: int) -> tuple[int, str | None]:
    """Call worker.outbox.drain until nothing is pending or a round publishes nothing."""
    from worker import outbox
    from worker.adapters.httpx_client import HttpxClient
    from worker.centrifugo import CentrifugoApi
    from worker.collections import Registry

    settings = gateway_settings(target)
    if not (target.centrifugo_api_url and target.centrifugo_api_key):
        raise OpsError("the stack exposes no centrifugo_api_url/centrifugo_api_key", ExitStatus.USAGE)
    http = HttpxClient()
    centrifugo = CentrifugoApi(http, target.centrifugo_api_url, target.centrifugo_api_key)
    access = Registry.from_json(settings.collections_json).access_rules()
    published = 0
    try:
        async with open_database(target) as db:
            while True:
                result = await outbox.drain(db, centrifugo, access, batch)
                published += result.sent
                left = await _count(db)
                console.progress(f"  published {published}, {left} pending")
                if result.error:
                    return published, result.error
                if result.sent == 0 or left == 0:
                    return published, None
    finally:
        await http.aclose()


async def _count(db: Any) -> int:
    return int((await db.execute(_PENDING)).rows[0]["n"])


def command(args: argparse.Namespace, target: Target, console: Console) -> ExitStatus:
    before = asyncio.run(pending(target))
    if args.dry_run or before == 0:
        console.result(
            {"pending": before, "published": 0, "dry_run": args.dry_run},
            f"{before} event(s) pending" + ("" if before else ": nothing to drain"),
        )
        return ExitStatus.OK
    with Step(console, f"draining {before} pending event(s)"):
        published, error = asyncio.run(drain_all(target, console, args.batch))
    after = asyncio.run(pending(target))
    payload = {"pending_before": before, "published": published, "pending": after, "error": error}
    if after:
        console.result(
            payload, f"FAILED: {after} event(s) still pending (is Centrifugo healthy? run `health`)"
        )
        return ExitStatus.DEPENDENCY_UNHEALTHY
    console.result(payload, f"OK published {published}, 0 pending")
    return ExitStatus.OK


def add_parser(sub: Any) -> None:
    p = add_command(
        sub,
        "drain-outbox",
        command,
        __doc__,
        help="publish pending outbox events now",
        examples=["drain-outbox --stack local", "drain-outbox --stack local --dry-run   # count only"],
    )
    p.add_argument("--batch", type=int, default=200, help="events per drain call (default 200)")
