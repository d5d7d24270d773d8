"""The cloud auth store: SuperTokens Core's PostgreSQL database, dumped and restored whole.

Cloud stacks keep users in PostgreSQL (infra/render_docker.py), reached through the stack's secret
``auth_db_url`` output (or ``TELESTACK_AUTH_DB_URL``). Why each step:

- backup holds one REPEATABLE READ transaction, exports its snapshot and runs ``pg_dump
  --snapshot`` on it, so the manifest's row counts and the dump are the same instant even while
  SuperTokens writes; the dump is then read back in full (``pg_restore``) before it is archived;
- restore never writes the live database: ``CREATE DATABASE <live>_restore_<stamp>``,
  ``pg_restore --single-transaction`` into it, per-table counts against the manifest, and only
  then the stack's ``authDatabaseName`` is switched (config + ``pulumi up``). On any failure the
  new database is kept for inspection and named; rollback = the previous name + ``pulumi up``;
- the password never reaches argv or output: the tools read it from a 0600 passfile in a private
  temp dir (``PGPASSFILE``), and the console masks it.
"""

from __future__ import annotations

import glob
import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from scripts.ops import archive
from scripts.ops.console import Console, ExitStatus, OpsError, Step
from scripts.ops.stack import ConfigSwitch, Pulumi, Switch, Target, rollback_command

MEMBER = "auth/auth.pgdump"
#: member meta ``format``: what restore must feed to pg_restore
DUMP_FORMAT = "pg_dump-custom"
#: plain stack-config key (Pulumi.yaml) naming SuperTokens Core's database
SWITCH_KEY = "authDatabaseName"
#: where PostgreSQL's tools live when they are not on PATH (Debian/Ubuntu packages), newest first
FALLBACK_BIN_GLOB = "/usr/lib/postgresql/*/bin"
INSTALL_HINT = (
    "install the PostgreSQL client tools (apt-get install postgresql-client, or run scripts/bootstrap), "
    "or set TELESTACK_PG_BIN to their directory"
)
_RESTORED_SUFFIX = re.compile(r"_restore_\d{8}t\d{6}z$")


# --- connection --------------------------------------------------------------------------------


@dataclass(frozen=True)
class PgUrl:
    """``postgresql://user:pw@host:port/db?params`` split so the password travels apart."""

    params: Mapping[str, str]
    password: str = field(default="", repr=False)

    @classmethod
    def parse(cls, url: str) -> PgUrl:
        try:  # the first use of the driver on every path: say how to get it
            from psycopg.conninfo import conninfo_to_dict
        except ImportError:
            raise OpsError(
                "psycopg (the PostgreSQL driver) is not installed: pip install -r requirements/ops.txt",
                ExitStatus.DEPENDENCY_UNHEALTHY,
            ) from None
        if not url.startswith(("postgresql://", "postgres://")):
            raise OpsError("auth_db_url is not a postgresql:// URL", ExitStatus.USAGE)
        try:
            parsed = {k: str(v) for k, v in conninfo_to_dict(url).items() if v is not None}
        except Exception:  # libpq's own parser; its message would quote the URL (and the password)
            raise OpsError("auth_db_url is not a valid PostgreSQL URL", ExitStatus.USAGE) from None
        password = parsed.pop("password", "")
        if not parsed.get("dbname"):
            raise OpsError("auth_db_url names no database (…/<dbname>)", ExitStatus.USAGE)
        return cls(parsed, password)

    @property
    def dbname(self) -> str:
        return self.params["dbname"]

    def with_db(self, dbname: str) -> PgUrl:
        return PgUrl({**self.params, "dbname": dbname}, self.password)

    def conninfo(self) -> str:
        """libpq conninfo WITHOUT the password: safe in argv (the passfile supplies it)."""
        from psycopg.conninfo import make_conninfo

        return make_conninfo(**self.params)

    @property
    def display(self) -> str:
        where = f"{self.params.get('host', 'localhost')}:{self.params.get('port', '5432')}"
        return f"database {self.dbname} on {where}"

    def connect(self, **kwargs: Any) -> Any:
        import psycopg

        try:
            return psycopg.connect(
                self.conninfo(), password=self.password or None, connect_timeout=15, **kwargs
            )
        except psycopg.OperationalError as exc:
            raise OpsError(
                f"cannot reach the auth store ({self.display}): {exc}".strip(),
                ExitStatus.DEPENDENCY_UNHEALTHY,
            ) from None


def _ident(name: str) -> Any:
    from psycopg import sql

    return sql.Identifier(name)


def table_counts(con: Any) -> dict[str, int]:
    """Rows per user table (``table`` in public, else ``schema.table``), in the connection's snapshot."""
    from psycopg import sql

    rows = con.execute(
        "SELECT n.nspname, c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE c.relkind IN ('r', 'p') AND NOT c.relispartition AND n.nspname NOT IN ('pg_catalog', "
        "'information_schema') AND n.nspname NOT LIKE 'pg\\_%' ORDER BY 1, 2"
    ).fetchall()
    counts: dict[str, int] = {}
    for schema, table in rows:
        query = sql.SQL("SELECT count(*) FROM {}.{}").format(_ident(schema), _ident(table))
        counts[table if schema == "public" else f"{schema}.{table}"] = int(con.execute(query).fetchone()[0])
    return counts


# --- the tools ---------------------------------------------------------------------------------


def find_tool(name: str) -> str:
    """``TELESTACK_PG_BIN``, then PATH, then the distribution's versioned dirs (newest first)."""
    dirs = [os.environ.get("TELESTACK_PG_BIN", ""), os.environ.get("PATH", "")]
    dirs += sorted(glob.glob(FALLBACK_BIN_GLOB), key=_dir_major, reverse=True)
    found = shutil.which(name, path=os.pathsep.join(d for d in dirs if d))
    if not found:
        raise OpsError(f"{name} not found: {INSTALL_HINT}", ExitStatus.DEPENDENCY_UNHEALTHY)
    return found


def _dir_major(path: str) -> int:
    name = Path(path).parent.name
    return int(name) if name.isdigit() else 0


def tool_major(path: str) -> int:
    out = subprocess.run([path, "--version"], capture_output=True, text=True, check=False).stdout
    found = re.search(r"\(PostgreSQL\) (\d+)", out)
    if not found:
        raise OpsError(
            f"{path} --version said {out.strip()!r}: not a PostgreSQL tool", ExitStatus.DEPENDENCY_UNHEALTHY
        )
    return int(found.group(1))


class Tools:
    """pg_dump/pg_restore with the password in a 0600 passfile (``PGPASSFILE``), never argv or env."""

    def __init__(self, url: PgUrl) -> None:
        self.url = url
        self._dir: tempfile.TemporaryDirectory[str] | None = None

    def __enter__(self) -> Tools:
        self._dir = tempfile.TemporaryDirectory(prefix="telestack-pg-")
        passfile = Path(self._dir.name) / "pgpass"
        fd = os.open(passfile, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        escaped = self.url.password.replace("\\", "\\\\").replace(":", "\\:")
        user = self.url.params.get("user", "").replace("\\", "\\\\").replace(":", "\\:")
        with os.fdopen(fd, "w") as fh:
            fh.write(f"*:*:*:{user}:{escaped}\n")
        self.passfile = passfile
        return self

    def __exit__(self, *_: object) -> None:
        if self._dir is not None:
            self._dir.cleanup()

    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if k != "PGPASSWORD"}  # the passfile is the one source
        env["PGPASSFILE"] = str(self.passfile)
        env["PGCONNECT_TIMEOUT"] = "15"
        return env

    def run(self, tool: str, *args: str, what: str) -> subprocess.CompletedProcess[str]:
        """Run one tool; a failure raises with the end of its stderr (the tools never print the password)."""
        proc = subprocess.run(
            [find_tool(tool), *args], capture_output=True, text=True, env=self.env(), check=False
        )
        if proc.returncode != 0:
            tail = "\n".join(proc.stderr.strip().splitlines()[-5:])
            raise OpsError(f"{what}: {tool} exited {proc.returncode}: {tail}", ExitStatus.VERIFICATION_FAILED)
        return proc

    def read_back(self, dump: Path) -> set[str]:
        """Read the whole dump as pg_restore would (catches truncation/corruption); returns the tables
        it carries data for (``table`` or ``schema.table``, as :func:`table_counts` names them)."""
        self.run("pg_restore", f"--file={os.devnull}", str(dump), what=f"{dump.name} does not read back")
        listing = self.run(
            "pg_restore", "--list", str(dump), what=f"{dump.name} has no readable table of contents"
        )
        tables = set()
        for line in listing.stdout.splitlines():
            found = re.search(r" TABLE DATA (\S+) (\S+) ", line + " ")
            if found and not line.startswith(";"):
                schema, table = found.groups()
                tables.add(table if schema == "public" else f"{schema}.{table}")
        return tables


# --- backup ------------------------------------------------------------------------------------


def backup(url: str, staging: Path, console: Console) -> tuple[dict[str, int], dict[str, Any]]:
    """Dump the auth store into ``staging/auth/auth.pgdump``; returns (per-table counts, member meta)."""
    pg = PgUrl.parse(url)
    console.register_secret(pg.password)
    dump = staging / MEMBER
    dump.parent.mkdir(parents=True, exist_ok=True)
    pg_dump = find_tool("pg_dump")
    find_tool("pg_restore")  # needed to read the dump back: fail before dumping, not after
    import psycopg

    with Tools(pg) as tools, pg.connect() as con:
        con.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
        con.read_only = True
        server_major = int(con.execute("SHOW server_version_num").fetchone()[0]) // 10000
        dump_major = tool_major(pg_dump)
        if dump_major < server_major:
            raise OpsError(
                f"pg_dump {dump_major} cannot dump a PostgreSQL {server_major} server: install "
                f"postgresql-client-{server_major} (or set TELESTACK_PG_BIN)",
                ExitStatus.DEPENDENCY_UNHEALTHY,
            )
        # one snapshot for the counts below and for pg_dump: both see the same instant
        snapshot = str(con.execute("SELECT pg_export_snapshot()").fetchone()[0])
        counts = table_counts(con)
        console.progress(f"  snapshot {snapshot}: {len(counts)} tables, {sum(counts.values())} rows")
        tools.run(
            "pg_dump",
            "--format=custom",
            "--no-owner",
            "--no-privileges",
            f"--snapshot={snapshot}",
            f"--file={dump}",
            f"--dbname={pg.conninfo()}",
            what="pg_dump of the auth store failed",
        )
        con.rollback()  # read only: ends the transaction that held the snapshot
        if dump.stat().st_size == 0:
            raise OpsError("auth store dump is 0 bytes", ExitStatus.VERIFICATION_FAILED)
        carried = tools.read_back(dump)
    missing = sorted(set(counts) - carried)
    if missing:
        raise OpsError(f"auth store dump lacks the data of {missing[:3]}", ExitStatus.VERIFICATION_FAILED)
    meta = archive.member_meta(
        dump,
        "auth",
        format=DUMP_FORMAT,
        pg_dump_major=dump_major,
        server_major=server_major,
        source_database=pg.dbname,
    )
    return counts, meta


# --- restore -----------------------------------------------------------------------------------


def restored_name(live: str, stamp: str) -> str:
    """``<live>_restore_<stamp>`` (a second restore replaces the suffix, never stacks it; <= 63 bytes)."""
    base = _RESTORED_SUFFIX.sub("", live)
    suffix = f"_restore_{stamp.lower()}"
    return base[: 63 - len(suffix)] + suffix


@dataclass
class Prepared:
    """A verified copy of the auth store in a new database, not yet switched to."""

    new_database: str
    live_database: str
    rows: int
    switch: Switch | None = None


def prepare_restore(
    staging: Path,
    manifest: archive.Manifest,
    target: Target,
    console: Console,
    *,
    stamp: str,
    dry_run: bool,
    switch: Switch | None,
) -> Prepared | None:
    """New database <- the archive's dump, counts checked; None when the archive has no PostgreSQL member.

    Everything that can be refused without side effects is checked first (target, tools, a stack
    to switch, the dump reading back), so a bad archive or setup creates no database.
    """
    meta = manifest.members.get(MEMBER)
    if meta is None:
        return None
    if meta.get("format") != DUMP_FORMAT:
        raise OpsError(f"{MEMBER}: unknown format {meta.get('format')!r}", ExitStatus.VERIFICATION_FAILED)
    if not target.auth_db_url:
        raise OpsError(
            f"archive has {MEMBER} but the stack exposes no auth_db_url "
            "(stack output, or TELESTACK_AUTH_DB_URL)",
            ExitStatus.USAGE,
        )
    if switch is None and not dry_run:
        if not target.stack:
            raise OpsError(
                f"restoring the PostgreSQL auth store switches the stack's telestack:{SWITCH_KEY} "
                "after verifying: pass --stack <name>",
                ExitStatus.USAGE,
            )
        switch = ConfigSwitch(Pulumi(), target.stack)
    pg = PgUrl.parse(target.auth_db_url)
    console.register_secret(pg.password)
    expected: dict[str, int] = {k: int(v) for k, v in manifest.counts.get("auth", {}).items()}
    dump = staging / MEMBER
    restore_major = tool_major(find_tool("pg_restore"))
    if restore_major < int(meta.get("pg_dump_major", 0)):
        raise OpsError(
            f"pg_restore {restore_major} cannot read a dump written by pg_dump {meta['pg_dump_major']}: "
            f"install postgresql-client-{meta['pg_dump_major']} (or set TELESTACK_PG_BIN)",
            ExitStatus.DEPENDENCY_UNHEALTHY,
        )
    new = restored_name(pg.dbname, stamp)
    rows = sum(expected.values())
    with Tools(pg) as tools:
        carried = tools.read_back(dump)  # before anything is created
        if set(expected) - carried:
            raise OpsError(
                f"{MEMBER} lacks the data of {sorted(set(expected) - carried)[:3]}",
                ExitStatus.VERIFICATION_FAILED,
            )
        if dry_run:
            console.progress(
                f"dry run: would restore {MEMBER} ({len(expected)} tables, {rows} rows) into a new "
                f"database {new} beside {pg.dbname}, then set telestack:{SWITCH_KEY}={new} and run pulumi up"
            )
            return Prepared(new, pg.dbname, rows)
        with Step(console, f"auth store: creating database {new} beside {pg.dbname} (never written)"):
            _create_like(pg, new)
        keep = (
            f"nothing was switched: the live database {pg.dbname} is untouched; {new} is left for "
            f'inspection (drop it when done: DROP DATABASE "{new}")'
        )
        try:
            with Step(console, f"auth store: pg_restore into {new}"):
                tools.run(
                    "pg_restore",
                    "--exit-on-error",
                    "--single-transaction",
                    "--no-owner",
                    "--no-privileges",
                    f"--dbname={pg.with_db(new).conninfo()}",
                    str(dump),
                    what=f"restoring into {new} failed",
                )
        except OpsError as exc:
            raise OpsError(f"{exc}. {keep}", ExitStatus.VERIFICATION_FAILED) from None
    with pg.with_db(new).connect(autocommit=True) as con:
        counts = table_counts(con)
    if counts != expected:
        diff = archive.count_differences(counts, expected)
        raise OpsError(
            f"restored auth store does not match the manifest (table: restored vs archived) "
            f"{dict(list(diff.items())[:5])}. {keep}",
            ExitStatus.VERIFICATION_FAILED,
        )
    console.progress(f"  {new}: {len(counts)} tables, {rows} rows: counts match the manifest")
    return Prepared(new, pg.dbname, rows, switch)


def _create_like(pg: PgUrl, new: str) -> None:
    """CREATE DATABASE from template0 with the live database's encoding and locale (same sort order)."""
    from psycopg import errors, sql

    with pg.connect(autocommit=True) as con:
        enc, collate, ctype = con.execute(
            "SELECT pg_encoding_to_char(encoding), datcollate, datctype FROM pg_database WHERE datname = %s",
            (pg.dbname,),
        ).fetchone()
        try:
            con.execute(
                sql.SQL("CREATE DATABASE {} TEMPLATE template0 ENCODING {} LC_COLLATE {} LC_CTYPE {}").format(
                    _ident(new), sql.Literal(enc), sql.Literal(collate), sql.Literal(ctype)
                )
            )
        except errors.DuplicateDatabase:
            raise OpsError(
                f"database {new} already exists (a restore in the same second?): retry, or drop it",
                ExitStatus.USAGE,
            ) from None


def switch_over(
    prepared: Prepared | None, console: Console, switched: list[str], kept: dict[str, str], stack: str = ""
) -> None:
    """Point the stack at the verified database; the previous one stays (rollback = its name + up)."""
    if prepared is None or prepared.switch is None:
        return
    key = f"telestack:{SWITCH_KEY}"
    with Step(console, f"setting {key}: {prepared.live_database} -> {prepared.new_database}"):
        prepared.switch(SWITCH_KEY, prepared.new_database)
    switched.append(f"{key}={prepared.new_database}")
    kept[key] = prepared.live_database
    console.progress(
        f"previous auth database {prepared.live_database} kept as it was; rollback: "
        f"{rollback_command(stack, SWITCH_KEY, prepared.live_database)}"
    )


__all__ = ["MEMBER", "SWITCH_KEY", "PgUrl", "Prepared", "backup", "prepare_restore", "switch_over"]
