"""Ops-test helpers: an in-memory ``scripts.ops.rotate.ConfigStore`` and a migrated gateway database."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from scripts.ops.stack import Target
    from tests.support.seaweedfs import SeaweedFS


def file_target(stack: str, state: Path, s3: SeaweedFS) -> Target:
    """A local-shaped stack: both databases as SQLite files under ``state``, the bucket on ``s3``."""
    from scripts.ops.stack import Target

    return Target(
        stack=stack,
        db_path=str(state / "gateway.sqlite3"),
        auth_db_path=str(state / "auth.sqlite3"),
        state_dir=str(state),
        s3_endpoint=s3.endpoint,
        s3_bucket=s3.bucket,
        s3_access_key_id=s3.access_key,
        s3_secret_access_key=s3.secret_key,
    )


def flip_one_byte(archive_path: Path, dest: Path) -> None:
    """A copy of an archive with one bit flipped mid-file, beside the ORIGINAL's sidecar checksum."""
    from scripts.ops import archive

    raw = bytearray(archive_path.read_bytes())
    raw[len(raw) // 2] ^= 0x01
    dest.write_bytes(bytes(raw))
    archive.sidecar(dest).write_text(archive.sidecar(archive_path).read_text())


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
