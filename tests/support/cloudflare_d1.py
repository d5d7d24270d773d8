"""A loopback fake of Cloudflare's D1 REST API, backed by real SQLite files (one per database).

No registry ships Cloudflare's API, so the runbooks' cloud paths are tested against this. It keeps
the contract scripts/ops/d1_api.py documents, including the parts that make a client fail:

- ``Authorization: Bearer <token>``: missing -> 401, wrong -> 403, both
  ``{"success": false, "errors": [{"code", "message"}]}``; an unknown account -> 403; unknown database -> 404;
- ``POST .../d1/database`` {name}; ``GET .../d1/database/{id}``; ``POST .../{id}/query`` {sql, params}
  (ONE statement; rows as objects; D1's authorizer: no PRAGMA outside a short allow-list, no
  ``_cf_*`` table, no BEGIN/COMMIT/SAVEPOINT, no ATTACH);
- export: ``{"output_format": "polling"}`` -> ``active`` + bookmark, polled until ``complete`` with a
  signed URL serving the dump (D1's shape: ``PRAGMA defer_foreign_keys``, no transaction, no ``_cf_*``);
- import: ``init`` {etag} -> {upload_url, filename}; PUT to the URL (refused unless the body's md5 is
  the etag; answers it as a quoted ``ETag``); ``ingest`` -> ``active`` + bookmark; ``poll`` until
  ``complete`` or ``error`` (with D1's reason), reported to ONE poll; a poll when no import is
  running (an unknown bookmark, or the outcome already reported) is answered as D1 answers it:
  HTTP 200, envelope ``success: true``, ``result: {"success": false, "error": "Not currently
  importing anything."}`` (the shape Cloudflare's import tutorial polls for). The SQL runs against
  a copy that replaces the database only when all of it succeeded (D1 imports atomically) and
  refuses transactions.

Fault injection for tests: ``fail_import`` (an error message), ``after_import`` (tamper with the
imported copy before it is committed, e.g. drop a row to provoke a count mismatch),
``report_import_outcome=False`` (the import ends between two polls and D1 answers the next one
with "Not currently importing anything." instead of its outcome; that answer is the same for a
committed and a rolled-back import).
"""

from __future__ import annotations

import hashlib
import json
import re
import secrets
import shutil
import sqlite3
import threading
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from tests.support.paths import free_port

#: PRAGMAs D1 lets a query run (a subset of its documented list is enough for the runbooks)
ALLOWED_PRAGMAS = frozenset(
    {
        "table_info",
        "table_xinfo",
        "table_list",
        "index_list",
        "index_info",
        "foreign_key_list",
        "foreign_keys",
        "defer_foreign_keys",
        "optimize",
    }
)
NOT_IMPORTING = "Not currently importing anything."
_API = re.compile(r"^/client/v4/accounts/(?P<account>[^/]+)/d1/database(?:/(?P<db>[^/]+))?(?:/(?P<op>\w+))?$")


class ApiError(Exception):
    def __init__(self, status: int, code: int, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


@dataclass
class _Job:
    """An export or import under way: its bookmark, the polls still to answer ``active``, the outcome."""

    kind: str  # "export" or "import"
    db: str
    bookmark: str
    polls_left: int
    outcome: dict[str, Any]


@dataclass
class FakeD1:
    root: Path
    token: str
    account_id: str
    port: int = 0
    #: polls answered ``active`` before an export/import reports its outcome
    export_polls: int = 1
    import_polls: int = 1
    fail_import: str | None = None
    report_import_outcome: bool = True
    after_import: Callable[[sqlite3.Connection], None] | None = None
    databases: dict[str, str] = field(default_factory=dict)  # uuid -> name
    requests: list[tuple[str, str]] = field(default_factory=list)  # (method, path) of API calls
    #: ids of the databases created through the API (``POST .../d1/database``), in order
    created: list[str] = field(default_factory=list)
    _uploads: dict[str, tuple[str, bytes | None]] = field(default_factory=dict)  # filename -> (sig, body)
    _dumps: dict[str, str] = field(default_factory=dict)
    _jobs: dict[str, _Job] = field(default_factory=dict)  # bookmark -> job
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _own_transaction: bool = False

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/client/v4"

    def path(self, database_id: str) -> Path:
        return self.root / f"{database_id}.sqlite3"

    def create_database(self, name: str) -> str:
        """A new database as D1 makes one: empty but for its internal ``_cf_KV`` table."""
        if name in self.databases.values():
            raise ApiError(400, 7502, f"A database with that name already exists: {name}")
        database_id = str(uuid.uuid4())
        con = sqlite3.connect(self.path(database_id))
        try:
            con.execute("CREATE TABLE _cf_KV (key TEXT PRIMARY KEY, value BLOB) WITHOUT ROWID")
            con.commit()
        finally:
            con.close()
        self.databases[database_id] = name
        return database_id

    # --- dispatch ------------------------------------------------------------------------------

    def handle_api(self, method: str, path: str, headers: Any, body: bytes) -> tuple[int, dict[str, Any]]:
        auth = headers.get("Authorization")
        if not auth:
            raise ApiError(401, 10000, "Authentication error")
        if auth != f"Bearer {self.token}":
            raise ApiError(403, 10000, "Authentication error")
        match = _API.match(path)
        if not match:
            raise ApiError(404, 7000, "No route for that URI")
        if match["account"] != self.account_id:
            raise ApiError(
                403, 7403, "The given account is not valid or is not authorized to access this service"
            )
        self.requests.append((method, path))
        db, op = match["db"], match["op"]
        payload = json.loads(body or b"{}") if method == "POST" else {}
        if db is None and method == "POST":
            name = str(payload.get("name") or "")
            if not re.fullmatch(r"[a-z0-9][a-z0-9_-]{0,63}", name):
                raise ApiError(400, 7400, f"Invalid database name: {name!r}")
            database_id = self.create_database(name)
            self.created.append(database_id)
            return 200, _ok({"uuid": database_id, "name": name, "created_at": "2026-11-28T00:00:00Z"})
        if db not in self.databases:
            raise ApiError(404, 7404, f"The database {db} could not be found")
        if op is None and method == "GET":
            return 200, _ok(
                {"uuid": db, "name": self.databases[db], "num_tables": 0, "version": "production"}
            )
        handler = {"query": self._query, "export": self._export, "import": self._import}.get(op or "")
        if handler is None or method != "POST":
            raise ApiError(405, 7001, "Method not allowed for this endpoint")
        return handler(db, payload)

    def handle_r2(self, method: str, url: str, body: bytes) -> tuple[int, dict[str, str], bytes]:
        """The signed URLs (R2 stand-in): dump downloads and SQL uploads; the signature is the query."""
        parts = urlsplit(url)
        sig = (parse_qs(parts.query).get("sig") or [""])[0]
        name = parts.path.rsplit("/", 1)[-1]
        if method == "GET" and parts.path.startswith("/r2/dumps/") and self._dumps.get(name) is not None:
            if sig != name.split(".")[0]:
                return 403, {}, b"SignatureDoesNotMatch"
            return 200, {"Content-Type": "application/sql"}, self._dumps[name].encode()
        if method == "PUT" and parts.path.startswith("/r2/uploads/") and name in self._uploads:
            expected_sig, _ = self._uploads[name]
            if sig != expected_sig:
                return 403, {}, b"SignatureDoesNotMatch"
            digest = hashlib.md5(body).hexdigest()  # noqa: S324 - R2's ETag
            if digest != name.removesuffix(".sql").rsplit("-", 1)[-1]:
                return 400, {}, b"BadDigest: the content does not match the etag of this upload URL"
            self._uploads[name] = (expected_sig, body)
            return 200, {"ETag": f'"{digest}"'}, b""
        return 404, {}, b"NoSuchKey"

    # --- query ---------------------------------------------------------------------------------

    def _transaction(self, con: sqlite3.Connection, verb: str) -> None:
        """BEGIN/COMMIT/ROLLBACK issued by the fake itself (the authorizer refuses them from callers).
        Requests are served one at a time (the handler holds ``_lock``), so the flag is ours alone."""
        self._own_transaction = True
        try:
            con.execute(verb)
        finally:
            self._own_transaction = False

    @contextmanager
    def _connect(self, path: Path, purpose: str) -> Iterator[tuple[sqlite3.Connection, list[str]]]:
        """A connection with D1's authorizer; ``denied`` collects why something was refused."""
        con = sqlite3.connect(path, isolation_level=None)
        denied: list[str] = []

        def authorize(action: int, arg1: str | None, arg2: str | None, *_: object) -> int:
            if action in (sqlite3.SQLITE_TRANSACTION, sqlite3.SQLITE_SAVEPOINT) and not self._own_transaction:
                denied.append(
                    f"transactions are not allowed in {purpose} (D1 runs it in its own transaction)"
                )
                return sqlite3.SQLITE_DENY
            if action in (sqlite3.SQLITE_ATTACH, sqlite3.SQLITE_DETACH):
                denied.append("ATTACH/DETACH is not allowed")
                return sqlite3.SQLITE_DENY
            if action == sqlite3.SQLITE_PRAGMA and (arg1 or "").lower() not in ALLOWED_PRAGMAS:
                denied.append(f"PRAGMA {arg1} is not allowed")
                return sqlite3.SQLITE_DENY
            table = arg1 if action != sqlite3.SQLITE_PRAGMA else arg2
            if table and table.startswith("_cf_"):
                denied.append(f"access to {table} is not allowed (D1-internal table)")
                return sqlite3.SQLITE_DENY
            return sqlite3.SQLITE_OK

        con.set_authorizer(authorize)
        try:
            yield con, denied
        finally:
            con.close()

    def _query(self, db: str, payload: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        """One ``{sql, params}``, or ``{batch: [{sql, params}, ...]}`` as one transaction (all or nothing)."""
        batch = payload.get("batch")
        statements = batch if isinstance(batch, list) else [payload]
        results: list[dict[str, Any]] = []
        with self._connect(self.path(db), "queries") as (con, denied):
            con.row_factory = sqlite3.Row
            self._transaction(con, "BEGIN")  # D1's own transaction around the statements
            try:
                for st in statements:
                    sql, params = str(st.get("sql") or ""), list(st.get("params") or [])
                    before = con.total_changes
                    cursor = con.execute(sql, params)
                    rows = [
                        {k: (list(v) if isinstance(v, bytes) else v) for k, v in dict(r).items()}
                        for r in cursor.fetchall()
                    ]
                    meta = {
                        "changes": con.total_changes - before,
                        "last_row_id": cursor.lastrowid or 0,
                        "rows_read": len(rows),
                        "duration": 0.1,
                    }
                    results.append({"results": rows, "success": True, "meta": meta})
                self._transaction(con, "COMMIT")
            except (sqlite3.Error, sqlite3.Warning) as exc:
                self._transaction(con, "ROLLBACK")
                reason = denied[0] if denied else str(exc)
                raise ApiError(400, 7500, f"{reason}: SQLITE_ERROR") from None
        return 200, _ok(results)

    # --- export --------------------------------------------------------------------------------

    def _export(self, db: str, payload: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        if payload.get("output_format") != "polling":
            raise ApiError(400, 7400, "output_format must be 'polling'")
        bookmark = payload.get("current_bookmark")
        if not bookmark:
            job = _Job("export", db, f"bm-{secrets.token_hex(6)}", self.export_polls, {})
            self._jobs[job.bookmark] = job
        elif (job := self._jobs.get(bookmark)) is not None and job.db == db and job.kind == "export":
            job.polls_left -= 1
        else:
            raise ApiError(400, 7400, "Unknown bookmark")
        if job.polls_left > 0:
            return 202, _ok(
                {"status": "active", "at_bookmark": job.bookmark, "type": "export", "success": True}
            )
        sig = secrets.token_hex(8)
        filename = f"{sig}.sql"
        self._dumps[filename] = self.dump(db)
        signed = f"http://127.0.0.1:{self.port}/r2/dumps/{filename}?sig={sig}"
        return 200, _ok(
            {
                "status": "complete",
                "at_bookmark": job.bookmark,
                "type": "export",
                "success": True,
                "result": {"filename": filename, "signed_url": signed},
            }
        )

    def dump(self, db: str) -> str:
        """The database as D1 exports it: no transaction, no ``_cf_*`` table, foreign keys deferred."""
        con = sqlite3.connect(self.path(db))
        try:
            lines = [
                line
                for line in con.iterdump()
                if line not in ("BEGIN TRANSACTION;", "COMMIT;")
                and not re.match(r'^(CREATE TABLE|INSERT INTO) "?_cf_', line)
            ]
        finally:
            con.close()
        return "PRAGMA defer_foreign_keys=TRUE;\n" + "\n".join(lines) + "\n"

    # --- import --------------------------------------------------------------------------------

    def _import(self, db: str, payload: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        action = payload.get("action")
        if action == "init":
            etag = str(payload.get("etag") or "")
            if not re.fullmatch(r"[0-9a-f]{32}", etag):
                raise ApiError(400, 7400, "etag must be the md5 hex digest of the SQL file")
            filename = f"{db}-{etag}.sql"
            sig = secrets.token_hex(8)
            self._uploads[filename] = (sig, None)
            url = f"http://127.0.0.1:{self.port}/r2/uploads/{filename}?sig={sig}"
            return 200, _ok({"success": True, "upload_url": url, "filename": filename})
        if action == "ingest":
            filename, etag = str(payload.get("filename") or ""), str(payload.get("etag") or "")
            _, body = self._uploads.get(filename, ("", None))
            if body is None or filename != f"{db}-{etag}.sql":
                raise ApiError(400, 7400, f"Nothing uploaded for {filename!r} with etag {etag!r}")
            job = _Job(
                "import", db, f"bm-{secrets.token_hex(6)}", self.import_polls, self._run_import(db, body)
            )
            self._jobs[job.bookmark] = job
            if job.polls_left <= 0:
                return 200, _ok(job.outcome | {"at_bookmark": job.bookmark})
            return 202, _ok(
                {
                    "success": True,
                    "type": "import",
                    "status": "active",
                    "at_bookmark": job.bookmark,
                    "messages": [f"Uploaded {len(body)} bytes, ingesting"],
                }
            )
        if action == "poll":
            job = self._jobs.get(str(payload.get("current_bookmark") or ""))
            if job is None or job.db != db or job.kind != "import":
                return 200, _ok({"success": False, "error": NOT_IMPORTING})
            job.polls_left -= 1
            if job.polls_left > 0:
                return 202, _ok(
                    {"success": True, "type": "import", "status": "active", "at_bookmark": job.bookmark}
                )
            del self._jobs[job.bookmark]  # the outcome is reported once; later polls: nothing running
            if not self.report_import_outcome:
                return 200, _ok({"success": False, "error": NOT_IMPORTING})
            return 200, _ok(job.outcome | {"at_bookmark": job.bookmark})
        raise ApiError(400, 7400, f"Unknown import action {action!r}")

    def _run_import(self, db: str, body: bytes) -> dict[str, Any]:
        """All of the SQL or none: it runs on a copy that replaces the database only on success."""
        if self.fail_import:
            return {"success": False, "type": "import", "status": "error", "error": self.fail_import}
        live, copy = self.path(db), self.path(db).with_suffix(".importing")
        shutil.copyfile(live, copy)
        try:
            with self._connect(copy, "imported SQL") as (con, denied):
                try:
                    con.executescript(body.decode())
                    queries = sum(1 for _ in re.finditer(r";\s*$", body.decode(), re.M))
                    if self.after_import:
                        con.set_authorizer(None)
                        self.after_import(con)
                except (sqlite3.Error, sqlite3.Warning, UnicodeDecodeError) as exc:
                    reason = denied[0] if denied else str(exc)
                    return {"success": False, "type": "import", "status": "error", "error": f"{reason}"}
            copy.replace(live)
        finally:
            copy.unlink(missing_ok=True)
        return {
            "success": True,
            "type": "import",
            "status": "complete",
            "result": {
                "num_queries": queries,
                "final_bookmark": f"bm-{secrets.token_hex(6)}",
                "meta": {"changed_db": True},
            },
            "messages": [f"Executed {queries} queries"],
        }


def _ok(result: Any) -> dict[str, Any]:
    return {"success": True, "errors": [], "messages": [], "result": result}


def _handler(fake: FakeD1) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def _serve(self, method: str) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            with fake._lock:
                if self.path.startswith("/r2/"):
                    status, headers, raw = fake.handle_r2(method, self.path, body)
                    self._reply(status, headers, raw)
                    return
                try:
                    status, payload = fake.handle_api(method, urlsplit(self.path).path, self.headers, body)
                except ApiError as exc:
                    status = exc.status
                    payload = {
                        "success": False,
                        "errors": [{"code": exc.code, "message": exc.message}],
                        "messages": [],
                        "result": None,
                    }
                except ValueError:
                    status, payload = 400, {
                        "success": False,
                        "errors": [{"code": 7400, "message": "bad JSON"}],
                        "messages": [],
                        "result": None,
                    }
            self._reply(status, {"Content-Type": "application/json"}, json.dumps(payload).encode())

        def _reply(self, status: int, headers: dict[str, str], raw: bytes) -> None:
            self.send_response(status)
            for k, v in headers.items():
                self.send_header(k, v)
            self.send_header("Content-Length", str(len(raw)))
            self.end_headers()
            self.wfile.write(raw)

        def do_GET(self) -> None:
            self._serve("GET")

        def do_POST(self) -> None:
            self._serve("POST")

        def do_PUT(self) -> None:
            self._serve("PUT")

        def log_message(self, *_: Any) -> None:
            """Quiet: pytest output stays readable."""

    return Handler


@contextmanager
def serve_fake_d1(root: Path, *, token: str, account_id: str) -> Iterator[FakeD1]:
    """The fake on 127.0.0.1:<free_port()>, stopped (thread joined, socket closed) on exit."""
    root.mkdir(parents=True, exist_ok=True)
    fake = FakeD1(root, token, account_id, port=free_port())
    server = ThreadingHTTPServer(("127.0.0.1", fake.port), _handler(fake))
    thread = threading.Thread(target=server.serve_forever, name="fake-d1", daemon=True)
    thread.start()
    try:
        yield fake
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)
