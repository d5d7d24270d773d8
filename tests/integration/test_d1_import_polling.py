"""D1's import polling as Cloudflare reports it, against the loopback fake of the D1 REST API.

A poll that reaches D1 after the import has ended is answered ``{"success": false, "error": "Not
currently importing anything."}`` inside a successful envelope (Cloudflare's tutorial
developers.cloudflare.com/d1/tutorials/import-to-d1-with-rest-api/ stops its poll loop on exactly
that). The answer does not say whether the import committed or rolled back, so a restore must not
call it a failure (the data may be all there) nor a success (it may not be): it verifies the data.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from scripts.ops.console import ExitStatus, OpsError
from scripts.ops.d1_api import IMPORT_ENDED_UNREPORTED, NOT_IMPORTING, D1Api
from scripts.ops.restore import run_restore
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

SQL = b"CREATE TABLE t (x INTEGER);\nINSERT INTO t VALUES (1);\nINSERT INTO t VALUES (2);\n"


@pytest.fixture
def d1(tmp_path: Path) -> Iterator[FakeD1]:
    with serve_fake_d1(tmp_path / "d1", token=TOKEN, account_id=ACCOUNT) as server:
        yield server


def _api(d1: FakeD1) -> D1Api:
    return D1Api(ACCOUNT, TOKEN, d1.base_url, poll_seconds=0)


def _count(d1: FakeD1, database_id: str) -> int:
    con = sqlite3.connect(d1.path(database_id))
    try:
        return int(con.execute("SELECT count(*) FROM t").fetchone()[0])
    finally:
        con.close()


def test_a_poll_when_nothing_is_importing_is_a_200_with_success_false(d1: FakeD1) -> None:
    database_id = d1.create_database("idle")
    response = httpx.post(
        f"{d1.base_url}/accounts/{ACCOUNT}/d1/database/{database_id}/import",
        json={"action": "poll", "current_bookmark": "bm-none"},
        headers={"Authorization": f"Bearer {TOKEN}"},
    )
    assert response.status_code == 200
    envelope = response.json()
    assert envelope["success"] is True
    assert envelope["result"] == {"success": False, "error": NOT_IMPORTING}


def test_an_import_whose_end_d1_does_not_report_is_returned_as_unreported(d1: FakeD1) -> None:
    d1.report_import_outcome = False
    database_id = d1.create_database("target")
    messages: list[str] = []
    result = _api(d1).import_sql(database_id, SQL, messages.append)
    assert result["status"] == IMPORT_ENDED_UNREPORTED
    assert any("must be verified" in m for m in messages), messages
    assert _count(d1, database_id) == 2, "the import committed; only its report was lost"


def test_a_reported_outcome_is_complete_and_a_second_poll_finds_nothing_running(d1: FakeD1) -> None:
    database_id = d1.create_database("target")
    result = _api(d1).import_sql(database_id, SQL, lambda _: None)
    assert result["status"] == "complete" and result["result"]["num_queries"] == 3
    poll = _api(d1)._call("POST", f"/{database_id}/import", "poll",
                          {"action": "poll", "current_bookmark": result["at_bookmark"]})
    assert poll == {"success": False, "error": NOT_IMPORTING}


def test_restore_succeeds_when_d1_does_not_report_a_committed_import(d1: FakeD1, tmp_path: Path) -> None:
    live = live_d1_database(d1)
    before = {t: sqlite_rows(d1.path(live), t) for t in TABLES}
    archive_path = backup_d1(d1, live, tmp_path / "backups")
    wipe_d1(d1, live)
    d1.report_import_outcome = False
    switch = RecordingSwitch()
    console, out = unmasked_console()
    run_restore(archive_path, d1_target(d1, live), console, control=None, switch=switch)
    [new] = d1.created
    assert switch.calls == [("d1DatabaseId", new)], out.getvalue()
    for table in TABLES:
        assert sqlite_rows(d1.path(new), table) == before[table]


def test_restore_refuses_a_rolled_back_import_that_d1_does_not_report(d1: FakeD1, tmp_path: Path) -> None:
    live = live_d1_database(d1)
    archive_path = backup_d1(d1, live, tmp_path / "backups")
    d1.report_import_outcome = False
    d1.fail_import = "D1 DB reset: the import was rolled back"
    switch = RecordingSwitch()
    console, out = unmasked_console()
    with pytest.raises(OpsError) as err:
        run_restore(archive_path, d1_target(d1, live), console, control=None, switch=switch)
    assert err.value.status == ExitStatus.VERIFICATION_FAILED
    assert switch.calls == [], "switched to a database whose import rolled back"
    assert "does not match the manifest" in str(err.value), err.value
