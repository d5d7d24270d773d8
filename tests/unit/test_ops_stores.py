"""Backup sources and service control in isolation: the D1 export client and pid-file stopping."""

from __future__ import annotations

import io
import json
import sqlite3
from pathlib import Path

import httpx
import pytest

from scripts.ops.console import Console, ExitStatus, OpsError
from scripts.ops.d1_api import D1Api
from scripts.ops.d1_restore import import_sql
from scripts.ops.stores import D1ApiDatabase, sqlite_counts, sqlite_snapshot


def test_d1_export_polls_until_the_dump_is_ready_and_loads_it(tmp_path: Path) -> None:
    calls: list[dict[str, object]] = []
    dump = "CREATE TABLE documents (id TEXT, data TEXT);\nINSERT INTO documents VALUES ('a', '{}');\n"

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.host == "r2.example":
            return httpx.Response(200, text=dump)
        assert request.headers["authorization"] == "Bearer tok"
        assert request.url.path == "/client/v4/accounts/acc/d1/database/db1/export"
        body = json.loads(request.content)
        calls.append(body)
        if len(calls) == 1:
            assert body == {"output_format": "polling"}
            return httpx.Response(
                200, json={"success": True, "result": {"status": "active", "at_bookmark": "bm1"}}
            )
        assert body == {"output_format": "polling", "current_bookmark": "bm1"}
        return httpx.Response(
            200,
            json={
                "success": True,
                "result": {"status": "complete", "result": {"signed_url": "https://r2.example/dump.sql"}},
            },
        )

    client = httpx.Client(transport=httpx.MockTransport(handler))
    db = D1ApiDatabase("acc", "db1", "tok", poll_seconds=0, client=client)
    progress: list[str] = []
    db.export(tmp_path / "out.sqlite3", progress.append)
    assert sqlite_counts(tmp_path / "out.sqlite3") == {"documents": 1}
    assert len(calls) == 2 and progress == ["  D1 export: active"]


def test_d1_export_refusal_is_reported(tmp_path: Path) -> None:
    client = httpx.Client(
        transport=httpx.MockTransport(
            lambda r: httpx.Response(
                200, json={"success": False, "errors": [{"code": 7403, "message": "no access"}]}
            )
        )
    )
    with pytest.raises(OpsError, match="no access"):
        D1ApiDatabase("a", "b", "c", client=client).export(tmp_path / "x", lambda _: None)


def test_snapshot_is_a_single_self_contained_file(tmp_path: Path) -> None:
    live = tmp_path / "live.sqlite3"
    con = sqlite3.connect(live)
    con.execute("PRAGMA journal_mode=WAL")
    con.execute("CREATE TABLE t (x)")
    con.executemany("INSERT INTO t VALUES (?)", [(i,) for i in range(100)])
    con.commit()  # the rows may still sit in the WAL: the snapshot must include them
    sqlite_snapshot(live, tmp_path / "copy.sqlite3")
    con.close()
    assert sqlite_counts(tmp_path / "copy.sqlite3") == {"t": 100}
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith("copy")) == ["copy.sqlite3"]


# --- the D1 REST client: import protocol and error reporting -------------------------------------------


def test_d1_import_runs_init_upload_ingest_poll_in_order() -> None:
    import hashlib

    sql = b"CREATE TABLE t (x);\nINSERT INTO t VALUES (1);\n"
    etag = hashlib.md5(sql).hexdigest()  # noqa: S324
    seen: list[object] = []

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.host == "r2.example":
            assert request.method == "PUT" and request.content == sql
            assert "authorization" not in request.headers, "the token must not travel to the signed URL"
            seen.append("PUT")
            return httpx.Response(200, headers={"ETag": f'"{etag}"'})
        assert request.headers["authorization"] == "Bearer tok"
        assert request.url.path == "/client/v4/accounts/acc/d1/database/db1/import"
        body = json.loads(request.content)
        seen.append(body)
        results = {
            "init": {"upload_url": "https://r2.example/up?sig=1", "filename": f"db1-{etag}.sql"},
            "ingest": {"status": "active", "at_bookmark": "bm7", "messages": ["ingesting"]},
            "poll": {"status": "complete", "result": {"num_queries": 2}},
        }
        return httpx.Response(200, json={"success": True, "result": results[body["action"]]})

    api = D1Api("acc", "tok", client=httpx.Client(transport=httpx.MockTransport(handler)), poll_seconds=0)
    progress: list[str] = []
    result = api.import_sql("db1", sql, progress.append)
    assert result["status"] == "complete"
    assert seen == [
        {"action": "init", "etag": etag},
        "PUT",
        {"action": "ingest", "etag": etag, "filename": f"db1-{etag}.sql"},
        {"action": "poll", "current_bookmark": "bm7"},
    ]
    assert "  D1 import: ingesting" in progress


@pytest.mark.parametrize(
    ("fault", "status", "message"),
    [
        ("etag", ExitStatus.VERIFICATION_FAILED, "is not the file's md5"),
        ("error", ExitStatus.VERIFICATION_FAILED, "D1 import failed: no such table: nope"),
        ("forbidden", ExitStatus.DEPENDENCY_UNHEALTHY, r"HTTP 403\): Authentication error \(code 10000\)"),
    ],
)
def test_d1_import_failures_are_ops_errors_without_the_token(fault: str, status: int, message: str) -> None:
    import hashlib

    token = "tok-SECRET-value-1234"
    sql = b"SELECT 1;"
    etag = "0" * 32 if fault == "etag" else hashlib.md5(sql).hexdigest()  # noqa: S324

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.host == "r2.example":
            return httpx.Response(200, headers={"ETag": f'"{etag}"'})
        if fault == "forbidden":
            error = {"code": 10000, "message": "Authentication error"}
            return httpx.Response(403, json={"success": False, "errors": [error]})
        if json.loads(request.content)["action"] == "init":
            result = {"upload_url": "https://r2.example/u", "filename": "f"}
        else:
            result = {"status": "error", "error": "no such table: nope"}
        return httpx.Response(200, json={"success": True, "result": result})

    api = D1Api("acc", token, client=httpx.Client(transport=httpx.MockTransport(handler)), poll_seconds=0)
    with pytest.raises(OpsError, match=message) as err:
        api.import_sql("db1", sql, lambda _: None)
    assert err.value.status == status and token not in str(err.value)


def test_d1_create_and_query_shapes() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content)
        if request.url.path.endswith("/d1/database"):
            assert body == {"name": "telestack-dev-restore-x"}
            return httpx.Response(
                200, json={"success": True, "result": {"uuid": "u-1", "name": body["name"]}}
            )
        assert request.url.path.endswith("/d1/database/u-1/query")
        assert body == {"sql": "SELECT ? AS n", "params": [3]}
        return httpx.Response(
            200, json={"success": True, "result": [{"results": [{"n": 3}], "success": True}]}
        )

    api = D1Api("acc", "tok", client=httpx.Client(transport=httpx.MockTransport(handler)))
    assert api.create("telestack-dev-restore-x") == "u-1"
    assert api.query("u-1", "SELECT ? AS n", [3]) == [{"n": 3}]


def test_api_base_comes_from_the_environment_when_not_given(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TELESTACK_CLOUDFLARE_API_BASE", "http://127.0.0.1:9/client/v4/")
    assert D1Api("a", "t").base == "http://127.0.0.1:9/client/v4"
    assert D1Api("a", "t", base="https://x.example/v4").base == "https://x.example/v4"
    monkeypatch.delenv("TELESTACK_CLOUDFLARE_API_BASE")
    assert D1Api("a", "t").base == "https://api.cloudflare.com/client/v4"


# --- the SQL a D1 import gets ------------------------------------------------------------------------


def test_import_sql_is_d1_shaped_and_rebuilds_the_same_database(tmp_path: Path) -> None:
    src = tmp_path / "src.sqlite3"
    con = sqlite3.connect(src)
    con.executescript(
        "CREATE TABLE _cf_KV (key TEXT PRIMARY KEY, value BLOB) WITHOUT ROWID;"
        "CREATE TABLE outbox (seq INTEGER PRIMARY KEY AUTOINCREMENT, payload TEXT, blob BLOB, r REAL);"
        "CREATE INDEX outbox_pending ON outbox(seq) WHERE payload IS NOT NULL;"
        "CREATE TABLE _migrations (name TEXT PRIMARY KEY, checksum TEXT NOT NULL, applied_at INTEGER);"
    )
    con.execute("INSERT INTO _cf_KV VALUES ('k', x'00')")
    rows = [("a'b\nc\r\nd \\n (\\n0)", b"\x00\x01", 1.5), (None, None, -2e-300), ("✓", b"", None)]
    con.executemany("INSERT INTO outbox (payload, blob, r) VALUES (?,?,?)", rows)
    con.execute("INSERT INTO outbox (payload) VALUES ('gone')")
    con.execute("DELETE FROM outbox WHERE payload = 'gone'")
    con.execute("INSERT INTO _migrations VALUES ('0001_documents', 'abc', 1)")
    con.commit()
    con.close()

    sql = import_sql(src)
    statements = [s for s in sql.splitlines() if s]
    assert statements[0] == "PRAGMA defer_foreign_keys=TRUE;"
    assert not any(s.upper().startswith(("BEGIN", "COMMIT", "END")) for s in statements)
    assert "_cf_KV" not in sql
    assert statements.index("DELETE FROM sqlite_sequence;") > max(
        i for i, s in enumerate(statements) if s.startswith('INSERT INTO "outbox"')
    ), "the counter must be written after the rows that would move it"
    assert statements[-1].startswith("CREATE INDEX outbox_pending")

    dst = tmp_path / "dst.sqlite3"
    con = sqlite3.connect(dst)
    con.executescript(sql)
    got = con.execute("SELECT seq, payload, typeof(blob), blob, r FROM outbox ORDER BY seq").fetchall()
    assert con.execute("SELECT seq FROM sqlite_sequence WHERE name='outbox'").fetchone() == (4,)
    con.close()
    assert got == [(i + 1, p, "null" if b is None else "blob", b, r) for i, (p, b, r) in enumerate(rows)]
    assert sqlite_counts(dst) == {"_migrations": 1, "outbox": 3}


def test_dry_run_says_what_it_would_do_and_warns_of_rows_over_d1s_statement_limit(tmp_path: Path) -> None:
    from scripts.ops.d1_restore import D1_STATEMENT_LIMIT, CloudD1Restore
    from scripts.ops.stack import Target

    src = tmp_path / "src.sqlite3"
    con = sqlite3.connect(src)
    con.execute("CREATE TABLE documents (id TEXT, data TEXT)")
    con.execute("INSERT INTO documents VALUES ('big', ?)", ("x" * D1_STATEMENT_LIMIT,))
    con.execute("INSERT INTO documents VALUES ('small', '{}')")
    con.commit()
    con.close()
    out = io.StringIO()
    api = D1Api(
        "acc", "tok", client=httpx.Client(transport=httpx.MockTransport(lambda r: pytest.fail(str(r))))
    )
    restore = CloudD1Restore(Target(d1_database_id="live-id"), Console(stdout=out, stderr=out), api=api)
    restore.live_id, restore.live_name = "live-id", "telestack-dev"
    restore.prepare(src, {"documents": 2}, "20261128T010203Z", dry_run=True)
    text = out.getvalue()
    assert "dry run: would create D1 telestack-dev-restore-20261128t010203z" in text
    assert "1 row(s) make an INSERT over D1's 100000-byte statement limit" in text
    assert "no _migrations table" in text  # the migrations resource would run against it
    assert restore.new_id == ""
