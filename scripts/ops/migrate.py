"""``migrate``: plan or apply the D1 schema migrations (config/migrations/*.sql + collection indexes).

Uses worker/migrations.py, the same code the gateway runs at start-up: each
pending migration is one batch together with its ``_migrations`` row. ``--list``
and ``--dry-run`` only read. Idempotent: a second apply finds nothing pending.
"""

from __future__ import annotations

import argparse
import asyncio
from typing import Any

from scripts.ops.console import Console, ExitStatus, OpsError, Step, add_command
from scripts.ops.gateway_runtime import collections_json, migration_files, open_database
from scripts.ops.stack import Target


async def plan(target: Target) -> tuple[dict[str, str], list[Any]]:
    from worker import migrations
    from worker.collections import Registry

    registry = Registry.from_json(collections_json(target))
    async with open_database(target) as db:
        files = [migrations.Migration(n, s) for n, s in migration_files()]
        done = await migrations.applied(db)
        try:
            todo = await migrations.pending(db, files)
        except migrations.MigrationError as exc:
            raise OpsError(str(exc), ExitStatus.VERIFICATION_FAILED) from None
        existing = await migrations.existing_indexes(db)
        todo += migrations.index_migrations(registry, existing)
    return done, todo


async def apply(target: Target) -> list[str]:
    from worker import migrations
    from worker.collections import Registry

    registry = Registry.from_json(collections_json(target))
    async with open_database(target) as db:
        try:
            return await migrations.migrate(db, migration_files(), registry)
        except migrations.MigrationError as exc:
            raise OpsError(str(exc)) from None


def command(args: argparse.Namespace, target: Target, console: Console) -> ExitStatus:
    done, todo = asyncio.run(plan(target))
    if args.list or args.dry_run:
        if args.dry_run and not console.json_mode:
            for m in todo:
                console.stdout.write(f"-- {m.name}\n{m.sql.strip()}\n\n")
        payload = {
            "applied": sorted(done),
            "pending": [m.name for m in todo],
            "sql": {m.name: m.sql for m in todo} if args.dry_run else {},
        }
        human = f"{len(done)} applied, {len(todo)} pending" + (
            f": {', '.join(m.name for m in todo)}" if todo else ""
        )
        console.result(payload, human)
        return ExitStatus.OK
    if not todo:
        console.result({"applied_now": [], "pending": []}, "up to date: nothing to apply")
        return ExitStatus.OK
    with Step(console, f"applying {len(todo)} migration(s)"):
        names = asyncio.run(apply(target))
    console.result({"applied_now": names, "pending": []}, f"OK applied {len(names)}: {', '.join(names)}")
    return ExitStatus.OK


def add_parser(sub: Any) -> None:
    p = add_command(
        sub,
        "migrate",
        command,
        __doc__,
        help="plan (--list/--dry-run) or apply D1 migrations",
        examples=[
            "migrate --stack local --list",
            "migrate --stack local --dry-run     # prints the SQL",
            "migrate --stack local               # apply",
        ],
    )
    p.add_argument("--list", action="store_true", help="applied and pending names; writes nothing")
