"""backup → wipe → restore against real SQLite files, the real stand-in store and a real SeaweedFS.

What must hold: every document, object and user comes back
byte-identical; a corrupt archive is refused with the live data untouched; an
empty database is reported as empty, never as a quiet success.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import signal
import sqlite3
import subprocess
import sys
import tarfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from infra.local_process import write_pid_file
from scripts.ops import archive
from scripts.ops.backup import run_backup
from scripts.ops.cli import main
from scripts.ops.console import Console, ExitStatus, OpsError
from scripts.ops.restore import run_restore
from scripts.ops.service_control import PidFileControl
from scripts.ops.stack import Target
from scripts.ops.stores import ObjectStore
from tests.support.ops import file_target, flip_one_byte, migrate_sqlite
from tests.support.seaweedfs import SeaweedFS, private_seaweedfs

pytestmark = pytest.mark.stack


@pytest.fixture(scope="module")
def s3(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SeaweedFS]:
    with private_seaweedfs(tmp_path_factory, "ops-backup") as server:
        yield server


def _fill(target: Target, store: ObjectStore) -> None:
    con = sqlite3.connect(target.db_path)
    with con:
        for i in range(25):
            data = json.dumps(
                {"title": f"note {i} — ünïcødé ✓", "n": i, "tags": ["a", "b"][: i % 3]},
                ensure_ascii=False,
                separators=(",", ":"),
            )
            con.execute(
                "INSERT INTO documents VALUES (?,?,?,?,?,?,?)",
                ("notes", f"doc-{i:03d}", f"user-{i % 3}", data, 1 + i % 4, 1000 + i, 2000 + i),
            )
        con.execute(
            "INSERT INTO outbox (collection, doc_id, owner_id, version, op, payload, created_at) "
            "VALUES ('notes','doc-001','user-1',2,'updated','{}',5)"
        )
    con.close()
    from infra.standins.supertokens.store import Store, User

    auth = Store(target.auth_db_path)
    try:
        for i in range(3):
            auth.insert_user(
                "public", User(f"user-{i}", "public", f"u{i}@example.test", f"$argon2id$hash{i}", 10 + i)
            )
    finally:
        auth.close()
    for i in range(4):
        path = Path(target.state_dir) / f"obj{i}"
        path.write_bytes(os.urandom(1000 * (i + 1)) + b"\x00end")
        store.upload(f"users/user-{i % 3}/file-{i}.bin", path, "application/octet-stream")


def _snapshot(target: Target, store: ObjectStore) -> dict[str, object]:
    def rows(path: str, sql: str) -> list[tuple[object, ...]]:
        con = sqlite3.connect(path)
        try:
            return con.execute(sql).fetchall()
        finally:
            con.close()

    return {
        "documents": rows(target.db_path, "SELECT * FROM documents ORDER BY collection, id"),
        "outbox": rows(target.db_path, "SELECT * FROM outbox ORDER BY seq"),
        "users": rows(target.auth_db_path, "SELECT * FROM users ORDER BY user_id"),
        "objects": {o.key: store.read(o.key) for o in store.list()},
    }


def _wipe(target: Target, store: ObjectStore) -> None:
    for path, table in (
        (target.db_path, "documents"),
        (target.db_path, "outbox"),
        (target.auth_db_path, "users"),
    ):
        con = sqlite3.connect(path)
        with con:
            con.execute(f"DELETE FROM {table}")  # noqa: S608 - fixed names
        con.close()
    for obj in list(store.list()):
        store.delete(obj.key)


def _console() -> Console:
    return Console(stdout=io.StringIO(), stderr=io.StringIO())


class _Gateway:
    """A stand-in for the gateway process: holds the database open, has a pid file, can be restarted."""

    def __init__(self, db_path: str, pid_file: Path) -> None:
        self.db_path, self.pid_file = db_path, pid_file
        self.proc: subprocess.Popen[bytes] | None = None
        self.starts = 0

    def start(self) -> None:
        if self.proc is not None:  # the previous one was stopped through its pid file: reap it
            self.proc.wait(timeout=10)
        code = (
            "import sqlite3,sys,time; c=sqlite3.connect(sys.argv[1]); "
            "c.execute('SELECT 1 FROM documents'); time.sleep(3600)"
        )
        self.proc = subprocess.Popen([sys.executable, "-c", code, self.db_path])
        write_pid_file(str(self.pid_file), self.proc.pid)
        self.starts += 1

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        if self.proc:
            self.proc.wait(timeout=10)


Stack = tuple[Target, ObjectStore, _Gateway]


class _LocalControl(PidFileControl):
    """PidFileControl as the CLI uses it, but 'pulumi up' is replaced by restarting our fake gateway."""

    def __init__(self, gateway: _Gateway, console: Console) -> None:
        super().__init__(
            "test", {"gateway": str(gateway.pid_file), "auth": str(gateway.pid_file) + ".auth"}, console
        )
        self.gateway = gateway
        self.stopped: list[str] = []
        self.started: list[list[str]] = []

    def stop(self, service: str) -> None:
        self.stopped.append(service)
        super().stop(service)

    def start(self, services: list[str]) -> None:
        self.started.append(services)
        if "gateway" in services:
            self.gateway.start()


@pytest.fixture
def stack(tmp_path: Path, s3: SeaweedFS) -> Iterator[tuple[Target, ObjectStore, _Gateway]]:
    state = tmp_path / "state"
    state.mkdir()
    target = file_target("test", state, s3)
    migrate_sqlite(Path(target.db_path))
    from infra.standins.supertokens.store import Store

    Store(target.auth_db_path).close()
    store = ObjectStore(target)
    for obj in list(store.list()):
        store.delete(obj.key)
    gateway = _Gateway(target.db_path, state / "gateway.pid")
    gateway.start()
    try:
        yield target, store, gateway
    finally:
        gateway.stop()


def test_backup_wipe_restore_is_byte_identical(stack: Stack, tmp_path: Path) -> None:
    target, store, gateway = stack
    _fill(target, store)
    before = _snapshot(target, store)
    console = _console()

    result = run_backup(target, tmp_path / "backups", console)
    assert result.manifest.summary() == {"documents": 25, "users": 3, "objects": 4, "empty": False}
    assert archive.sidecar(result.archive).read_text().startswith(result.sha256)

    _wipe(target, store)
    assert _snapshot(target, store) != before

    control = _LocalControl(gateway, console)
    report = run_restore(result.archive, target, console, control=control)

    assert _snapshot(target, store) == before
    assert control.stopped == ["gateway", "auth"] and control.started == [["gateway", "auth"]]
    assert gateway.starts == 2 and gateway.proc is not None and gateway.proc.poll() is None
    assert report.objects_written == 4
    # the wiped live files were kept aside, not overwritten in place
    kept = Path(report.kept[target.db_path])
    assert (
        kept.exists() and sqlite3.connect(kept).execute("SELECT count(*) FROM documents").fetchone()[0] == 0
    )
    assert not list(Path(target.state_dir).glob("*.restore-*"))

    # idempotent: restoring the same archive again changes no object and keeps the same content
    again = run_restore(result.archive, target, console, control=_LocalControl(gateway, console))
    assert again.objects_written == 0 and again.objects_unchanged == 4
    assert _snapshot(target, store) == before


def _rewrite_member(src: Path, dest: Path, member: str) -> None:
    """Flip one byte of one member inside an otherwise valid archive (bit rot the sidecar would not see)."""
    with tarfile.open(src, "r:gz") as tin, tarfile.open(dest, "w:gz") as tout:
        for info in tin.getmembers():
            data = tin.extractfile(info).read() if info.isfile() else b""  # type: ignore[union-attr]
            if info.name == member:
                data = data[:-1] + bytes([data[-1] ^ 0xFF])
            tout.addfile(info, io.BytesIO(data))
    digest = hashlib.sha256(dest.read_bytes()).hexdigest()
    archive.sidecar(dest).write_text(f"{digest}  {dest.name}\n")


def _live_fingerprint(target: Target) -> dict[str, str]:
    state = Path(target.state_dir)
    return {
        p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(state.iterdir()) if p.is_file()
    }


@pytest.mark.parametrize("damage", ["archive_bytes", "member_bytes", "missing_sidecar"])
def test_corrupt_archive_is_refused_and_live_data_untouched(
    stack: Stack, tmp_path: Path, damage: str
) -> None:
    target, store, gateway = stack
    _fill(target, store)
    result = run_backup(target, tmp_path / "backups", _console())
    bad = tmp_path / "bad.tar.gz"
    if damage == "archive_bytes":
        flip_one_byte(result.archive, bad)
    elif damage == "member_bytes":
        _rewrite_member(result.archive, bad, archive.DATABASE_MEMBER)
    else:
        bad.write_bytes(result.archive.read_bytes())
    before = _snapshot(target, store)
    live = _live_fingerprint(target)
    control = _LocalControl(gateway, _console())

    with pytest.raises(OpsError) as err:
        run_restore(bad, target, _console(), control=control)

    assert err.value.status == ExitStatus.VERIFICATION_FAILED
    assert control.stopped == [] and gateway.starts == 1
    assert _live_fingerprint(target) == live
    assert _snapshot(target, store) == before


def _env(monkeypatch: pytest.MonkeyPatch, target: Target) -> None:
    for key in list(os.environ):
        if key.startswith("TELESTACK_"):
            monkeypatch.delenv(key)
    for name in (
        "db_path",
        "auth_db_path",
        "state_dir",
        "s3_endpoint",
        "s3_bucket",
        "s3_access_key_id",
        "s3_secret_access_key",
    ):
        monkeypatch.setenv(f"TELESTACK_{name.upper()}", getattr(target, name))


def test_empty_database_backup_is_reported_empty(
    stack: Stack, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target, _store, _gateway = stack
    _env(monkeypatch, target)
    out = tmp_path / "backups"
    console = _console()

    status = main(["backup", "--json", "--out", str(out)], console)

    assert status == ExitStatus.VERIFICATION_FAILED
    payload = json.loads(console.stdout.getvalue())  # type: ignore[attr-defined]
    assert payload["status"] == "empty" and payload["empty"] is True and payload["documents"] == 0
    assert "EMPTY BACKUP" in console.stderr.getvalue()  # type: ignore[attr-defined]
    written = Path(payload["archive"])
    assert written.stat().st_size > 0  # the schema is there: never a 0-byte "success"
    with tarfile.open(written) as tar:
        assert archive.DATABASE_MEMBER in tar.getnames()

    console = _console()
    assert main(["backup", "--allow-empty", "--out", str(out)], console) == ExitStatus.OK
    assert console.stdout.getvalue().startswith("EMPTY ")  # type: ignore[attr-defined]


def test_backup_of_a_missing_database_is_a_dependency_error(
    stack: Stack, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target, _store, _gateway = stack
    _env(monkeypatch, target)
    monkeypatch.setenv("TELESTACK_DB_PATH", str(tmp_path / "nope.sqlite3"))
    console = _console()
    assert main(["backup", "--out", str(tmp_path / "b")], console) == ExitStatus.DEPENDENCY_UNHEALTHY
    assert "does not exist" in console.stderr.getvalue()  # type: ignore[attr-defined]
    assert not list((tmp_path / "b").glob("*.tar.gz"))


def test_cli_round_trip_prints_no_secret(
    stack: Stack, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target, store, gateway = stack
    _fill(target, store)
    _env(monkeypatch, target)
    monkeypatch.setenv("TELESTACK_PID_FILES", json.dumps({"gateway": str(gateway.pid_file)}))
    out = tmp_path / "backups"
    console = _console()
    assert main(["backup", "--json", "--out", str(out)], console) == ExitStatus.OK
    produced = json.loads(console.stdout.getvalue())  # type: ignore[attr-defined]
    assert produced["documents"] == 25 and produced["users"] == 3 and produced["objects"] == 4

    dry = _console()
    assert main(["restore", "--dry-run", "--json", produced["archive"]], dry) == ExitStatus.OK
    assert json.loads(dry.stdout.getvalue())["dry_run"] is True  # type: ignore[attr-defined]
    for c in (console, dry):
        text = c.stdout.getvalue() + c.stderr.getvalue()  # type: ignore[attr-defined]
        assert target.s3_secret_access_key not in text and target.s3_access_key_id not in text


def test_restore_dry_run_verifies_but_writes_nothing(stack: Stack, tmp_path: Path) -> None:
    target, store, gateway = stack
    _fill(target, store)
    result = run_backup(target, tmp_path / "backups", _console())
    _wipe(target, store)
    wiped, live = _snapshot(target, store), _live_fingerprint(target)
    control = _LocalControl(gateway, _console())

    report = run_restore(result.archive, target, _console(), control=control, dry_run=True)

    assert report.dry_run and report.objects_written == 4  # would write
    assert _snapshot(target, store) == wiped and _live_fingerprint(target) == live
    assert control.stopped == [] and gateway.starts == 1
