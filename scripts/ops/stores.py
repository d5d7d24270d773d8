"""The three stateful parts a backup covers, each behind a small interface.

- database: the gateway's D1. Locally a SQLite file copied with SQLite's online
  backup API (consistent while the gateway writes); in clouds the D1 export API.
- objects: the S3 bucket (any S3: SeaweedFS, MinIO, R2, B2) through boto3.
- auth: the SuperTokens stand-in's SQLite store (local/CI). A cloud SuperTokens
  keeps users in PostgreSQL: scripts/ops/pg_store.py (pg_dump/pg_restore).
"""

from __future__ import annotations

import hashlib
import shutil
import sqlite3
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO, Protocol

from scripts.ops.console import ExitStatus, OpsError
from scripts.ops.d1_api import D1Api
from scripts.ops.stack import Target

Progress = Callable[[str], None]


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def quote_ident(name: str) -> str:
    """An SQLite identifier, double-quoted (table names come from the database, not from users)."""
    return '"' + name.replace('"', '""') + '"'


def sqlite_counts(path: Path) -> dict[str, int]:
    """Rows per table (SQLite's own tables excluded): the manifest's view of a database."""
    con = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        tables = [
            r[0]
            for r in con.execute(
                "SELECT name FROM sqlite_master WHERE type='table' AND name NOT LIKE 'sqlite_%' ORDER BY name"
            )
        ]
        return {t: int(con.execute(f"SELECT count(*) FROM {quote_ident(t)}").fetchone()[0]) for t in tables}  # noqa: S608
    finally:
        con.close()


def sqlite_integrity(path: Path) -> str:
    con = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        return str(con.execute("PRAGMA integrity_check").fetchone()[0])
    except sqlite3.DatabaseError as exc:
        return f"not a database: {exc}"
    finally:
        con.close()


def sqlite_snapshot(source: Path, dest: Path, progress: Progress | None = None) -> None:
    """Online backup: a consistent copy even while the gateway writes (pages copied in steps)."""
    if not source.exists():
        raise OpsError(
            f"database file {source} does not exist (is the stack up?)", ExitStatus.DEPENDENCY_UNHEALTHY
        )
    src = sqlite3.connect(f"file:{source}?mode=ro", uri=True)
    dst = sqlite3.connect(dest)
    try:

        def step(status: int, remaining: int, total: int) -> None:
            if progress and total > 1000:
                progress(f"  {source.name}: {total - remaining}/{total} pages")

        src.backup(dst, pages=1024, progress=step)
        # a self-contained single file (no -wal/-shm beside it); the gateway turns WAL back on at open
        dst.execute("PRAGMA journal_mode = DELETE")
    finally:
        dst.close()
        src.close()


class DatabaseExport(Protocol):
    """A consistent copy of the gateway database as a SQLite file (the archive's format)."""

    def export(self, dest: Path, progress: Progress) -> None: ...


@dataclass
class SqliteFileDatabase:
    path: Path

    def export(self, dest: Path, progress: Progress) -> None:
        sqlite_snapshot(self.path, dest, progress)


@dataclass
class D1ApiDatabase:
    """Cloudflare D1 through :class:`scripts.ops.d1_api.D1Api` (polling export, then the signed URL's
    SQL dump); the dump is loaded into a SQLite file so the archive has one format for every stack."""

    account_id: str
    database_id: str
    api_token: str = field(repr=False)
    api_base: str = ""
    poll_seconds: float = 2.0
    client: Any = None  # an httpx.Client; injectable for tests

    def api(self) -> D1Api:
        return D1Api(self.account_id, self.api_token, self.api_base, self.client, self.poll_seconds)

    def export(self, dest: Path, progress: Progress) -> None:
        api = self.api()
        try:
            dump = api.export_sql(self.database_id, progress)
        finally:
            api.close()
        con = sqlite3.connect(dest)
        try:
            con.executescript(dump)
        except sqlite3.Error as exc:
            raise OpsError(f"D1 export: the dump does not load into SQLite: {exc}",
                           ExitStatus.VERIFICATION_FAILED) from None
        finally:
            con.close()


def database_for(target: Target) -> DatabaseExport:
    if target.db_path:
        return SqliteFileDatabase(Path(target.db_path))
    if target.d1_database_id:
        target.require("cloudflare_account_id", "cloudflare_api_token")
        return D1ApiDatabase(target.cloudflare_account_id, target.d1_database_id, target.cloudflare_api_token,
                             target.cloudflare_api_base)
    raise OpsError("stack has neither db_path (local) nor d1_database_id (cloud)", ExitStatus.USAGE)


@dataclass(frozen=True)
class ObjectInfo:
    key: str
    size: int
    content_type: str


class ObjectStore:
    """The stack's bucket through boto3 (path-style, SigV4, as the gateway presigns)."""

    def __init__(self, target: Target) -> None:
        target.require("s3_endpoint", "s3_bucket", "s3_access_key_id", "s3_secret_access_key")
        import boto3
        from botocore.config import Config

        self.bucket = target.s3_bucket
        self._s3 = boto3.client(
            "s3",
            endpoint_url=target.s3_endpoint,
            region_name=target.s3_region or "us-east-1",
            aws_access_key_id=target.s3_access_key_id,
            aws_secret_access_key=target.s3_secret_access_key,
            config=Config(
                signature_version="s3v4",
                s3={"addressing_style": "path"},
                retries={"max_attempts": 2},
                connect_timeout=5,
                read_timeout=30,
            ),
        )

    def list(self, prefix: str = "") -> Iterator[ObjectInfo]:
        paginator = self._s3.get_paginator("list_objects_v2")
        for page in paginator.paginate(Bucket=self.bucket, Prefix=prefix):
            for item in page.get("Contents", []):
                yield ObjectInfo(item["Key"], int(item["Size"]), "")

    def download(self, key: str, fh: BinaryIO) -> str:
        """Stream the object into ``fh`` with one GET and return its content type (no HEAD for it)."""
        response = self._s3.get_object(Bucket=self.bucket, Key=key)
        shutil.copyfileobj(response["Body"], fh, 1 << 20)
        return str(response.get("ContentType") or "")

    def read(self, key: str) -> bytes | None:
        try:
            return bytes(self._s3.get_object(Bucket=self.bucket, Key=key)["Body"].read())
        except self._s3.exceptions.NoSuchKey:
            return None

    def upload(self, key: str, path: Path, content_type: str) -> None:
        extra = {"ContentType": content_type} if content_type else {}
        with path.open("rb") as fh:
            self._s3.put_object(Bucket=self.bucket, Key=key, Body=fh, **extra)

    def delete(self, key: str) -> None:
        self._s3.delete_object(Bucket=self.bucket, Key=key)

    def ping(self) -> None:
        self._s3.head_bucket(Bucket=self.bucket)
