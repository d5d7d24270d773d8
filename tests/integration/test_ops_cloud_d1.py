"""Cloud backup -> wipe -> restore into a NEW D1 -> switch, against a loopback fake of the D1 REST API.

The fake (tests/support/cloudflare_d1.py) keeps real SQLite files and D1's refusals (bearer auth,
no transactions in imported SQL, no PRAGMA, no ``_cf_*`` tables), so what is asserted here is the
data itself: rows byte-identical in the new database, the live one untouched, the stack switched
once and only after verification, nothing created by a dry run or for a corrupt archive, and the
API token never in any output.
"""

from __future__ import annotations

import hashlib
import io
import json
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from scripts.ops import archive
from scripts.ops.cli import main
from scripts.ops.console import Console, ExitStatus, OpsError
from scripts.ops.d1_api import D1Api
from scripts.ops.d1_restore import SWITCH_KEY, import_sql
from scripts.ops.restore import run_restore
from scripts.ops.stack import Target
from tests.support.cloudflare_d1 import FakeD1, serve_fake_d1
from tests.support.d1_store import (
    ACCOUNT,
    TABLES,
    TOKEN,
    RecordingSwitch,
    backup_d1,
    d1_target,
    live_d1_database,
    sqlite_rows,
    unmasked_console,
    wipe_d1,
)


@pytest.fixture
def fake(tmp_path: Path) -> Iterator[FakeD1]:
    with serve_fake_d1(tmp_path / "d1", token=TOKEN, account_id=ACCOUNT) as server:
        yield server


def _sequences(path: Path) -> dict[str, int]:
    con = sqlite3.connect(path)
    try:
        return dict(con.execute("SELECT name, seq FROM sqlite_sequence").fetchall())
    finally:
        con.close()


def _state(fake: FakeD1, database_id: str) -> str:
    """A fingerprint of a database's whole content (schema + rows)."""
    return hashlib.sha256(fake.dump(database_id).encode()).hexdigest()


def test_backup_wipe_restore_into_a_new_d1_is_byte_identical(fake: FakeD1, tmp_path: Path) -> None:
    live = live_d1_database(fake)
    before = {t: sqlite_rows(fake.path(live), t) for t in TABLES}
    seq_before = _sequences(fake.path(live))
    assert seq_before == {"outbox": 3} and len(before["outbox"]) == 2  # the counter is ahead of the rows

    archive_path = backup_d1(fake, live, tmp_path / "backups")
    manifest = json.loads(_member(archive_path, archive.MANIFEST))
    assert manifest["counts"]["database"]["documents"] == 30
    assert not any(t.startswith("_cf_") for t in manifest["counts"]["database"])  # D1-internal: not data

    wipe_d1(fake, live)
    live_after_wipe = _state(fake, live)
    switch = RecordingSwitch(current=None)
    console, out = unmasked_console()
    report = run_restore(archive_path, d1_target(fake, live), console, control=None, switch=switch)

    assert len(fake.created) == 1, "exactly one new database"
    new = fake.created[0]
    assert fake.databases[new].startswith("telestack-dev-restore-")
    assert switch.calls == [(SWITCH_KEY, new)], "switched once, to the new database"
    for table in TABLES:
        assert sqlite_rows(fake.path(new), table) == before[table], f"{table} differs after restore"
    assert _sequences(fake.path(new)) == seq_before
    assert _state(fake, live) == live_after_wipe, "the live database was written"
    assert report.kept == {"telestack:d1DatabaseId": live}
    text = out.getvalue()
    assert f"pulumi config rm --stack dev telestack:{SWITCH_KEY}" in text, text  # rollback is printed
    assert TOKEN not in text

    # the restored AUTOINCREMENT counter keeps working: the next event is 4, not a reused 3
    con = sqlite3.connect(fake.path(new))
    with con:
        seq = con.execute(
            "INSERT INTO outbox (collection, doc_id, version, op, payload, created_at) "
            "VALUES ('notes', 'x', 1, 'created', '{}', 9) RETURNING seq"
        ).fetchone()[0]
    con.close()
    assert seq == 4


def test_rollback_names_the_previous_config_value(fake: FakeD1, tmp_path: Path) -> None:
    live = live_d1_database(fake)
    archive_path = backup_d1(fake, live, tmp_path / "backups")
    switch = RecordingSwitch(current=live)  # the stack already pointed at a restored database
    console, out = unmasked_console()
    run_restore(archive_path, d1_target(fake, live), console, control=None, switch=switch)
    assert f"pulumi config set --stack dev telestack:{SWITCH_KEY} {live}" in out.getvalue()


def test_corrupt_archive_creates_nothing_and_switches_nothing(fake: FakeD1, tmp_path: Path) -> None:
    live = live_d1_database(fake)
    archive_path = backup_d1(fake, live, tmp_path / "backups")
    raw = bytearray(archive_path.read_bytes())
    raw[len(raw) // 2] ^= 0xFF
    archive_path.write_bytes(bytes(raw))
    switch = RecordingSwitch()
    before = _state(fake, live)
    console, out = unmasked_console()
    with pytest.raises(OpsError) as err:
        run_restore(archive_path, d1_target(fake, live), console, control=None, switch=switch)
    assert err.value.status == ExitStatus.VERIFICATION_FAILED
    assert fake.created == [] and switch.calls == []
    assert _state(fake, live) == before


TAMPER = {
    "count_mismatch": "DELETE FROM documents WHERE id = 'doc-007'",
    # same count, one value changed; same bytes, stored as a BLOB instead of TEXT
    "value_changed": "UPDATE documents SET data = replace(data, 'note 7', 'note 8') WHERE id = 'doc-007'",
    "type_changed": "UPDATE documents SET data = CAST(data AS BLOB) WHERE id = 'doc-004'",
}


@pytest.mark.parametrize("fault", ["import_error", *TAMPER])
def test_failed_import_or_verification_leaves_the_stack_alone(
    fake: FakeD1, tmp_path: Path, fault: str
) -> None:
    live = live_d1_database(fake)
    archive_path = backup_d1(fake, live, tmp_path / "backups")
    wipe_d1(fake, live)
    before = _state(fake, live)
    if fault == "import_error":
        fake.fail_import = 'near "BOGUS": syntax error at offset 0: SQLITE_ERROR'
    else:
        fake.after_import = lambda con: con.execute(TAMPER[fault])
    switch = RecordingSwitch()
    console, out = unmasked_console()
    with pytest.raises(OpsError) as err:
        run_restore(archive_path, d1_target(fake, live), console, control=None, switch=switch)

    assert err.value.status == ExitStatus.VERIFICATION_FAILED
    assert switch.calls == [], "switched to an unverified database"
    assert _state(fake, live) == before, "the live database was written"
    [new] = fake.created
    message = str(err.value)
    assert new in message and "left for inspection" in message and "untouched" in message
    expected = {"import_error": "BOGUS", "count_mismatch": "29"}.get(fault, "content does not")
    assert expected in message and (fault == "import_error" or "documents" in message), message
    assert TOKEN not in message + out.getvalue()


def test_dry_run_through_the_cli_creates_nothing(
    fake: FakeD1, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    live = live_d1_database(fake)
    archive_path = backup_d1(fake, live, tmp_path / "backups")
    for f in Target.__dataclass_fields__:
        monkeypatch.delenv(f"TELESTACK_{f.upper()}", raising=False)
    env = d1_target(fake, live)
    for name in ("cloudflare_account_id", "d1_database_id", "cloudflare_api_token", "cloudflare_api_base"):
        monkeypatch.setenv(f"TELESTACK_{name.upper()}", getattr(env, name))
    out = io.StringIO()
    code = main(["restore", "--dry-run", str(archive_path)], Console(stdout=out, stderr=out))
    text = out.getvalue()
    assert code == ExitStatus.OK, text
    assert fake.created == []
    assert "dry run: would create D1 telestack-dev-restore-" in text and "30 documents" in text
    assert TOKEN not in text

    # without --stack there is no stack config to switch: refused before anything is created
    out = io.StringIO()
    code = main(["restore", str(archive_path)], Console(stdout=out, stderr=out))
    assert code == ExitStatus.USAGE and "pass --stack" in out.getvalue()
    assert fake.created == []


def test_refused_token_is_an_error_that_never_shows_the_token(fake: FakeD1, tmp_path: Path) -> None:
    live = live_d1_database(fake)
    archive_path = backup_d1(fake, live, tmp_path / "backups")
    wrong = "wrong-token-ALSO-secret-91b2"
    console, out = unmasked_console()
    with pytest.raises(OpsError) as err:
        run_restore(
            archive_path, d1_target(fake, live, wrong), console, control=None, switch=RecordingSwitch()
        )
    assert err.value.status == ExitStatus.DEPENDENCY_UNHEALTHY
    assert "Authentication error" in str(err.value) and "403" in str(err.value)
    assert wrong not in str(err.value) + out.getvalue() and fake.created == []


def test_d1_refuses_transactions_in_imported_sql_and_ours_has_none(fake: FakeD1, tmp_path: Path) -> None:
    """The fake's D1 rule the import SQL must satisfy, and that import_sql satisfies it."""
    api = D1Api(ACCOUNT, TOKEN, fake.base_url, poll_seconds=0)
    target = api.create("scratch")
    with pytest.raises(OpsError, match="transactions are not allowed") as err:
        api.import_sql(target, b"BEGIN TRANSACTION;\nCREATE TABLE t (x);\nCOMMIT;\n", lambda _: None)
    assert err.value.status == ExitStatus.VERIFICATION_FAILED
    assert api.query(target, "SELECT name FROM sqlite_master WHERE name = 't'") == []  # all or nothing

    live = live_d1_database(fake)
    sql = import_sql(fake.path(live))
    assert "BEGIN" not in sql and "COMMIT" not in sql and "_cf_" not in sql
    api.import_sql(target, sql.encode(), lambda _: None)
    assert api.query(target, "SELECT count(*) AS n FROM documents") == [{"n": 30}]


def _member(archive_path: Path, name: str) -> bytes:
    import tarfile

    with tarfile.open(archive_path, "r:gz") as tar:
        fh = tar.extractfile(name)
        assert fh is not None
        return fh.read()
