"""``restore`` on a cloud stack: the archive's database into a NEW D1, verified, then switched to.

The live D1 is never written. Steps: the archive's SQLite member becomes SQL
(:func:`import_sql`), a new database ``<live name>-restore-<stamp>`` is created
and the SQL imported through D1's import API, every table's row count (and the
AUTOINCREMENT counters) is read back through the query API and compared with
the manifest, and only then is the stack's plain config ``telestack:d1DatabaseId``
set to the new id and ``pulumi up`` run (:class:`scripts.ops.stack.ConfigSwitch`):
the Worker's ``DB`` binding and the migrations resource move to the new database,
while the Pulumi-managed one stays in state, untouched. Rollback: ``pulumi config
set telestack:d1DatabaseId <previous id>`` (or ``pulumi config rm`` when it was
unset) and ``pulumi up``. A failure before the switch leaves the new database for
inspection and names it; the stack is unchanged.
"""

from __future__ import annotations

import hashlib
import math
import sqlite3
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from scripts.ops import archive
from scripts.ops.console import Console, ExitStatus, OpsError, Step
from scripts.ops.d1_api import D1Api
from scripts.ops.stack import ConfigSwitch, Pulumi, Switch, Target, rollback_command
from scripts.ops.stores import quote_ident

#: plain stack-config key (project ``telestack``) naming the D1 the Worker binds; "" = the managed one
SWITCH_KEY = "d1DatabaseId"
MIGRATIONS_TABLE = "_migrations"
#: D1's limit on one SQL statement (bytes; https://developers.cloudflare.com/d1/platform/limits/):
#: a larger row cannot be imported as one INSERT
D1_STATEMENT_LIMIT = 100_000


# --- the SQL D1 imports ----------------------------------------------------------------------------


def _unused(value: str, primary: str, secondary: str) -> str:
    """A placeholder the text does not contain (SQLite shell's ``unused_string``)."""
    if primary not in value:
        return primary
    if secondary not in value:
        return secondary
    i = 0
    while f"({primary}{i})" in value:
        i += 1
    return f"({primary}{i})"


def _text(value: str) -> str:
    """A string literal on one line: CR/LF become ``char()`` via ``replace`` as D1's own export writes."""
    out = "'" + value.replace("'", "''") + "'"
    for char, code, primary, secondary in (("\r", 13, "\\r", "\\015"), ("\n", 10, "\\n", "\\012")):
        if char in value:
            mark = _unused(value, primary, secondary)
            out = f"replace({out.replace(char, mark)},'{mark}',char({code}))"
    return out


def _literal(value: Any) -> str:
    if value is None:
        return "NULL"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return "NULL"  # SQLite stores NaN as NULL anyway
        if math.isinf(value):
            return "9e999" if value > 0 else "-9e999"
        return repr(value)
    if isinstance(value, bytes):
        return f"X'{value.hex()}'"
    return _text(str(value))


def import_sql(path: Path) -> str:
    """A SQLite file as SQL D1's import accepts: the shape of D1's own export (its ``dumpSql``).

    No ``BEGIN``/``COMMIT`` (D1 wraps an import in its own transaction and refuses them);
    ``PRAGMA defer_foreign_keys`` first; ``_cf_*`` (D1-internal) and ``sqlite_*`` tables skipped,
    except ``sqlite_sequence``: emitted last as ``DELETE`` + ``INSERT``, so AUTOINCREMENT
    counters (the outbox's ``seq``) resume where the backup left them, not at the highest
    remaining row; ``_migrations`` is a plain table here, so the new database counts as migrated.
    Indexes, triggers and views come after the data, as in a dump.
    """
    con = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    out = ["PRAGMA defer_foreign_keys=TRUE;"]
    try:
        tables = con.execute(
            "SELECT name, sql FROM sqlite_master WHERE type='table' AND sql NOT NULL "
            "ORDER BY name='sqlite_sequence', rowid"
        ).fetchall()
        for name, sql in tables:
            if name == "sqlite_sequence":
                out.append("DELETE FROM sqlite_sequence;")
            elif name.startswith(("sqlite_", "_cf_")):
                continue
            elif sql.upper().startswith("CREATE VIRTUAL TABLE"):
                raise OpsError(f"table {name} is a virtual table: D1 cannot import it",
                               ExitStatus.VERIFICATION_FAILED)
            else:
                out.append(f"{sql};")
            columns = [r[1] for r in con.execute(f"PRAGMA table_info({quote_ident(name)})")]
            names = ",".join(quote_ident(c) for c in columns)
            table = quote_ident(name)
            for row in con.execute(f"SELECT {names} FROM {table}"):  # noqa: S608
                out.append(f"INSERT INTO {table} ({names}) VALUES({','.join(map(_literal, row))});")
        rest = con.execute(
            "SELECT name, tbl_name, sql FROM sqlite_master WHERE sql NOT NULL "
            "AND type IN ('index', 'trigger', 'view') ORDER BY type COLLATE NOCASE, rowid"
        ).fetchall()
        out += [f"{sql};" for name, table, sql in rest
                if not name.startswith(("sqlite_", "_cf_")) and not table.startswith("_cf_")]
    except sqlite3.Error as exc:
        raise OpsError(f"cannot turn the archive's database into SQL: {exc}",
                       ExitStatus.VERIFICATION_FAILED) from None
    finally:
        con.close()
    return "\n".join(out) + "\n"


def sequences(path: Path) -> dict[str, int]:
    """AUTOINCREMENT counters of a SQLite file (``sqlite_sequence``), empty when it has none."""
    con = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        if not con.execute("SELECT 1 FROM sqlite_master WHERE name='sqlite_sequence'").fetchone():
            return {}
        return {str(n): int(s) for n, s in con.execute("SELECT name, seq FROM sqlite_sequence")}
    finally:
        con.close()


#: rows per query when reading a restored table back for its digest (D1 caps a response's size)
DIGEST_PAGE = 2000


def row_text_sql(table: str, columns: list[str]) -> str:
    """Each row as one text of ``typeof:quote`` per column, in a total order: the same SQL on the
    archive's SQLite file and on the new D1 (both SQLite), so equal digests mean equal rows — values
    and storage classes, blobs included — without trusting the import's own report."""
    cells = " || ',' || ".join(f"typeof({quote_ident(c)}) || ':' || quote({quote_ident(c)})" for c in columns)
    return f"SELECT {cells} AS r FROM {quote_ident(table)} ORDER BY r"  # noqa: S608


def archive_digests(path: Path, tables: list[str]) -> dict[str, tuple[list[str], str]]:
    """Per table of the archive's database: its columns and the sha256 of its rows (see row_text_sql)."""
    con = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        out: dict[str, tuple[list[str], str]] = {}
        for table in tables:
            columns = [r[1] for r in con.execute(f"PRAGMA table_info({quote_ident(table)})")]
            digest = hashlib.sha256()
            for (text,) in con.execute(row_text_sql(table, columns)):
                digest.update(text.encode() + b"\n")
            out[table] = (columns, digest.hexdigest())
        return out
    finally:
        con.close()


def _user_tables(counts: dict[str, int]) -> dict[str, int]:
    return {t: n for t, n in counts.items() if not t.startswith(("_cf_", "sqlite_"))}


# --- the flow ----------------------------------------------------------------------------------------


@dataclass
class CloudD1Restore:
    """One restore into a new D1: :meth:`check` (nothing created), :meth:`prepare`, :meth:`switch_over`."""

    target: Target
    console: Console
    switch: Switch | None = None
    api: D1Api | None = None
    live_id: str = ""
    live_name: str = ""
    new_id: str = ""
    new_name: str = ""
    previous_config: str | None = None
    counts: dict[str, int] = field(default_factory=dict)

    @classmethod
    def applies(cls, target: Target) -> bool:
        """A cloud stack: its database is a D1 reached through the API, not a file we can rename."""
        return bool(target.d1_database_id and not target.db_path)

    def check(self, dry_run: bool) -> None:
        """Everything we need, before anything exists: credentials, the live database, a stack to switch."""
        self.target.require("cloudflare_account_id", "cloudflare_api_token", "d1_database_id")
        if self.switch is None and not dry_run:
            if not self.target.stack:
                raise OpsError(
                    "a cloud restore switches the stack's telestack:d1DatabaseId after verifying: "
                    "pass --stack <name>", ExitStatus.USAGE)
            self.switch = ConfigSwitch(Pulumi(), self.target.stack)
        if self.api is None:
            self.api = D1Api(self.target.cloudflare_account_id, self.target.cloudflare_api_token,
                             self.target.cloudflare_api_base)
        self.live_id = self.target.d1_database_id
        self.live_name = str(self.api.get(self.live_id).get("name") or "telestack")

    def prepare(self, staged: Path, expected: dict[str, int], stamp: str, dry_run: bool) -> None:
        """New database, import, verify; on failure say what is left where (the live one is untouched)."""
        assert self.api is not None, "check() first"
        self.new_name = f"{self.live_name}-restore-{stamp.lower()}"
        sql = import_sql(staged).encode()
        too_long = sum(1 for line in sql.splitlines()
                       if line.startswith(b"INSERT") and len(line) > D1_STATEMENT_LIMIT)
        if too_long:
            self.console.warn(f"{too_long} row(s) make an INSERT over D1's {D1_STATEMENT_LIMIT}-byte "
                              "statement limit: D1 may refuse the import (the stack stays as it is then)")
        if MIGRATIONS_TABLE not in expected:
            self.console.warn(f"the archive's database has no {MIGRATIONS_TABLE} table: the stack's "
                              "migrations will run against the restored database at switch-over")
        if dry_run:
            self.console.progress(
                f"dry run: would create D1 {self.new_name}, import {len(sql)} bytes of SQL "
                f"({sum(expected.values())} rows), verify counts, then set telestack:{SWITCH_KEY} "
                f"(now {self.live_id}) to its id and run pulumi up")
            return
        with Step(self.console, f"D1: creating database {self.new_name}"):
            self.new_id = self.api.create(self.new_name)
        self.console.progress(f"new D1 {self.new_name} ({self.new_id}); live {self.live_id} untouched")
        try:
            with Step(self.console, f"D1: importing {len(sql)} bytes of SQL into {self.new_name}"):
                self.api.import_sql(self.new_id, sql, self.console.progress)
            with Step(self.console, "D1: verifying row counts against the manifest"):
                self.verify(expected, sequences(staged))
            with Step(self.console, "D1: comparing every table's rows with the archive (sha256)"):
                self.verify_content(archive_digests(staged, sorted(_user_tables(expected))))
        except OpsError as exc:
            raise OpsError(
                f"{exc}. Nothing was switched: the live D1 {self.live_id} is untouched; the new database "
                f"{self.new_name} ({self.new_id}) is left for inspection (delete it when done)",
                exc.status) from None

    def verify(self, expected: dict[str, int], expected_seq: dict[str, int]) -> None:
        """Tables and per-table counts through the query API (no PRAGMA: D1 refuses most of them)."""
        assert self.api is not None
        want = _user_tables(expected)
        rows = self.api.query(
            self.new_id,
            "SELECT name FROM sqlite_master WHERE type='table' "
            "AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\' AND name NOT LIKE '\\_cf\\_%' ESCAPE '\\'")
        tables = {str(r["name"]) for r in rows}
        counts: dict[str, int] = {}
        if want.keys() & tables:
            union = " UNION ALL ".join(
                f"SELECT {_text(t)} AS t, count(*) AS n FROM {quote_ident(t)}"  # noqa: S608
                for t in sorted(want.keys() & tables))
            counts = {str(r["t"]): int(r["n"]) for r in self.api.query(self.new_id, union)}
        for extra in tables - want.keys():
            counts[extra] = -1
        if counts != want:
            diff = archive.count_differences(counts, want)
            raise OpsError(f"restored D1 does not match the manifest (table: restored vs archived): {diff}",
                           ExitStatus.VERIFICATION_FAILED)
        self.counts = counts
        self.console.progress(f"  {len(counts)} tables, {sum(counts.values())} rows: as in the manifest")
        if expected_seq:
            try:
                got = {str(r["name"]): int(r["seq"]) for r in
                       self.api.query(self.new_id, "SELECT name, seq FROM sqlite_sequence")}
            except OpsError as exc:
                self.console.warn(f"could not read back AUTOINCREMENT counters ({exc}); counts verified")
                return
            if got != expected_seq:
                raise OpsError(f"AUTOINCREMENT counters differ: restored {got}, archived {expected_seq}",
                               ExitStatus.VERIFICATION_FAILED)
            self.console.progress(f"  AUTOINCREMENT counters as archived: {got}")

    def verify_content(self, digests: dict[str, tuple[list[str], str]]) -> None:
        """Counts can match while values differ (a lossy import, a changed storage class): read every
        restored row back, page by page, and compare each table's digest with the archive's."""
        assert self.api is not None
        differ = []
        for table, (columns, want) in digests.items():
            digest, offset = hashlib.sha256(), 0
            while True:
                rows = self.api.query(self.new_id, f"{row_text_sql(table, columns)} LIMIT ? OFFSET ?",
                                      [DIGEST_PAGE, offset])
                for row in rows:
                    digest.update(str(row["r"]).encode() + b"\n")
                offset += len(rows)
                if len(rows) < DIGEST_PAGE:
                    break
            if digest.hexdigest() != want:
                differ.append(table)
        if differ:
            raise OpsError(f"restored D1 rows differ from the archive's in {', '.join(differ)} "
                           "(counts match, content does not)", ExitStatus.VERIFICATION_FAILED)
        self.console.progress(f"  {len(digests)} tables: rows identical to the archive's (sha256)")

    def switch_over(self) -> str:
        """Point the stack at the verified database; returns the rollback command."""
        assert self.switch is not None and self.new_id
        self.previous_config = self.switch.current(SWITCH_KEY) or ""
        with Step(self.console, f"setting telestack:{SWITCH_KEY} to {self.new_id}"):
            self.switch(SWITCH_KEY, self.new_id)
        rollback = rollback_command(self.target.stack, SWITCH_KEY, self.previous_config)
        self.console.progress(f"previous D1 {self.live_id} kept as it was; rollback: {rollback}")
        return rollback


__all__ = ["SWITCH_KEY", "CloudD1Restore", "import_sql", "sequences"]
