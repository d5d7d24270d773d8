# ruff: noqa: S608  -- only module constants and registry-checked names are formatted into SQL
"""Versioned schema migrations: pure logic over the Database port (SQLite, D1 binding or D1 HTTP).

The caller reads ``config/migrations/*.sql`` (Workers cannot read files) and
passes ``(name, sql)`` pairs. Each pending migration runs in ONE batch together
with the ``_migrations`` row that records it, so it either applies fully and is
recorded, or leaves the schema unchanged. Applied migrations are checked by
checksum: editing a file after it ran is an error, not a silent skip.

Collection indexes are migrations too, generated from the registry: for each
collection, the wanted ``CREATE INDEX`` set (plus ``DROP`` of its stale ones)
is recorded as ``index:<collection>:<hash of the set>``. One is generated only
when the database's ``ix_<collection>_*`` indexes differ from the wanted set,
so an unchanged set is a no-op and A -> B -> A round-trips correctly. Index names are
``ix_<collection>_<hash>`` and every index is partial (``WHERE collection =
'<name>'``) with the document id as its last column, so an equality filter
keeps id order without a sort even before ``ANALYZE`` has run.
"""

from __future__ import annotations

import contextlib
import hashlib
import re
import time
from collections.abc import Iterable
from dataclasses import dataclass

from worker.collections import Collection, Registry
from worker.database import Database, DatabaseError, Statement
from worker.dependent_events import key_paths
from worker.paths import extract_sql
from worker.rule_sql import index_paths

TABLE = "_migrations"
_CREATE_TABLE = (
    f"CREATE TABLE IF NOT EXISTS {TABLE} (name TEXT PRIMARY KEY, checksum TEXT NOT NULL, "
    "applied_at INTEGER NOT NULL)"
)


class MigrationError(Exception):
    """A migration failed or was edited after it was applied; the message names it."""


@dataclass(frozen=True, slots=True)
class Migration:
    name: str
    sql: str

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.sql.encode()).hexdigest()


_TRIGGER = re.compile(r"^CREATE\s+(?:TEMP\s+|TEMPORARY\s+)?TRIGGER\b", re.IGNORECASE)
_ENDS_TRIGGER = re.compile(r"\bEND$", re.IGNORECASE)


def split_sql(sql: str) -> list[str]:
    """Split a script into statements on ``;`` outside quotes and comments.

    A ``CREATE TRIGGER`` runs to ``END;`` (its body's statements end in ``;`` too), the rule
    SQLite's own ``sqlite3_complete`` applies; the batch sends each statement separately."""
    out: list[str] = []
    buf: list[str] = []
    i, n = 0, len(sql)
    while i < n:
        c = sql[i]
        if c == "-" and sql.startswith("--", i):
            j = sql.find("\n", i)
            i = n if j < 0 else j + 1
            buf.append("\n")
            continue
        if c == "/" and sql.startswith("/*", i):
            j = sql.find("*/", i + 2)
            i = n if j < 0 else j + 2
            buf.append(" ")
            continue
        if c in "'\"`[":
            close = "]" if c == "[" else c
            j = i + 1
            while j < n:
                if sql[j] == close:
                    if close != "]" and j + 1 < n and sql[j + 1] == close:
                        j += 2
                        continue
                    break
                j += 1
            buf.append(sql[i : j + 1])
            i = j + 1
            continue
        if c == ";":
            stmt = "".join(buf).strip()
            if _TRIGGER.match(stmt) and not _ENDS_TRIGGER.search(stmt):
                buf.append(c)  # inside a trigger's BEGIN ... END body
            else:
                if stmt:
                    out.append(stmt)
                buf = []
        else:
            buf.append(c)
        i += 1
    stmt = "".join(buf).strip()
    if stmt:
        out.append(stmt)
    return out


def index_sql(collection: Collection) -> dict[str, str]:
    """Index name -> CREATE INDEX statement for a collection's indexed paths."""
    lead = "owner_id, " if collection.owner_scoped else ""
    wanted: dict[str, str] = {}
    paths = list(collection.indexes)
    if collection.custom_rules is not None:  # paths the read rule compares with auth.id
        paths += [p for p in index_paths(collection.rules.list) if p not in paths]
        # the id a lookup reads: a write to the looked-up document finds its dependents by it
        paths += [p for p in key_paths(collection.rules.list) if p not in paths]
    for path in paths:
        columns = f"{lead}{extract_sql(path)}, id"
        digest = hashlib.sha256(f"{collection.access}|{columns}".encode()).hexdigest()[:10]
        name = f"ix_{collection.name}_{digest}"
        wanted[name] = (
            f"CREATE INDEX IF NOT EXISTS {name} ON documents({columns}) "
            f"WHERE collection = '{collection.name}'"
        )
    return wanted


def index_migrations(registry: Registry, existing: Iterable[str]) -> list[Migration]:
    """One migration per collection whose wanted index set differs from a recorded one."""
    existing = set(existing)
    out: list[Migration] = []
    for collection in registry:
        wanted = index_sql(collection)
        prefix = f"ix_{collection.name}_"
        stale = sorted(n for n in existing if n.startswith(prefix) and n not in wanted)
        missing = [n for n in wanted if n not in existing]
        if not missing and not stale:
            continue
        body = ";\n".join([*(f"DROP INDEX IF EXISTS {n}" for n in stale), *wanted.values()])
        digest = hashlib.sha256(";".join(sorted(wanted.values())).encode()).hexdigest()[:12]
        out.append(Migration(f"index:{collection.name}:{digest}", body))
    return out


async def existing_indexes(db: Database) -> set[str]:
    rows = (
        await db.execute(
            "SELECT name FROM sqlite_master WHERE type = 'index' AND name LIKE 'ix\\_%' " "ESCAPE '\\'"
        )
    ).rows
    return {r["name"] for r in rows}


async def applied(db: Database) -> dict[str, str]:
    """Name -> checksum of recorded migrations; reads only (``migrate --list`` writes nothing)."""
    exists = (
        await db.execute("SELECT 1 AS x FROM sqlite_master WHERE type = 'table' AND name = ?", (TABLE,))
    ).rows
    if not exists:
        return {}
    rows = (await db.execute(f"SELECT name, checksum FROM {TABLE} ORDER BY name")).rows
    return {r["name"]: r["checksum"] for r in rows}


async def pending(db: Database, migrations: list[Migration]) -> list[Migration]:
    done = await applied(db)
    todo: list[Migration] = []
    for m in migrations:
        if m.name in done and not m.name.startswith("index:"):  # index ones exist only when needed
            if done[m.name] != m.checksum:
                raise MigrationError(f"migration {m.name} was edited after it was applied (checksum differs)")
            continue
        todo.append(m)
    return todo


async def apply(db: Database, migrations: list[Migration], *, analyze: bool = True) -> list[str]:
    """Apply pending migrations in order, each atomically with its record; return the names applied."""
    todo = await pending(db, migrations)
    if not todo:
        return []
    await db.execute(_CREATE_TABLE)
    done: list[str] = []
    for m in todo:
        statements = [Statement(s) for s in split_sql(m.sql)]
        statements.append(
            Statement(
                f"INSERT OR REPLACE INTO {TABLE} (name, checksum, applied_at) VALUES (?, ?, ?)",
                (m.name, m.checksum, int(time.time() * 1000)),
            )
        )
        try:
            await db.batch(statements)
        except DatabaseError as exc:
            raise MigrationError(f"migration {m.name} failed and was not applied: {exc}") from None
        done.append(m.name)
    await optimize(db, analyze=analyze)
    return done


async def optimize(db: Database, *, analyze: bool = True) -> None:
    """Keep the planner informed: without statistics it may sort via a JSON-path index (DESIGN.md)."""
    for sql in (("ANALYZE",) if analyze else ()) + ("PRAGMA optimize",):
        # a platform may refuse one of these; the plans stay correct, only slower
        with contextlib.suppress(DatabaseError):
            await db.execute(sql)


async def migrate(db: Database, files: list[tuple[str, str]], registry: Registry | None = None) -> list[str]:
    """Files in name order, then the registry's index migrations; what the ASGI entry and ops call."""
    migrations = [Migration(name, sql) for name, sql in sorted(files)]
    names = await apply(db, migrations)
    if registry is not None:
        names += await apply(db, index_migrations(registry, await existing_indexes(db)))
    return names
