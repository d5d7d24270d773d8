"""A whole cloud stack's backup -> wipe -> restore: D1 (loopback fake of its REST API), the auth
store (a real PostgreSQL) and the bucket (a real SeaweedFS), through ``run_backup``/``run_restore``
with the real :class:`ConfigSwitch` over a recording Pulumi.

What only this file shows: both stores switch in ONE ``pulumi up`` after both are verified, and a
failure in either store leaves the stack's config exactly as it was (no key set, no ``up``).
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from scripts.ops import pg_store
from scripts.ops.backup import run_backup
from scripts.ops.console import Console, ExitStatus, OpsError
from scripts.ops.d1_restore import SWITCH_KEY as D1_KEY
from scripts.ops.restore import run_restore
from scripts.ops.stack import ConfigSwitch, Target
from tests.support.auth_store import LIVE, SCHEMA, auth_store_snapshot, fill_auth_store, wipe_auth_store
from tests.support.cloudflare_d1 import FakeD1, serve_fake_d1
from tests.support.d1_store import ACCOUNT, TABLES, TOKEN, live_d1_database, sqlite_rows, wipe_d1
from tests.support.postgres import PostgresServer, start_postgres
from tests.support.seaweedfs import SeaweedFS, private_seaweedfs

pytestmark = pytest.mark.stack

OBJECTS = {
    "u/alice/avatar.png": b"\x89PNG\r\n\x1a\n" + bytes(range(256)),
    "u/bob/notes.txt": "ünïcødé\n".encode(),
}


class RecordingPulumi:
    """The two Pulumi CLI calls a switch makes, recorded in order (the real ones need a deployed stack)."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, ...]] = []

    def get(self, stack: str, key: str) -> str | None:
        return None

    def set_plain(self, stack: str, key: str, value: str) -> None:
        self.calls.append(("config set", stack, key, value))

    def up(self, stack: str) -> None:
        self.calls.append(("up", stack))


@pytest.fixture(scope="module")
def pg() -> Iterator[PostgresServer]:
    server = start_postgres()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def s3(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SeaweedFS]:
    with private_seaweedfs(tmp_path_factory, "cloud-backup") as server:
        yield server


@pytest.fixture
def d1(tmp_path: Path) -> Iterator[FakeD1]:
    with serve_fake_d1(tmp_path / "d1", token=TOKEN, account_id=ACCOUNT) as server:
        yield server


@pytest.fixture
def stack(pg: PostgresServer, s3: SeaweedFS, d1: FakeD1) -> Target:
    """A cloud-shaped target: no local file path anywhere, every store reached by URL or id."""
    for name in pg.databases() - {"postgres"}:
        pg.drop_database(name)
    pg.create_database(LIVE)
    with pg.connect(LIVE) as con:
        con.execute(SCHEMA)
        fill_auth_store(con)
    client = s3.client()
    for key in [o["Key"] for o in client.list_objects_v2(Bucket=s3.bucket).get("Contents", [])]:
        client.delete_object(Bucket=s3.bucket, Key=key)
    for key, body in OBJECTS.items():
        client.put_object(Bucket=s3.bucket, Key=key, Body=body, ContentType="application/octet-stream")
    return Target(
        stack="dev",
        cloudflare_account_id=ACCOUNT,
        cloudflare_api_token=TOKEN,
        cloudflare_api_base=d1.base_url,
        d1_database_id=live_d1_database(d1),
        auth_db_url=pg.url(LIVE),
        s3_endpoint=s3.endpoint,
        s3_bucket=s3.bucket,
        s3_access_key_id=s3.access_key,
        s3_secret_access_key=s3.secret_key,
    )


def _console() -> tuple[Console, io.StringIO]:
    out = io.StringIO()
    return Console(stdout=out, stderr=out), out


def _bucket(s3: SeaweedFS) -> dict[str, bytes]:
    client = s3.client()
    keys = [o["Key"] for o in client.list_objects_v2(Bucket=s3.bucket).get("Contents", [])]
    return {k: client.get_object(Bucket=s3.bucket, Key=k)["Body"].read() for k in keys}


def _backup(stack: Target, tmp_path: Path) -> Path:
    console, _ = _console()
    result = run_backup(stack, tmp_path / "backups", console)
    assert result.manifest.summary() == {"documents": 30, "users": 3, "objects": 2, "empty": False}
    return result.archive


def test_cloud_backup_wipe_restore_switches_both_stores_in_one_up(
    stack: Target, d1: FakeD1, pg: PostgresServer, s3: SeaweedFS, tmp_path: Path
) -> None:
    documents = {t: sqlite_rows(d1.path(stack.d1_database_id), t) for t in TABLES}
    users = auth_store_snapshot(pg, LIVE)
    archive_path = _backup(stack, tmp_path)

    wipe_d1(d1, stack.d1_database_id)
    wipe_auth_store(pg)
    client = s3.client()
    for key in OBJECTS:
        client.delete_object(Bucket=s3.bucket, Key=key)

    pulumi = RecordingPulumi()
    console, out = _console()
    report = run_restore(
        archive_path, stack, console, control=None, switch=ConfigSwitch(pulumi, "dev")  # type: ignore[arg-type]
    )

    (new_d1,) = d1.created
    new_auth = next(name for name in pg.databases() if name.startswith(f"{LIVE}_restore_"))
    assert pulumi.calls == [
        ("config set", "dev", D1_KEY, new_d1),
        ("config set", "dev", pg_store.SWITCH_KEY, new_auth),
        ("up", "dev"),
    ], "both keys set, then exactly one pulumi up"
    assert {t: sqlite_rows(d1.path(new_d1), t) for t in TABLES} == documents
    assert auth_store_snapshot(pg, new_auth) == users
    assert _bucket(s3) == OBJECTS
    assert report.objects_written == 2
    assert sqlite_rows(d1.path(stack.d1_database_id), "documents") == [], "live D1 was written"
    assert auth_store_snapshot(pg, LIVE) != users, "live auth database was written"
    text = out.getvalue()
    assert TOKEN not in text and s3.secret_key not in text


def test_a_failing_auth_store_switches_nothing_even_after_the_d1_verified(
    stack: Target, d1: FakeD1, pg: PostgresServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    archive_path = _backup(stack, tmp_path)
    real_counts = pg_store.table_counts

    def short_by_one(con: Any) -> dict[str, int]:
        counts = real_counts(con)
        counts["emailpassword_users"] -= 1  # as if pg_restore had lost a row
        return counts

    monkeypatch.setattr(pg_store, "table_counts", short_by_one)
    pulumi = RecordingPulumi()
    console, _ = _console()
    with pytest.raises(OpsError) as err:
        run_restore(archive_path, stack, console, control=None, switch=ConfigSwitch(pulumi, "dev"))  # type: ignore[arg-type]
    assert err.value.status == ExitStatus.VERIFICATION_FAILED
    (new_d1,) = d1.created  # the D1 copy had been made and verified ...
    assert new_d1 in str(err.value) and "not switched" in str(err.value)  # ... and is named as left over
    assert pulumi.calls == [], "no key set and no pulumi up: the stack still points at its live stores"


class FailingUp(RecordingPulumi):
    def up(self, stack: str) -> None:
        super().up(stack)
        raise OpsError("pulumi up failed (exit 255): error: Docker host unreachable")


def test_a_failed_up_says_the_config_is_set_but_not_applied(stack: Target, tmp_path: Path) -> None:
    archive_path = _backup(stack, tmp_path)
    pulumi = FailingUp()
    console, _ = _console()
    with pytest.raises(OpsError) as err:
        run_restore(archive_path, stack, console, control=None, switch=ConfigSwitch(pulumi, "dev"))  # type: ignore[arg-type]
    message = str(err.value)
    assert "Docker host unreachable" in message and "was not applied" in message
    assert "telestack:d1DatabaseId=" in message and "telestack:authDatabaseName=" in message
    assert [c[0] for c in pulumi.calls] == ["config set", "config set", "up"]
