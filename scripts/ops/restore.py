"""``restore``: archive → NEW database files → verify → switch over; live data is never written in place.

Order, and why:
1. the sidecar checksum and every member's sha256 are checked before anything
   touches the stack (a corrupt archive is refused, exit 4, nothing changed);
2. each SQLite member is copied to ``<live>.restore-<stamp>`` beside the live
   file (same file system, so the switch is an atomic rename) and its
   ``integrity_check`` + row counts are compared with the manifest;
3. objects are put back only where the bucket's bytes differ (idempotent);
4. only then are the gateway and auth services stopped, the live file kept as
   ``<live>.pre-restore-<stamp>`` (rollback = rename it back) and the new
   file renamed into place; the services start again and counts are re-read.

Idempotent: restoring the same archive twice yields the same data (objects that
already match are not rewritten). Archives hold password hashes: keep them secret.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import sqlite3
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from scripts.ops import archive, pg_store
from scripts.ops.console import Console, ExitStatus, OpsError, Step, add_command
from scripts.ops.d1_restore import CloudD1Restore
from scripts.ops.service_control import PidFileControl, ServiceControl
from scripts.ops.stack import ConfigSwitch, Pulumi, Switch, Target
from scripts.ops.stores import ObjectStore, sqlite_counts, sqlite_integrity, sqlite_snapshot

#: archive member → (Target field holding the live path, service that holds it open)
SQLITE_MEMBERS = {
    archive.DATABASE_MEMBER: ("db_path", "gateway"),
    archive.AUTH_MEMBER: ("auth_db_path", "auth"),
}


@dataclass
class RestoreReport:
    archive: str
    dry_run: bool
    manifest: dict[str, Any]
    switched: list[str] = field(default_factory=list)
    kept: dict[str, str] = field(default_factory=dict)
    objects_written: int = 0
    objects_unchanged: int = 0

    def to_json(self) -> dict[str, Any]:
        return {
            "archive": self.archive,
            "dry_run": self.dry_run,
            **self.manifest,
            "switched": self.switched,
            "previous_files": self.kept,
            "objects_written": self.objects_written,
            "objects_unchanged": self.objects_unchanged,
        }


def _prepare_sqlite(staged: Path, live: Path, stamp: str, expected: dict[str, int]) -> Path:
    """Copy into a new file next to the live one and prove it matches the manifest."""
    live.parent.mkdir(parents=True, exist_ok=True)
    new = live.with_name(f"{live.name}.restore-{stamp}")
    sqlite_snapshot(staged, new)
    verdict = sqlite_integrity(new)
    counts = sqlite_counts(new)
    if verdict != "ok" or counts != expected:
        new.unlink(missing_ok=True)
        raise OpsError(
            f"restored copy of {live.name} does not match the manifest "
            f"(integrity {verdict!r}, counts {counts} vs {expected})",
            ExitStatus.VERIFICATION_FAILED,
        )
    return new


def _switch(new: Path, live: Path, stamp: str) -> Path | None:
    """Keep the old file (and its WAL) aside, then rename the verified new file into place."""
    kept = None
    if live.exists():
        con = sqlite3.connect(live)  # service is stopped: fold any WAL into the file we keep
        try:
            con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        finally:
            con.close()
        kept = live.with_name(f"{live.name}.pre-restore-{stamp}")
        os.replace(live, kept)
    for suffix in ("-wal", "-shm", "-journal"):
        side = live.with_name(live.name + suffix)
        if side.exists():
            os.replace(side, live.with_name(f"{live.name}.pre-restore-{stamp}{suffix}"))
    os.replace(new, live)
    return kept


def _restore_objects(
    manifest: archive.Manifest,
    staging: Path,
    target: Target,
    objects: ObjectStore | None,
    report: RestoreReport,
    console: Console,
    dry_run: bool,
) -> None:
    """Put back only objects whose bytes differ (idempotent), each read back and re-hashed."""
    object_members = {n: m for n, m in manifest.members.items() if m["kind"] == "object"}
    if not object_members:
        return
    store = objects if objects is not None else ObjectStore(target)
    with Step(console, f"objects: {len(object_members)} to compare and restore"):
        for name, meta in object_members.items():
            current = store.read(meta["key"])
            if current is not None and archive.content_sha(current) == meta["sha256"]:
                report.objects_unchanged += 1
                continue
            if dry_run:
                report.objects_written += 1
                continue
            store.upload(meta["key"], staging / name, meta.get("content_type", ""))
            back = store.read(meta["key"])
            if back is None or archive.content_sha(back) != meta["sha256"]:
                raise OpsError(
                    f"object {meta['key']} did not read back identical after restore",
                    ExitStatus.VERIFICATION_FAILED,
                )
            report.objects_written += 1
            if report.objects_written % 100 == 0:
                console.progress(f"  {report.objects_written} objects restored")


def _cloud_stores(target: Target, manifest: archive.Manifest) -> bool:
    """The archive restores into a store the stack reaches by reference (a D1 id, a database name)."""
    return (archive.DATABASE_MEMBER in manifest.members and CloudD1Restore.applies(target)) or (
        pg_store.MEMBER in manifest.members and bool(target.auth_db_url)
    )


def run_restore(
    archive_path: Path,
    target: Target,
    console: Console,
    *,
    control: ServiceControl | None,
    objects: ObjectStore | None = None,
    dry_run: bool = False,
    require_sidecar: bool = True,
    now: dt.datetime | None = None,
    switch: Switch | None = None,
) -> RestoreReport:
    stamp = (now or dt.datetime.now(dt.UTC)).strftime("%Y%m%dT%H%M%SZ")
    with tempfile.TemporaryDirectory(prefix="telestack-restore-") as tmp:
        staging = Path(tmp)
        with Step(console, f"verifying {archive_path.name}"):
            manifest = archive.verify_and_extract(archive_path, staging, require_sidecar=require_sidecar)
        report = RestoreReport(str(archive_path), dry_run, manifest.summary())
        if manifest.empty:
            console.warn(
                "this archive is EMPTY (no document, object or user): restoring it empties the stack"
            )

        plans: list[tuple[str, Path, Path]] = []  # (service, new file, live file)
        if switch is None and not dry_run and target.stack and _cloud_stores(target, manifest):
            switch = ConfigSwitch(Pulumi(), target.stack)  # both cloud stores switch in one `pulumi up`
        cloud_d1 = None  # a cloud stack's D1: new database + config switch (scripts/ops/d1_restore.py)
        for member, (attr, service) in SQLITE_MEMBERS.items():
            if member not in manifest.members:
                continue
            live_path = getattr(target, attr)
            if member == archive.DATABASE_MEMBER and CloudD1Restore.applies(target):
                cloud_d1 = CloudD1Restore(target, console, switch)
                cloud_d1.check(dry_run)
                continue
            if not live_path:
                raise OpsError(f"archive has {member} but the stack exposes no {attr}", ExitStatus.USAGE)
            expected = manifest.counts["database" if service == "gateway" else "auth"]
            if dry_run:
                console.progress(
                    f"dry run: would restore {member} → {live_path} ({sum(expected.values())} rows)"
                )
                continue
            with Step(console, f"{member}: restoring into a new file and verifying"):
                plans.append(
                    (
                        service,
                        _prepare_sqlite(staging / member, Path(live_path), stamp, expected),
                        Path(live_path),
                    )
                )

        if cloud_d1 is not None:
            cloud_d1.prepare(staging / archive.DATABASE_MEMBER, manifest.counts["database"], stamp, dry_run)
        try:
            # a cloud stack's PostgreSQL auth store: new database + verify now, switch below (pg_store.py)
            auth_pg = pg_store.prepare_restore(
                staging, manifest, target, console, stamp=stamp, dry_run=dry_run, switch=switch
            )
            _restore_objects(manifest, staging, target, objects, report, console, dry_run)
        except OpsError as exc:
            if cloud_d1 is None or not cloud_d1.new_id:
                raise
            raise OpsError(
                f"{exc}. The verified new D1 {cloud_d1.new_name} ({cloud_d1.new_id}) was not switched to "
                "either: delete it when done",
                exc.status,
            ) from None

        if cloud_d1 is not None and not dry_run:
            cloud_d1.switch_over()  # prints the rollback command
            report.switched.append(f"telestack:d1DatabaseId={cloud_d1.new_id}")
            report.kept["telestack:d1DatabaseId"] = cloud_d1.live_id
        if not dry_run:
            pg_store.switch_over(auth_pg, console, report.switched, report.kept, target.stack)
        if report.switched and (apply := getattr(switch, "apply", None)) is not None:
            try:
                with Step(console, f"applying the switch to stack {target.stack}: pulumi up"):
                    apply()
            except OpsError as exc:
                raise OpsError(
                    f"{exc}. The stack config now names the restored stores ({', '.join(report.switched)}) "
                    f"but was not applied: fix the cause and run `pulumi up --stack {target.stack}`, or roll "
                    "back with the commands printed above",
                    exc.status,
                ) from None
        if dry_run or not plans:
            return report
        services = [s for s, _, _ in plans]
        stopped: list[str] = []
        try:
            for service in services:
                if control is not None:
                    control.stop(service)
                    stopped.append(service)
            for _service, new, live in plans:
                kept = _switch(new, live, stamp)
                report.switched.append(str(live))
                if kept:
                    report.kept[str(live)] = str(kept)
        finally:
            for _, new, _ in plans:
                new.unlink(missing_ok=True)  # a file we did not switch in (an error above)
            if stopped and control is not None:
                control.start(stopped)
        for service, _, live in plans:
            expected = manifest.counts["database" if service == "gateway" else "auth"]
            if sqlite_counts(live) != expected:
                raise OpsError(
                    f"{live} counts differ from the manifest after switch-over; previous file kept "
                    f"at {report.kept.get(str(live))}",
                    ExitStatus.VERIFICATION_FAILED,
                )
    return report


def command(args: argparse.Namespace, target: Target, console: Console) -> ExitStatus:
    control: ServiceControl | None = None
    if target.pid_files:
        control = PidFileControl(target.stack, target.pid_files, console)
    elif not args.dry_run and not args.services_stopped and (target.db_path or target.auth_db_path):
        raise OpsError(
            "this stack exposes no pid files, so restore cannot stop the gateway before switching "
            "files: stop it yourself and pass --services-stopped",
            ExitStatus.USAGE,
        )
    report = run_restore(
        Path(args.archive),
        target,
        console,
        control=control,
        dry_run=args.dry_run,
        require_sidecar=not args.no_sidecar,
    )
    verb = "verified (dry run)" if args.dry_run else "restored"
    console.result(
        report.to_json(),
        f"OK {verb} {Path(args.archive).name}: {report.manifest['documents']} documents, "
        f"{report.manifest['users']} users, {report.manifest['objects']} objects "
        f"({report.objects_written} written, {report.objects_unchanged} unchanged)",
    )
    return ExitStatus.OK


def add_parser(sub: Any) -> None:
    p = add_command(
        sub,
        "restore",
        command,
        __doc__,
        help="verify an archive, restore into new files, switch over only on success",
        examples=[
            "restore --stack local .telestack/backups/telestack-local-<stamp>.tar.gz",
            "restore --stack local ARCHIVE --dry-run   # verify only",
        ],
    )
    p.add_argument("archive", help="path of a telestack-*.tar.gz written by `backup`")
    p.add_argument(
        "--no-sidecar",
        action="store_true",
        help="accept an archive without its .sha256 file (per-member checksums still apply)",
    )
    p.add_argument(
        "--services-stopped",
        action="store_true",
        help="you stopped the gateway and auth services yourself (stacks without pid files)",
    )


__all__ = ["RestoreReport", "add_parser", "run_restore"]
