"""A stack's D1 for the cloud ops tests (on the fake D1 API): migrated, awkward rows, compared row by row."""

from __future__ import annotations

import io
import json
import sqlite3
from collections.abc import Iterator
from pathlib import Path

from scripts.ops.backup import run_backup
from scripts.ops.console import Console
from scripts.ops.d1_restore import SWITCH_KEY
from scripts.ops.stack import Target
from scripts.ops.stores import ObjectInfo
from tests.support.cloudflare_d1 import FakeD1
from tests.support.ops import migrate_sqlite

ACCOUNT = "0123456789abcdef0123456789abcdef"
TOKEN = "cf-token-SECRET-do-not-print-7f3a"
#: the gateway's tables a backup must carry over row for row
TABLES = ("documents", "outbox", "_migrations")


def live_d1_database(fake: FakeD1) -> str:
    """The stack's D1: migrated schema, awkward text (quotes, CR/LF, unicode), an outbox whose
    AUTOINCREMENT counter is ahead of its highest row (the last event was deleted)."""
    live = fake.create_database("telestack-dev")
    migrate_sqlite(fake.path(live))
    con = sqlite3.connect(fake.path(live))
    with con:
        for i in range(30):
            body = {
                "title": f"note {i} — ünïcødé ✓ 'quoted' \"dq\"",
                "text": "line1\nline2\r\nend\\n",
                "n": i,
            }
            con.execute(
                "INSERT INTO documents VALUES (?,?,?,?,?,?,?)",
                (
                    "notes",
                    f"doc-{i:03d}",
                    f"user-{i % 3}",
                    json.dumps(body, ensure_ascii=False, separators=(",", ":")),
                    1 + i % 4,
                    1000 + i,
                    2000 + i,
                ),
            )
        for i in range(3):
            con.execute(
                "INSERT INTO outbox (collection, doc_id, owner_id, version, op, payload, created_at) "
                "VALUES ('notes', ?, 'user-1', 2, 'updated', '{}', ?)",
                (f"doc-{i:03d}", 5 + i),
            )
        con.execute("DELETE FROM outbox WHERE seq = 3")
    con.close()
    return live


def sqlite_rows(path: Path, table: str) -> list[tuple[object, ...]]:
    """Every value with its storage class, in rowid order: equal lists mean byte-identical rows."""
    con = sqlite3.connect(path)
    try:
        columns = [r[1] for r in con.execute(f'PRAGMA table_info("{table}")')]
        select = ", ".join(f'typeof("{c}"), "{c}"' for c in columns)
        return con.execute(f'SELECT {select} FROM "{table}" ORDER BY rowid').fetchall()  # noqa: S608
    finally:
        con.close()


def wipe_d1(fake: FakeD1, live: str) -> None:
    con = sqlite3.connect(fake.path(live))
    with con:
        con.execute("DELETE FROM documents")
        con.execute("DELETE FROM outbox")
    con.close()


class EmptyBucket:
    """The cloud bucket is covered by the generic ObjectStore tests; this archive holds no object."""

    def list(self, prefix: str = "") -> Iterator[ObjectInfo]:
        return iter(())



class RecordingSwitch:
    """ConfigSwitch stand-in: records ``pulumi config set`` + ``up`` instead of running them."""

    def __init__(self, current: str | None = None) -> None:
        self.value = current
        self.calls: list[tuple[str, str]] = []

    def current(self, key: str) -> str | None:
        assert key == SWITCH_KEY
        return self.value

    def __call__(self, key: str, value: str) -> None:
        self.calls.append((key, value))



def unmasked_console() -> tuple[Console, io.StringIO]:
    """Both streams into one buffer, and NO registered secret: a leak would show, not be masked."""
    out = io.StringIO()
    return Console(stdout=out, stderr=out), out



def d1_target(fake: FakeD1, database_id: str, token: str = TOKEN) -> Target:
    return Target(
        stack="dev",
        cloudflare_account_id=ACCOUNT,
        d1_database_id=database_id,
        cloudflare_api_token=token,
        cloudflare_api_base=fake.base_url,
    )



def backup_d1(fake: FakeD1, live: str, out: Path) -> Path:
    """``backup`` as on a cloud stack: the D1 export API (through the Target's API base) into the archive."""
    console, _ = unmasked_console()
    result = run_backup(d1_target(fake, live), out, console, objects=EmptyBucket())  # type: ignore[arg-type]
    return result.archive
