"""SQLite persistence for the stand-in: users, sessions, signing keys, user metadata.

One connection, used only from the event-loop thread, in WAL mode. Rotation of a
refresh token is a read-modify-write, so it runs inside ``BEGIN IMMEDIATE``
(see :meth:`Store.transaction`): two concurrent refreshes of the same token can
never both win, even if a second stand-in process opened the same file.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

_SCHEMA = """
CREATE TABLE IF NOT EXISTS users (
  app_id TEXT NOT NULL, tenant_id TEXT NOT NULL, user_id TEXT NOT NULL,
  email TEXT NOT NULL, password_hash TEXT NOT NULL, time_joined INTEGER NOT NULL,
  PRIMARY KEY (app_id, user_id), UNIQUE (app_id, tenant_id, email));
CREATE TABLE IF NOT EXISTS sessions (
  app_id TEXT NOT NULL, handle TEXT NOT NULL, tenant_id TEXT NOT NULL,
  user_id TEXT NOT NULL, recipe_user_id TEXT NOT NULL,
  user_data_jwt TEXT NOT NULL, user_data_db TEXT NOT NULL,
  current_hash2 TEXT NOT NULL,      -- sha256hex(sha256hex(current refresh token))
  prev_hash2 TEXT,                  -- the token the current one replaced (CDI 5.6 grace)
  rotated_at INTEGER,               -- unix ms of the last rotation
  expires_at INTEGER NOT NULL, created_at INTEGER NOT NULL,
  use_static_key INTEGER NOT NULL,
  PRIMARY KEY (app_id, handle));
CREATE INDEX IF NOT EXISTS sessions_user ON sessions (app_id, user_id);
CREATE TABLE IF NOT EXISTS signing_keys (
  kid TEXT PRIMARY KEY, kind TEXT NOT NULL CHECK (kind IN ('dynamic', 'static')),
  private_pem TEXT NOT NULL, created_at INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS user_metadata (
  app_id TEXT NOT NULL, user_id TEXT NOT NULL, metadata TEXT NOT NULL,
  PRIMARY KEY (app_id, user_id));
CREATE TABLE IF NOT EXISTS secrets (name TEXT PRIMARY KEY, value BLOB NOT NULL);
"""


@dataclass(frozen=True, slots=True)
class User:
    user_id: str
    tenant_id: str
    email: str
    password_hash: str
    time_joined: int


@dataclass(frozen=True, slots=True)
class Session:
    handle: str
    tenant_id: str
    user_id: str
    recipe_user_id: str
    user_data_jwt: dict[str, Any]
    user_data_db: dict[str, Any]
    current_hash2: str
    prev_hash2: str | None
    rotated_at: int | None
    expires_at: int
    created_at: int
    use_static_key: bool


class Store:
    def __init__(self, path: str | Path) -> None:
        self.conn = sqlite3.connect(str(path), isolation_level=None)
        self.conn.row_factory = sqlite3.Row
        self.conn.execute("PRAGMA journal_mode=WAL")
        self.conn.execute("PRAGMA synchronous=NORMAL")
        self.conn.execute("PRAGMA busy_timeout=5000")
        self.conn.executescript(_SCHEMA)
        #: tables keyed by (app_id, user_id) that /user/remove clears; recipe modules add theirs
        self.user_tables: list[str] = ["sessions", "user_metadata"]

    def close(self) -> None:
        self.conn.close()

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """A write transaction taken up front, so read-check-write sequences are atomic."""
        self.conn.execute("BEGIN IMMEDIATE")
        try:
            yield self.conn
        except BaseException:
            self.conn.execute("ROLLBACK")
            raise
        self.conn.execute("COMMIT")

    # --- secrets (refresh-token encryption key) -------------------------------------------
    def secret(self, name: str, make: Any) -> bytes:
        row = self.conn.execute("SELECT value FROM secrets WHERE name = ?", (name,)).fetchone()
        if row is not None:
            return bytes(row["value"])
        value = make()
        self.conn.execute("INSERT OR IGNORE INTO secrets (name, value) VALUES (?, ?)", (name, value))
        return bytes(self.conn.execute("SELECT value FROM secrets WHERE name = ?", (name,)).fetchone()[0])

    # --- users ---------------------------------------------------------------------------
    def insert_user(self, app_id: str, user: User) -> bool:
        """False when the email is already taken in that tenant."""
        try:
            self.conn.execute(
                "INSERT INTO users (app_id, tenant_id, user_id, email, password_hash, time_joined)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                (app_id, user.tenant_id, user.user_id, user.email, user.password_hash, user.time_joined),
            )
        except sqlite3.IntegrityError:
            return False
        return True

    def update_session_jwt_data(self, app_id: str, handle: str, data: dict[str, Any]) -> bool:
        cur = self.conn.execute("UPDATE sessions SET user_data_jwt = ? WHERE app_id = ? AND handle = ?",
                                (json.dumps(data), app_id, handle))
        return cur.rowcount > 0

    def update_session_db_data(self, app_id: str, handle: str, data: dict[str, Any]) -> bool:
        cur = self.conn.execute("UPDATE sessions SET user_data_db = ? WHERE app_id = ? AND handle = ?",
                                (json.dumps(data), app_id, handle))
        return cur.rowcount > 0

    def user_by_email(self, app_id: str, tenant_id: str, email: str) -> User | None:
        row = self.conn.execute(
            "SELECT * FROM users WHERE app_id = ? AND tenant_id = ? AND email = ?", (app_id, tenant_id, email)
        ).fetchone()
        return _user(row)

    def delete_user(self, app_id: str, user_id: str) -> None:
        with self.transaction() as c:
            c.execute("DELETE FROM users WHERE app_id = ? AND user_id = ?", (app_id, user_id))
            for table in self.user_tables:  # names from code, never from a request
                c.execute(f"DELETE FROM {table} WHERE app_id = ? AND user_id = ?", (app_id, user_id))  # noqa: S608

    # --- sessions ------------------------------------------------------------------------
    def insert_session(self, app_id: str, s: Session) -> None:
        self.conn.execute(
            "INSERT INTO sessions (app_id, handle, tenant_id, user_id, recipe_user_id, user_data_jwt,"
            " user_data_db, current_hash2, prev_hash2, rotated_at, expires_at, created_at, use_static_key)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (app_id, s.handle, s.tenant_id, s.user_id, s.recipe_user_id, json.dumps(s.user_data_jwt),
             json.dumps(s.user_data_db), s.current_hash2, s.prev_hash2, s.rotated_at, s.expires_at,
             s.created_at, int(s.use_static_key)),
        )

    def session(self, app_id: str, handle: str) -> Session | None:
        row = self.conn.execute(
            "SELECT * FROM sessions WHERE app_id = ? AND handle = ?", (app_id, handle)
        ).fetchone()
        if row is None:
            return None
        return Session(
            handle=row["handle"], tenant_id=row["tenant_id"], user_id=row["user_id"],
            recipe_user_id=row["recipe_user_id"], user_data_jwt=json.loads(row["user_data_jwt"]),
            user_data_db=json.loads(row["user_data_db"]), current_hash2=row["current_hash2"],
            prev_hash2=row["prev_hash2"], rotated_at=row["rotated_at"], expires_at=row["expires_at"],
            created_at=row["created_at"], use_static_key=bool(row["use_static_key"]),
        )

    def rotate(self, app_id: str, handle: str, current_hash2: str, prev_hash2: str | None,
               rotated_at: int | None, expires_at: int) -> None:
        self.conn.execute(
            "UPDATE sessions SET current_hash2 = ?, prev_hash2 = ?, rotated_at = ?, expires_at = ?"
            " WHERE app_id = ? AND handle = ?",
            (current_hash2, prev_hash2, rotated_at, expires_at, app_id, handle),
        )

    def delete_sessions(self, app_id: str, handles: list[str]) -> list[str]:
        """Delete the given sessions; returns the handles that existed."""
        removed = []
        for handle in handles:
            cur = self.conn.execute("DELETE FROM sessions WHERE app_id = ? AND handle = ?", (app_id, handle))
            if cur.rowcount:
                removed.append(handle)
        return removed

    def session_handles(self, app_id: str, user_id: str, tenant_id: str | None, now_ms: int) -> list[str]:
        sql = "SELECT handle FROM sessions WHERE app_id = ? AND user_id = ? AND expires_at > ?"
        params: tuple[Any, ...] = (app_id, user_id, now_ms)
        if tenant_id is not None:
            sql += " AND tenant_id = ?"
            params += (tenant_id,)
        return [r[0] for r in self.conn.execute(sql + " ORDER BY created_at", params)]

    # --- signing keys --------------------------------------------------------------------
    def signing_keys(self) -> list[sqlite3.Row]:
        return list(self.conn.execute("SELECT * FROM signing_keys ORDER BY created_at"))

    def insert_signing_key(self, kid: str, kind: str, private_pem: str, created_at: int) -> None:
        self.conn.execute(
            "INSERT INTO signing_keys (kid, kind, private_pem, created_at) VALUES (?, ?, ?, ?)",
            (kid, kind, private_pem, created_at),
        )

    def delete_signing_key(self, kid: str) -> None:
        self.conn.execute("DELETE FROM signing_keys WHERE kid = ?", (kid,))

    # --- user metadata -------------------------------------------------------------------
    def metadata(self, app_id: str, user_id: str) -> dict[str, Any]:
        row = self.conn.execute(
            "SELECT metadata FROM user_metadata WHERE app_id = ? AND user_id = ?", (app_id, user_id)
        ).fetchone()
        return json.loads(row[0]) if row else {}

    def set_metadata(self, app_id: str, user_id: str, metadata: dict[str, Any]) -> None:
        self.conn.execute(
            "INSERT INTO user_metadata (app_id, user_id, metadata) VALUES (?, ?, ?)"
            " ON CONFLICT (app_id, user_id) DO UPDATE SET metadata = excluded.metadata",
            (app_id, user_id, json.dumps(metadata)),
        )

    def delete_metadata(self, app_id: str, user_id: str) -> None:
        self.conn.execute("DELETE FROM user_metadata WHERE app_id = ? AND user_id = ?", (app_id, user_id))


def _user(row: sqlite3.Row | None) -> User | None:
    if row is None:
        return None
    return User(user_id=row["user_id"], tenant_id=row["tenant_id"], email=row["email"],
                password_hash=row["password_hash"], time_joined=row["time_joined"])
