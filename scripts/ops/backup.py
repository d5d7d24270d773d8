"""``backup``: database + bucket + auth store → one timestamped, checksummed archive.

Why each safeguard: the pains this beats are archives that are silently
empty or silently truncated. So the backup re-reads what it wrote (integrity
check and counts from the *copy*, not the live file), hashes every member, and
an archive with no document, object or user is reported as EMPTY and exits 4
unless ``--allow-empty`` says that is expected (a fresh stack).

Not idempotent by design: every run writes a new timestamped archive, and no
archive is ever deleted by this command.
"""

from __future__ import annotations

import argparse
import datetime as dt
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from scripts.ops import archive, pg_store
from scripts.ops.console import Console, ExitStatus, OpsError, Step, add_command
from scripts.ops.stack import ROOT, Target
from scripts.ops.stores import (
    DatabaseExport,
    ObjectStore,
    database_for,
    sqlite_counts,
    sqlite_integrity,
    sqlite_snapshot,
)


@dataclass
class BackupResult:
    archive: Path
    sha256: str
    manifest: archive.Manifest

    def to_json(self) -> dict[str, Any]:
        return {
            "archive": str(self.archive),
            "sha256": self.sha256,
            **self.manifest.summary(),
            "members": len(self.manifest.members),
            "created_at": self.manifest.created_at,
        }


def default_dir(target: Target) -> Path:
    base = Path(target.state_dir) if target.state_dir else ROOT / ".telestack"
    return base / "backups"


def run_backup(
    target: Target,
    out_dir: Path,
    console: Console,
    *,
    database: DatabaseExport | None = None,
    objects: ObjectStore | None = None,
    now: dt.datetime | None = None,
) -> BackupResult:
    now = now or dt.datetime.now(dt.UTC)
    stamp = now.strftime("%Y%m%dT%H%M%S%fZ")
    out_dir.mkdir(parents=True, exist_ok=True)
    name = f"telestack-{target.stack or 'env'}-{stamp}.tar.gz"
    manifest = archive.Manifest(stack=target.stack, created_at=now.isoformat())
    with tempfile.TemporaryDirectory(prefix="telestack-backup-", dir=out_dir) as tmp:
        staging = Path(tmp)
        db_file = staging / archive.DATABASE_MEMBER
        db_file.parent.mkdir(parents=True)
        with Step(console, "database: online snapshot"):
            (database or database_for(target)).export(db_file, console.progress)
        _check_sqlite(db_file, "database")
        manifest.counts["database"] = sqlite_counts(db_file)
        manifest.members[archive.DATABASE_MEMBER] = archive.member_meta(db_file, "database")

        if target.auth_db_path:
            auth_file = staging / archive.AUTH_MEMBER
            auth_file.parent.mkdir(parents=True)
            with Step(console, "auth store: online snapshot"):
                sqlite_snapshot(Path(target.auth_db_path), auth_file, console.progress)
            _check_sqlite(auth_file, "auth store")
            manifest.counts["auth"] = sqlite_counts(auth_file)
            manifest.members[archive.AUTH_MEMBER] = archive.member_meta(auth_file, "auth")
        elif target.auth_db_url:  # cloud: SuperTokens Core's PostgreSQL (scripts/ops/pg_store.py)
            with Step(console, "auth store: PostgreSQL snapshot + pg_dump"):
                manifest.counts["auth"], manifest.members[pg_store.MEMBER] = pg_store.backup(
                    target.auth_db_url, staging, console
                )
        else:
            console.warn(
                "this stack exposes no auth store (auth_db_path or auth_db_url): users are NOT in this "
                "archive (cloud stacks: set docker.postgres.host_port so the stack outputs auth_db_url)"
            )

        store = objects if objects is not None else ObjectStore(target)
        with Step(console, f"objects: copying bucket {target.s3_bucket}"):
            count = 0
            for info in store.list():
                member = archive.object_member(info.key)
                path = staging / member
                path.parent.mkdir(parents=True, exist_ok=True)
                with path.open("wb") as fh:
                    content_type = store.download(info.key, fh)  # one GET: bytes and content type
                if path.stat().st_size != info.size:
                    raise OpsError(
                        f"object {info.key}: read {path.stat().st_size} bytes, listed {info.size}",
                        ExitStatus.VERIFICATION_FAILED,
                    )
                manifest.members[member] = archive.member_meta(
                    path, "object", key=info.key, content_type=content_type
                )
                count += 1
                if count % 100 == 0:
                    console.progress(f"  {count} objects")
        manifest.counts["objects"] = count

        with Step(console, f"writing {name}"):
            digest = archive.write(out_dir / name, staging, manifest)
    # prove the archive we just wrote reads back (the silent-truncation pain)
    with (
        tempfile.TemporaryDirectory(prefix="telestack-verify-", dir=out_dir) as tmp,
        Step(console, "verifying archive"),
    ):
        archive.verify_and_extract(out_dir / name, Path(tmp))
    return BackupResult(out_dir / name, digest, manifest)


def _check_sqlite(path: Path, what: str) -> None:
    if path.stat().st_size == 0:
        raise OpsError(f"{what} snapshot is 0 bytes", ExitStatus.VERIFICATION_FAILED)
    verdict = sqlite_integrity(path)
    if verdict != "ok":
        raise OpsError(f"{what} snapshot failed integrity_check: {verdict}", ExitStatus.VERIFICATION_FAILED)


def command(args: argparse.Namespace, target: Target, console: Console) -> ExitStatus:
    out_dir = Path(args.out) if args.out else default_dir(target)
    if args.dry_run:
        console.result(
            {"dry_run": True, "out": str(out_dir)},
            f"dry run: would back up stack {target.stack or '(env)'} into {out_dir}/",
        )
        return ExitStatus.OK
    result = run_backup(target, out_dir, console)
    summary = result.manifest.summary()
    payload = {**result.to_json(), "status": "empty" if result.manifest.empty else "ok"}
    if result.manifest.empty:
        console.warn("EMPTY BACKUP: 0 documents, 0 objects, 0 users — the archive holds the schema only")
        console.result(payload, f"EMPTY {result.archive} (schema only; sha256 {result.sha256[:12]}…)")
        return ExitStatus.OK if args.allow_empty else ExitStatus.VERIFICATION_FAILED
    console.result(
        payload,
        f"OK {result.archive}: {summary['documents']} documents, {summary['users']} users, "
        f"{summary['objects']} objects (sha256 {result.sha256[:12]}…)",
    )
    return ExitStatus.OK


def add_parser(sub: Any) -> None:
    p = add_command(
        sub,
        "backup",
        command,
        __doc__,
        help="database + bucket + auth store → one checksummed archive",
        examples=[
            "backup --stack local",
            "backup --stack local --out /backups --json",
            "backup --stack local --allow-empty   # fresh stack",
        ],
    )
    p.add_argument("--out", help="directory for the archive (default <state_dir>/backups)")
    p.add_argument("--allow-empty", action="store_true", help="exit 0 even when the backup holds no data")


__all__ = ["BackupResult", "add_parser", "run_backup"]
