"""Benchmark ops ``backup`` and ``restore`` against the least work that does the same job (not a test).

    .venv/bin/python scripts/bench_backup.py [--docs 20000] [--users 2000] [--objects 200] \
        [--object-kib 64] [--rounds 3] [--json]

Setup, in a temp dir and on loopback only: a gateway SQLite file migrated with the real migrations and
filled with N ~1 KB JSON documents (+ one outbox row per ten), the auth stand-in's SQLite store with U
users, and a real SeaweedFS (``weed mini``) holding M random (incompressible) objects. Best of
``--rounds`` for each operation, ours and its baseline measured in the same round, one after the other:

- backup: ``run_backup`` vs SQLite online backup of both files + GET of every object with boto3 + one
  tar.gz of it all (at ``archive.write``'s gzip level);
- restore (bucket emptied first, untimed): ``run_restore(control=None)`` vs extracting the tar.gz +
  copying both SQLite files into place + a PUT per object;
- restore again (every object already identical): ``run_restore`` vs extracting + copying both files
  + one listing compared by size and ETag (MD5) — the cheapest way to learn that nothing changed.

Why the baseline is fair: it moves the same bytes through the same libraries (sqlite3 backup API,
boto3 to the same server, tarfile/gzip) and produces an equivalent archive or restored state, but skips
everything that makes ours safe (per-member sha256, integrity_check and row counts, re-reading the
archive, new-file-then-rename, read-back of each object). So ratio - 1 is the price of those safeguards
plus any waste. Figures go to stdout (``--json``: one JSON object), progress to stderr.
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import io
import json
import os
import random
import shutil
import sqlite3
import sys
import tarfile
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path[0] = str(ROOT)  # not scripts/: its modules (e.g. secrets.py) would shadow the stdlib

WORDS = (
    "alpha bravo charlie delta echo foxtrot golf hotel india juliet kilo lima mike november oscar papa "
    "quebec romeo sierra tango uniform victor whiskey xray yankee zulu ünïcødé ✓"
).split()
DB_MEMBER, AUTH_MEMBER = "database/gateway.sqlite3", "auth/auth.sqlite3"  # archive.py's layout
CONTENT_TYPES = ("image/png", "image/jpeg", "application/pdf", "application/octet-stream")


def log(message: str) -> None:
    print(f"[bench] {message}", file=sys.stderr, flush=True)


# -- setup ---------------------------------------------------------------------------------------------


def _document(rng: random.Random, i: int) -> str:
    """A ~1 KB note as the gateway stores it (compact JSON, non-ASCII kept)."""
    body = " ".join(rng.choice(WORDS) for _ in range(130))[:900]
    doc = {
        "title": f"note {i} — {rng.choice(WORDS)}",
        "body": body,
        "status": rng.choice(("open", "done", "archived")),
        "n": i,
        "tags": rng.sample(WORDS[:8], rng.randrange(4)),
        "due": f"2026-{1 + i % 12:02d}-{1 + i % 28:02d}",
    }
    return json.dumps(doc, ensure_ascii=False, separators=(",", ":"))


def fill_database(path: Path, docs: int) -> None:
    from tests.support.ops import migrate_sqlite

    migrate_sqlite(path)
    rng = random.Random(8)
    con = sqlite3.connect(path)
    with con:
        con.executemany(
            "INSERT INTO documents VALUES (?,?,?,?,?,?,?)",
            (
                ("notes", f"doc-{i:06d}", f"user-{i % 97}", _document(rng, i), 1 + i % 4,
                 1_764_000_000_000 + i, 1_764_000_500_000 + i)
                for i in range(docs)
            ),
        )
        con.executemany(
            "INSERT INTO outbox (collection, doc_id, owner_id, version, op, payload, created_at, sent_at) "
            "VALUES ('notes',?,?,1,'created','{}',?,?)",
            ((f"doc-{i:06d}", f"user-{i % 97}", 1_764_000_000_000 + i, 1_764_000_000_100 + i)
             for i in range(0, docs, 10)),
        )
    con.close()


def fill_auth(path: Path, users: int) -> None:
    from infra.standins.supertokens.store import Store, User

    store = Store(path)
    try:
        store.conn.execute("BEGIN")
        for i in range(users):
            # an argon2id-shaped hash: the real store's row size, without paying argon2 U times
            fake_hash = "$argon2id$v=19$m=65536,t=3,p=1$" + hashlib.sha256(f"s{i}".encode()).hexdigest()
            store.insert_user("public", User(f"user-{i:05d}", "public", f"u{i}@example.test", fake_hash,
                                             1_764_000_000_000 + i))
        store.conn.execute("COMMIT")
    finally:
        store.close()


def fill_bucket(client: Any, bucket: str, objects: int, size: int) -> None:
    for i in range(objects):
        client.put_object(Bucket=bucket, Key=f"users/user-{i % 97}/file-{i:04d}.bin", Body=os.urandom(size),
                          ContentType=CONTENT_TYPES[i % len(CONTENT_TYPES)])


def empty_bucket(client: Any, bucket: str) -> None:
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket):
        for item in page.get("Contents", []):
            client.delete_object(Bucket=bucket, Key=item["Key"])


# -- instrumentation -----------------------------------------------------------------------------------


class StepClock(io.TextIOBase):
    """The console's stderr: timestamps each ``[ops] X ...`` / ``[ops] X: done`` line to time each Step."""

    def __init__(self) -> None:
        self.started: dict[str, float] = {}
        self.steps: dict[str, float] = {}
        self._buf = ""

    def write(self, text: str) -> int:
        now = time.perf_counter()
        self._buf += text
        while "\n" in self._buf:
            line, self._buf = self._buf.split("\n", 1)
            what = line.removeprefix("[ops] ")
            if what.endswith(" ..."):
                self.started[what[:-4]] = now
            elif ": done (" in what:
                name = what.rsplit(": done (", 1)[0]
                if name in self.started:
                    self.steps[name] = now - self.started.pop(name)
        return len(text)


@contextmanager
def count_requests(client: Any) -> Iterator[Counter[str]]:
    """S3 requests by operation name, as botocore sends them (retries included)."""
    seen: Counter[str] = Counter()

    def hook(model: Any, **_: Any) -> None:
        seen[model.name] += 1

    client.meta.events.register("before-call.s3", hook)
    try:
        yield seen
    finally:
        client.meta.events.unregister("before-call.s3", hook)


def _generic(step: str) -> str:
    """Step names carry file and archive names: keep what identifies the phase."""
    if step.startswith("writing telestack-"):
        return "writing archive"
    if step.startswith("verifying telestack-"):
        return "verifying archive"
    return step


def timed(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> tuple[float, Any]:
    t0 = time.perf_counter()
    out = fn(*args, **kwargs)
    return time.perf_counter() - t0, out


# -- baselines -----------------------------------------------------------------------------------------


def baseline_backup(target: Any, client: Any, out: Path) -> Path:
    from scripts.ops.archive import GZIP_LEVEL  # compress as archive.write does: same work, same size

    staging = Path(tempfile.mkdtemp(prefix="base-backup-", dir=out.parent))
    try:
        for src, member in ((target.db_path, DB_MEMBER), (target.auth_db_path, AUTH_MEMBER)):
            dest = staging / member
            dest.parent.mkdir(parents=True, exist_ok=True)
            s, d = sqlite3.connect(src), sqlite3.connect(dest)
            try:
                s.backup(d)
            finally:
                d.close()
                s.close()
        for page in client.get_paginator("list_objects_v2").paginate(Bucket=target.s3_bucket):
            for item in page.get("Contents", []):
                path = staging / "objects" / item["Key"]
                path.parent.mkdir(parents=True, exist_ok=True)
                body = client.get_object(Bucket=target.s3_bucket, Key=item["Key"])["Body"]
                with path.open("wb") as fh:
                    shutil.copyfileobj(body, fh, 1 << 20)
        with tarfile.open(out, "w:gz", compresslevel=GZIP_LEVEL) as tar:
            for path in sorted(p for p in staging.rglob("*") if p.is_file()):
                tar.add(path, arcname=str(path.relative_to(staging)), recursive=False)
    finally:
        shutil.rmtree(staging)
    return out


def _extract_and_place(archive_path: Path, target: Any, work: Path) -> Path:
    staging = Path(tempfile.mkdtemp(prefix="base-restore-", dir=work))
    with tarfile.open(archive_path, "r:gz") as tar:
        tar.extractall(staging, filter="data")
    for member, live in ((DB_MEMBER, target.db_path), (AUTH_MEMBER, target.auth_db_path)):
        tmp = Path(live + ".base-tmp")
        shutil.copyfile(staging / member, tmp)
        os.replace(tmp, live)
    return staging


def _objects(staging: Path) -> Iterator[tuple[str, Path]]:
    root = staging / "objects"
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        yield str(path.relative_to(root)), path


def baseline_restore(archive_path: Path, target: Any, client: Any, work: Path, types: dict[str, str]) -> int:
    staging = _extract_and_place(archive_path, target, work)
    try:
        n = 0
        for key, path in _objects(staging):
            with path.open("rb") as fh:
                client.put_object(Bucket=target.s3_bucket, Key=key, Body=fh, ContentType=types[key])
            n += 1
        return n
    finally:
        shutil.rmtree(staging)


def baseline_restore_unchanged(archive_path: Path, target: Any, client: Any, work: Path) -> int:
    staging = _extract_and_place(archive_path, target, work)
    try:
        listed = {
            item["Key"]: (int(item["Size"]), item["ETag"].strip('"'))
            for page in client.get_paginator("list_objects_v2").paginate(Bucket=target.s3_bucket)
            for item in page.get("Contents", [])
        }
        differ = 0
        for key, path in _objects(staging):
            data = path.read_bytes()
            if listed.get(key) != (len(data), hashlib.md5(data, usedforsecurity=False).hexdigest()):
                differ += 1
        return differ
    finally:
        shutil.rmtree(staging)


# -- the run -------------------------------------------------------------------------------------------


def run(args: argparse.Namespace, work: Path) -> dict[str, Any]:
    from scripts.ops.backup import run_backup
    from scripts.ops.console import Console
    from scripts.ops.restore import run_restore
    from scripts.ops.stores import ObjectStore
    from tests.support.ops import file_target
    from tests.support.seaweedfs import start_seaweedfs

    log("starting weed mini ...")
    s3 = start_seaweedfs(work, bucket="bench-backup")
    try:
        state = work / "state"
        state.mkdir()
        target = file_target("bench", state, s3)
        client = s3.client()
        log(f"filling: {args.docs} documents, {args.users} users, {args.objects} x {args.object_kib} KiB")
        fill_database(Path(target.db_path), args.docs)
        fill_auth(Path(target.auth_db_path), args.users)
        fill_bucket(client, s3.bucket, args.objects, args.object_kib * 1024)
        types = {f"users/user-{i % 97}/file-{i:04d}.bin": CONTENT_TYPES[i % len(CONTENT_TYPES)]
                 for i in range(args.objects)}
        sizes = {"gateway_db": os.path.getsize(target.db_path),
                 "auth_db": os.path.getsize(target.auth_db_path),
                 "objects": args.objects * args.object_kib * 1024}

        best: dict[str, float] = {}
        steps: dict[str, dict[str, float]] = {}
        requests: dict[str, dict[str, int]] = {}
        archive_path: Path | None = None
        base_archive_bytes = 0
        stamp0 = dt.datetime(2026, 11, 28, tzinfo=dt.UTC)

        def keep(op: str, took: float, clock: StepClock | None = None,
                 seen: Counter[str] | None = None) -> None:
            if took < best.get(op, float("inf")):
                best[op] = took
                if clock is not None:
                    steps[op] = {_generic(k): round(v, 3) for k, v in clock.steps.items()}
                if seen is not None:
                    requests[op] = dict(seen)

        for r in range(args.rounds):
            now = stamp0 + dt.timedelta(minutes=r)
            log(f"round {r + 1}/{args.rounds}: backup ...")
            clock, store = StepClock(), ObjectStore(target)
            with count_requests(store._s3) as seen:
                took, result = timed(run_backup, target, work / "ours", Console(io.StringIO(), clock),
                                     objects=store, now=now)
            keep("backup", took, clock, seen)
            if archive_path is None:
                archive_path = result.archive
                typed = {m["key"]: m["content_type"] for m in result.manifest.members.values()
                         if m["kind"] == "object"}
                assert typed == types, "the archive lost objects' content types"
            else:  # one archive is enough to restore from; keep the disk small
                result.archive.unlink()
                Path(f"{result.archive}.sha256").unlink()
            base_out = work / "base.tar.gz"
            took, _ = timed(baseline_backup, target, client, base_out)
            keep("backup:base", took)
            base_archive_bytes = base_out.stat().st_size
            base_out.unlink()

            log(f"round {r + 1}/{args.rounds}: restore into an empty bucket ...")
            empty_bucket(client, s3.bucket)
            clock, store = StepClock(), ObjectStore(target)
            with count_requests(store._s3) as seen:
                took, restored = timed(run_restore, archive_path, target, Console(io.StringIO(), clock),
                                       control=None, objects=store, now=now)
            assert restored.objects_written == args.objects, restored
            keep("restore", took, clock, seen)
            empty_bucket(client, s3.bucket)
            took, written = timed(baseline_restore, archive_path, target, client, work, types)
            assert written == args.objects
            keep("restore:base", took)

            log(f"round {r + 1}/{args.rounds}: restore again (objects identical) ...")
            clock, store = StepClock(), ObjectStore(target)
            with count_requests(store._s3) as seen:
                took, restored = timed(run_restore, archive_path, target, Console(io.StringIO(), clock),
                                       control=None, objects=store, now=now + dt.timedelta(seconds=30))
            assert restored.objects_written == 0 and restored.objects_unchanged == args.objects, restored
            keep("restore-unchanged", took, clock, seen)
            took, differ = timed(baseline_restore_unchanged, archive_path, target, client, work)
            assert differ == 0, f"{differ} objects differ by size/ETag"
            keep("restore-unchanged:base", took)
            for old in state.glob("*.pre-restore-*"):  # the kept previous files: not needed here
                old.unlink()
        client.close()
    finally:
        s3.stop()
    assert archive_path is not None
    return {
        "setup": {"documents": args.docs, "users": args.users, "objects": args.objects,
                  "object_kib": args.object_kib, "rounds": args.rounds, "bytes": sizes},
        "archive_bytes": archive_path.stat().st_size,
        "baseline_archive_bytes": base_archive_bytes,
        "operations": {
            op: {"ours_s": round(best[op], 3), "baseline_s": round(best[op + ":base"], 3),
                 "ratio": round(best[op] / best[op + ":base"], 2),
                 "archive_mb_per_s": round(archive_path.stat().st_size / 1e6 / best[op], 1),
                 "steps_s": steps.get(op, {}), "s3_requests": requests.get(op, {})}
            for op in ("backup", "restore", "restore-unchanged")
        },
    }


def report(figures: dict[str, Any], load_before: float) -> None:
    s = figures["setup"]
    mb = figures["archive_bytes"] / 1e6
    print(
        f"\nbackup/restore benchmark: {s['documents']} documents ({s['bytes']['gateway_db'] / 1e6:.1f} MB), "
        f"{s['users']} users ({s['bytes']['auth_db'] / 1e6:.1f} MB), {s['objects']} x {s['object_kib']} KiB "
        f"objects; best of {s['rounds']}"
    )
    print(f"{'operation':<28}{'ours s':>8}{'baseline s':>12}{'ratio':>8}{'MB/s':>8}{'archive MB':>12}")
    labels = {"backup": "backup", "restore": "restore (empty bucket)",
              "restore-unchanged": "restore again (identical)"}
    for op, label in labels.items():
        f = figures["operations"][op]
        print(f"{label:<28}{f['ours_s']:>8.2f}{f['baseline_s']:>12.2f}{f['ratio']:>8.2f}"
              f"{f['archive_mb_per_s']:>8.1f}{mb:>12.1f}")
    print(f"(baseline archive {figures['baseline_archive_bytes'] / 1e6:.1f} MB; "
          "MB/s = our archive / our time)")
    for op, label in labels.items():
        f = figures["operations"][op]
        parts = ", ".join(f"{k} {v:.2f}s" for k, v in f["steps_s"].items())
        reqs = ", ".join(f"{k} {v}" for k, v in sorted(f["s3_requests"].items()))
        print(f"\n{label} steps (best round): {parts}\n  S3 requests: {reqs}")
    load = os.getloadavg()
    print(f"\nload average: {load_before:.2f} before, {load[0]:.2f}/{load[1]:.2f}/{load[2]:.2f} after, "
          f"on {os.cpu_count()} CPUs")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--docs", type=int, default=20_000, help="documents in the gateway database")
    parser.add_argument("--users", type=int, default=2_000, help="users in the auth store")
    parser.add_argument("--objects", type=int, default=200, help="objects in the bucket")
    parser.add_argument("--object-kib", type=int, default=64, help="size of each object")
    parser.add_argument("--rounds", type=int, default=3, help="best of this many rounds per operation")
    parser.add_argument("--json", action="store_true", help="print the figures as one JSON object")
    args = parser.parse_args()
    if args.rounds < 1 or min(args.docs, args.users, args.objects, args.object_kib) < 1:
        parser.error("--rounds, --docs, --users, --objects and --object-kib must be >= 1")
    load_before = os.getloadavg()[0]
    work = Path(tempfile.mkdtemp(prefix="bench-backup-"))
    try:
        figures = run(args, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    if args.json:
        print(json.dumps(figures, indent=2, sort_keys=True))
    else:
        report(figures, load_before)


if __name__ == "__main__":
    main()
