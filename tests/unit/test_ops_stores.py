"""Backup sources and service control in isolation: the D1 export client and pid-file stopping."""

from __future__ import annotations

import io
import json
import sqlite3
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from scripts.ops.console import Console, OpsError
from scripts.ops.services import PidFileControl
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


def test_pid_file_control_stops_the_process_a_json_pid_file_names(tmp_path: Path) -> None:
    from infra.local_process import _start_time

    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"], start_new_session=True)
    pid_file = tmp_path / "pid"
    pid_file.write_text(json.dumps({"pid": proc.pid, "start_time": _start_time(proc.pid)}))
    control = PidFileControl(
        "", {"gateway": str(pid_file)}, Console(stdout=io.StringIO(), stderr=io.StringIO())
    )
    try:
        assert control.running("gateway")
        control.stop("gateway")
        assert proc.wait(timeout=5) != 0
        assert not control.running("gateway")
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_a_recycled_pid_is_never_signalled(tmp_path: Path) -> None:
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    pid_file = tmp_path / "pid"
    pid_file.write_text(json.dumps({"pid": proc.pid, "start_time": "1"}))  # some other process's start time
    control = PidFileControl(
        "", {"gateway": str(pid_file)}, Console(stdout=io.StringIO(), stderr=io.StringIO())
    )
    try:
        assert not control.running("gateway")
        control.stop("gateway")
        assert proc.poll() is None
    finally:
        proc.kill()
        proc.wait()


def test_stopping_an_unknown_service_is_refused() -> None:
    control = PidFileControl("", {}, Console(stdout=io.StringIO(), stderr=io.StringIO()))
    with pytest.raises(OpsError, match="no pid file"):
        control.stop("gateway")
