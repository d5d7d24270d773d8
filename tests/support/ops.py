"""Ops-test helpers: an in-memory ``scripts.ops.rotate.ConfigStore`` and a migrated gateway database."""

from __future__ import annotations

import asyncio
from pathlib import Path


def migrate_sqlite(db_path: Path) -> None:
    """The gateway's schema in a SQLite file, as the local gateway creates it at start."""
    from scripts.ops.gateway_runtime import migration_files
    from worker import migrations
    from worker.adapters.sqlite import SqliteDatabase

    db = SqliteDatabase(db_path)
    loop = asyncio.new_event_loop()  # not asyncio.run: it unsets the thread's loop, which Pulumi's mocks need
    try:
        loop.run_until_complete(migrations.migrate(db, migration_files()))
    finally:
        loop.close()
        db.close()


class MemoryConfig:
    """``pulumi config`` stand-in: secret and plain values; ``apply`` counts ``pulumi up`` calls."""

    def __init__(self, values: dict[str, str]) -> None:
        self.values = dict(values)
        self.applied = 0

    def get(self, key: str) -> str | None:
        return self.values.get(key)

    def set_secret(self, key: str, value: str) -> None:
        self.values[key] = value

    def set_plain(self, key: str, value: str) -> None:
        self.values[key] = value

    def remove(self, key: str) -> None:
        self.values.pop(key, None)

    def apply(self) -> None:
        self.applied += 1
