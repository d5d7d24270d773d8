"""backup → wipe → restore of a cloud stack's auth store against a REAL PostgreSQL server.

The schema is SuperTokens Core's own (supertokens-postgresql-plugin: apps, tenants, app_id_to_user_id,
all_auth_recipe_users, emailpassword_users, session_info, user_metadata, key_value, webauthn_users,
webauthn_credentials with its BYTEA key), plus one table of ours with the types SuperTokens does not
use yet (jsonb, an identity sequence, extreme bigints, NULLs) so the dump's fidelity is proven for them.
What must hold: every table comes back byte-identical in a NEW database, the live one is never
written, the stack is switched once and only after the counts match, a bad archive creates nothing,
and the password is in no argv and no output.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import json
import os
import subprocess
import tarfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any, BinaryIO

import pytest

from scripts.ops import archive, backup, pg_store, restore
from scripts.ops.backup import run_backup
from scripts.ops.cli import main
from scripts.ops.console import Console, ExitStatus, OpsError
from scripts.ops.restore import run_restore
from scripts.ops.stack import Target
from scripts.ops.stores import ObjectInfo
from tests.support.auth_store import (
    LIVE,
    SCHEMA,
    auth_store_snapshot,
    auth_store_tables,
    fill_auth_store,
    wipe_auth_store,
)
from tests.support.ops import flip_one_byte, migrate_sqlite
from tests.support.postgres import PostgresServer, start_postgres

pytestmark = pytest.mark.stack

NOW = dt.datetime(2026, 11, 28, 18, 30, 5, tzinfo=dt.UTC)
RESTORED = "supertokens_restore_20261128t183005z"

class _NoObjects:
    """The bucket is not what these tests are about (tests/integration/test_ops_backup_restore.py is)."""

    def list(self, prefix: str = "") -> Iterator[ObjectInfo]:
        return iter(())

    def download(self, key: str, fh: BinaryIO) -> None:  # pragma: no cover - nothing listed
        raise AssertionError(key)


class _Switch:
    """Records ConfigSwitch calls (the real one runs `pulumi config set` + `pulumi up`)."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str]] = []

    def __call__(self, key: str, value: str) -> None:
        self.calls.append((key, value))

    def current(self, key: str) -> str | None:
        return None


@pytest.fixture(scope="module")
def server() -> Iterator[PostgresServer]:
    srv = start_postgres()
    try:
        yield srv
    finally:
        srv.stop()


@pytest.fixture
def target(server: PostgresServer, tmp_path: Path) -> Iterator[Target]:
    """A cloud-shaped stack: the auth store is PostgreSQL (auth_db_url); the gateway's DB a SQLite file."""
    for name in server.databases() - {"postgres"}:
        server.drop_database(name)
    server.create_database(LIVE)
    with server.connect(LIVE) as con:
        con.execute(SCHEMA)
    state = tmp_path / "state"
    state.mkdir()
    migrate_sqlite(state / "gateway.sqlite3")
    yield Target(
        stack="test",
        db_path=str(state / "gateway.sqlite3"),
        state_dir=str(state),
        auth_db_url=server.url(LIVE),
    )


def _console() -> Console:
    return Console(stdout=io.StringIO(), stderr=io.StringIO())


def _output(console: Console) -> str:
    return console.stdout.getvalue() + console.stderr.getvalue()  # type: ignore[attr-defined]


def _backup(target: Target, tmp_path: Path, console: Console | None = None) -> backup.BackupResult:
    return run_backup(target, tmp_path / "backups", console or _console(), objects=_NoObjects())  # type: ignore[arg-type]


def _restore(
    path: Path, target: Target, switch: _Switch, console: Console | None = None, **kwargs: Any
) -> Any:
    return run_restore(path, target, console or _console(), control=None, switch=switch, now=NOW, **kwargs)


# --- the cycle ---------------------------------------------------------------------------------


def test_backup_wipe_restore_into_a_new_database_is_byte_identical(
    server: PostgresServer, target: Target, tmp_path: Path
) -> None:
    with server.connect(LIVE) as con:
        fill_auth_store(con)
    before = auth_store_snapshot(server, LIVE)
    console = _console()

    result = _backup(target, tmp_path, console)

    counts = result.manifest.counts["auth"]
    assert counts["emailpassword_users"] == 3 and counts["all_auth_recipe_users"] == 3
    assert counts["session_info"] == 2 and counts["webauthn_credentials"] == 1
    assert counts["telestack_probe.types"] == 3
    assert result.manifest.summary()["users"] == 3 and not result.manifest.empty
    meta = result.manifest.members[pg_store.MEMBER]
    assert meta["format"] == pg_store.DUMP_FORMAT and meta["source_database"] == LIVE and meta["bytes"] > 0

    wipe_auth_store(server)
    wiped = auth_store_snapshot(server, LIVE)
    assert wiped != before
    switch = _Switch()

    report = _restore(result.archive, target, switch, console)

    assert switch.calls == [("authDatabaseName", RESTORED)]
    assert auth_store_snapshot(server, RESTORED) == before  # every table, byte for byte, and the sequence
    assert auth_store_snapshot(server, LIVE) == wiped  # the live database was never written
    assert f"telestack:authDatabaseName={RESTORED}" in report.switched
    assert report.kept["telestack:authDatabaseName"] == LIVE
    assert "rollback: pulumi config set --stack test telestack:authDatabaseName supertokens" in _output(
        console
    )


def test_counts_and_dump_are_one_snapshot_while_the_store_is_written(
    server: PostgresServer, target: Target, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A user signing up between the snapshot and pg_dump is in neither (without --snapshot the dump
    would carry it and the restore's count check would refuse the archive)."""
    with server.connect(LIVE) as con:
        fill_auth_store(con)
    real_run = pg_store.Tools.run
    late = "99999999-aaaa-4bbb-8ccc-999999999999"

    def run(self: pg_store.Tools, tool: str, *args: str, what: str) -> subprocess.CompletedProcess[str]:
        if tool == "pg_dump":
            with server.connect(LIVE) as con:
                con.execute(
                    "INSERT INTO app_id_to_user_id VALUES ('public',%s,'emailpassword',%s,false,1,1)",
                    (late, late),
                )
                con.execute(
                    "INSERT INTO emailpassword_users VALUES ('public',%s,'late@example.test','h',1)", (late,)
                )
        return real_run(self, tool, *args, what=what)

    monkeypatch.setattr(pg_store.Tools, "run", run)
    result = _backup(target, tmp_path)
    monkeypatch.setattr(pg_store.Tools, "run", real_run)

    assert result.manifest.counts["auth"]["emailpassword_users"] == 3
    _restore(result.archive, target, _Switch())
    with server.connect(RESTORED) as con:
        assert con.execute("SELECT count(*) FROM emailpassword_users").fetchone()[0] == 3
    with server.connect(LIVE) as con:
        assert con.execute("SELECT count(*) FROM emailpassword_users").fetchone()[0] == 4


# --- refusals ----------------------------------------------------------------------------------


def _rewrite(src: Path, dest: Path, change: dict[str, Any]) -> None:
    """Copy an archive, replacing members' bytes and/or the manifest, with a matching new sidecar."""
    with tarfile.open(src, "r:gz") as tin, tarfile.open(dest, "w:gz") as tout:
        for info in tin.getmembers():
            data = tin.extractfile(info).read()  # type: ignore[union-attr]
            if info.name in change:
                data = change[info.name](data)
                info.size = len(data)
            tout.addfile(info, io.BytesIO(data))
    digest = hashlib.sha256(dest.read_bytes()).hexdigest()
    archive.sidecar(dest).write_text(f"{digest}  {dest.name}\n")


def _with_manifest(edit: Any) -> Any:
    def change(raw: bytes) -> bytes:
        body = json.loads(raw)
        edit(body)
        return json.dumps(body).encode()

    return change


@pytest.mark.parametrize("damage", ["archive_bytes", "garbage_dump_with_valid_checksums", "missing_sidecar"])
def test_a_bad_archive_creates_no_database(
    server: PostgresServer, target: Target, tmp_path: Path, damage: str
) -> None:
    with server.connect(LIVE) as con:
        fill_auth_store(con)
    result = _backup(target, tmp_path)
    bad = tmp_path / "bad.tar.gz"
    if damage == "archive_bytes":
        flip_one_byte(result.archive, bad)
    elif damage == "garbage_dump_with_valid_checksums":
        garbage = b"PGDMP" + os.urandom(4096)

        def fix(body: dict[str, Any]) -> None:
            body["members"][pg_store.MEMBER].update(
                bytes=len(garbage), sha256=hashlib.sha256(garbage).hexdigest()
            )

        _rewrite(
            result.archive, bad, {pg_store.MEMBER: lambda _: garbage, archive.MANIFEST: _with_manifest(fix)}
        )
    else:
        bad.write_bytes(result.archive.read_bytes())
    databases, live = server.databases(), auth_store_snapshot(server, LIVE)
    switch = _Switch()

    with pytest.raises(OpsError) as err:
        _restore(bad, target, switch)

    assert err.value.status == ExitStatus.VERIFICATION_FAILED, err.value
    assert server.databases() == databases and switch.calls == []
    assert auth_store_snapshot(server, LIVE) == live


def _main_restore(path: Path, target: Target, switch: _Switch, console: Console) -> int:
    """run_restore as the CLI reports it: an OpsError becomes its exit status and one error line."""
    try:
        _restore(path, target, switch, console)
    except OpsError as exc:
        console.error(str(exc))
        return int(exc.status)
    return 0


def test_count_mismatch_exits_4_keeps_the_new_database_and_switches_nothing(
    server: PostgresServer, target: Target, tmp_path: Path
) -> None:
    with server.connect(LIVE) as con:
        fill_auth_store(con)
    result = _backup(target, tmp_path)
    tampered = tmp_path / "tampered.tar.gz"

    def more_users(body: dict[str, Any]) -> None:
        body["counts"]["auth"]["emailpassword_users"] += 1

    _rewrite(result.archive, tampered, {archive.MANIFEST: _with_manifest(more_users)})
    live = auth_store_snapshot(server, LIVE)
    switch = _Switch()
    console = _console()

    status = _main_restore(tampered, target, switch, console)

    assert status == ExitStatus.VERIFICATION_FAILED
    assert switch.calls == []
    out = _output(console)
    assert "emailpassword_users" in out and f"{RESTORED} is left for inspection" in out, out
    assert RESTORED in server.databases()  # kept for inspection, never switched to
    assert auth_store_snapshot(server, LIVE) == live


def test_dry_run_verifies_the_dump_but_creates_nothing(
    server: PostgresServer, target: Target, tmp_path: Path
) -> None:
    with server.connect(LIVE) as con:
        fill_auth_store(con)
    result = _backup(target, tmp_path)
    databases, switch, console = server.databases(), _Switch(), _console()

    report = _restore(result.archive, target, switch, console, dry_run=True)

    assert report.dry_run and switch.calls == [] and server.databases() == databases
    assert f"would restore auth/auth.pgdump (11 tables, 22 rows) into a new database {RESTORED}" in _output(
        console
    )


# --- the CLI: empty store, secrets, missing tools ------------------------------------------------


def _env(monkeypatch: pytest.MonkeyPatch, target: Target, **extra: str) -> None:
    for key in list(os.environ):
        if key.startswith("TELESTACK_"):
            monkeypatch.delenv(key)
    monkeypatch.setenv("TELESTACK_STACK", "test")
    monkeypatch.setenv("TELESTACK_DB_PATH", target.db_path)
    monkeypatch.setenv("TELESTACK_STATE_DIR", target.state_dir)
    monkeypatch.setenv("TELESTACK_AUTH_DB_URL", target.auth_db_url)
    for key, value in extra.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setattr(backup, "ObjectStore", lambda _target: _NoObjects())


def test_empty_auth_store_is_reported_empty_and_restores_empty(
    server: PostgresServer, target: Target, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _env(monkeypatch, target)
    console = _console()

    status = main(["backup", "--json", "--out", str(tmp_path / "b")], console)

    assert status == ExitStatus.VERIFICATION_FAILED
    payload = json.loads(console.stdout.getvalue())  # type: ignore[attr-defined]
    assert payload["status"] == "empty" and payload["users"] == 0
    written = Path(payload["archive"])
    with tarfile.open(written) as tar:
        manifest = json.loads(tar.extractfile(archive.MANIFEST).read())  # type: ignore[union-attr]
        assert tar.getmember(pg_store.MEMBER).size > 0  # the schema is there, never a 0-byte file
    assert manifest["counts"]["auth"]["emailpassword_users"] == 0 and len(manifest["counts"]["auth"]) == 11
    switch = _Switch()
    _restore(written, target, switch)
    assert switch.calls == [("authDatabaseName", RESTORED)]
    with server.connect(RESTORED) as con:
        assert len(auth_store_tables(con)) == 11


def test_password_is_in_no_argv_and_no_output(
    server: PostgresServer, target: Target, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with server.connect(LIVE) as con:
        fill_auth_store(con)
    _env(monkeypatch, target)
    switch = _Switch()
    monkeypatch.setattr(restore, "ConfigSwitch", lambda _pulumi, stack: switch)
    monkeypatch.setattr(restore, "Pulumi", lambda: None)
    calls: list[tuple[list[str], dict[str, str]]] = []
    real = subprocess.run

    def spy(argv: list[str], *args: Any, **kwargs: Any) -> Any:
        env = kwargs.get("env") or {}
        if "PGPASSFILE" in env:  # while the tool runs: the passfile exists, is ours alone, holds the password
            passfile = Path(env["PGPASSFILE"])
            assert passfile.stat().st_mode & 0o777 == 0o600
            assert server.password in passfile.read_text()
        calls.append((list(argv), dict(env)))
        return real(argv, *args, **kwargs)

    monkeypatch.setattr(pg_store.subprocess, "run", spy)
    out = tmp_path / "b"
    backup_console, restore_console = _console(), _console()

    assert main(["backup", "--json", "--out", str(out)], backup_console) == ExitStatus.OK
    produced = json.loads(backup_console.stdout.getvalue())  # type: ignore[attr-defined]
    assert produced["users"] == 3
    status = main(["restore", "--services-stopped", "--json", produced["archive"]], restore_console)

    assert status == ExitStatus.OK, _output(restore_console)
    assert switch.calls and switch.calls[0][0] == "authDatabaseName"
    tools = {Path(argv[0]).name for argv, _ in calls}
    assert {"pg_dump", "pg_restore"} <= tools, tools
    for argv, env in calls:
        assert not any(server.password in a for a in argv), argv[0]
        assert "PGPASSWORD" not in env
    assert not any(Path(env["PGPASSFILE"]).exists() for _, env in calls if "PGPASSFILE" in env)
    for console in (backup_console, restore_console):
        assert server.password not in _output(console) and target.auth_db_url not in _output(console)

    # a refused login reports the failure, not the (wrong) password
    wrong = f"postgresql://supertokens:wrong-secret-pw@127.0.0.1:{server.port}/{LIVE}"
    monkeypatch.setenv("TELESTACK_AUTH_DB_URL", wrong)
    console = _console()
    assert main(["backup", "--out", str(out)], console) == ExitStatus.DEPENDENCY_UNHEALTHY
    assert "password authentication failed" in _output(console) and "wrong-secret-pw" not in _output(console)


def test_missing_pg_dump_is_a_dependency_error_naming_what_to_install(
    target: Target, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    empty = tmp_path / "bin"
    empty.mkdir()
    _env(monkeypatch, target)
    monkeypatch.setenv("PATH", str(empty))
    monkeypatch.delenv("TELESTACK_PG_BIN", raising=False)
    monkeypatch.setattr(pg_store, "FALLBACK_BIN_GLOB", str(tmp_path / "nowhere" / "*"))
    console = _console()

    assert main(["backup", "--out", str(tmp_path / "b")], console) == ExitStatus.DEPENDENCY_UNHEALTHY

    assert (
        "pg_dump not found: install the PostgreSQL client tools (apt-get install postgresql-client"
        in _output(console)
    )
    assert not list((tmp_path / "b").glob("*.tar.gz"))


def test_pg_dump_older_than_the_server_is_refused_before_dumping(
    target: Target, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(pg_store, "tool_major", lambda _path: 9)
    with pytest.raises(
        OpsError, match=r"pg_dump 9 cannot dump a PostgreSQL \d+ server: install postgresql-client-"
    ):
        _backup(target, tmp_path)


# --- names ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("live", "expected"),
    [
        ("supertokens", RESTORED),
        ("supertokens_restore_20261101t000000z", RESTORED),  # a second restore does not stack suffixes
        ("x" * 63, "x" * (63 - len("_restore_20261128t183005z")) + "_restore_20261128t183005z"),
    ],
)
def test_restored_database_name(live: str, expected: str) -> None:
    assert pg_store.restored_name(live, NOW.strftime("%Y%m%dT%H%M%SZ")) == expected


def test_url_without_password_in_conninfo() -> None:
    url = pg_store.PgUrl.parse(
        "postgresql://supertokens:s3cr%3At@127.0.0.1:15432/supertokens?sslmode=disable"
    )
    assert url.password == "s3cr:t" and url.dbname == "supertokens"
    assert "s3cr" not in url.conninfo() and "sslmode=disable" in url.conninfo()
    assert "s3cr" not in repr(url)
    with pytest.raises(OpsError, match="names no database"):
        pg_store.PgUrl.parse("postgresql://u:p@h:1")
