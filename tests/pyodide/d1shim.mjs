// A D1-shaped binding over a real SQLite file (better-sqlite3), for the Pyodide compatibility test.
//
// Why the details matter: the workers SDK wraps a binding whose constructor is named `D1Database`
// (and the statements it returns) and converts arguments/results across the FFI exactly as it does
// in workerd, so the class names, result shapes and D1's refusals below are what the gateway's D1
// adapter really sees. Shapes follow Cloudflare's D1 Worker API: all()/run() -> {success, meta,
// results}, first(col?) -> row | value | null, raw({columnNames}) -> arrays, batch() = one
// transaction rolled back on any failure, exec() -> {count, duration}, errors "D1_ERROR: ...".
//
// Sessions and read replication, as workerd's D1 binding (src/cloudflare/internal/d1-api.ts) and
// Cloudflare's read-replication docs describe them: withSession(constraintOrBookmark) trims its
// argument, "" or none means "first-unconstrained"; getBookmark() is null while the session holds a
// constraint, then the newest bookmark its queries returned (kept only if newer, compared as
// strings: bookmarks sort oldest to newest). Queries on the binding itself (prepare/batch/exec) always
// go to the primary and carry no bookmark. Here the primary is the SQLite file and there is one read
// replica: a snapshot of the primary taken at some commit, caught up before each read unless the test
// pauses replication (then it lags, as a real replica can). A session's read goes to the replica only
// if the replica is at least at the session's bookmark ("first-unconstrained" accepts any), else to
// the primary; "first-primary" sends the first query to the primary; writes always go to the primary.
// So a session never reads a state older than its bookmark, and its bookmark advances with commits.
// A bookmark is "<commit, 8 hex>-00000000-00000000-<this database's 32-hex id>" (D1's shape); one of
// another database, malformed, or ahead of the primary fails the query with D1_SESSION_ERROR.

const MAX_BOUND_PARAMETERS = 100; // D1 limit per query
const MAX_SQL_BYTES = 100_000; // D1 limit on a statement's length
const TRANSACTION_SQL = /^\s*(BEGIN|COMMIT|END|ROLLBACK|SAVEPOINT|RELEASE)\b/i;
const FIRST_PRIMARY = "first-primary";
const FIRST_UNCONSTRAINED = "first-unconstrained";
const BOOKMARK = /^([0-9a-f]{8})-00000000-00000000-([0-9a-f]{32})$/;

function d1Error(message, cause) {
  const err = new Error(`D1_ERROR: ${message}`);
  if (cause) err.cause = cause;
  return err;
}

function sqliteError(e) {
  // D1 reports the primary result code: "D1_ERROR: UNIQUE constraint failed: t.c: SQLITE_CONSTRAINT"
  const code = typeof e.code === "string" ? e.code.split("_").slice(0, 2).join("_") : "SQLITE_ERROR";
  return d1Error(`${e.message}: ${code}`, e);
}

function toSqliteValue(value, index) {
  if (value === undefined) {
    throw d1Error(`Type 'undefined' not supported for value at index ${index}`);
  }
  if (value === null || typeof value === "number" || typeof value === "string" || typeof value === "bigint") {
    return value;
  }
  if (typeof value === "boolean") return value ? 1 : 0; // D1 stores booleans as integers
  if (value instanceof ArrayBuffer) return Buffer.from(value);
  if (ArrayBuffer.isView(value)) return Buffer.from(value.buffer, value.byteOffset, value.byteLength);
  throw d1Error(`Type '${typeof value}' not supported for value '${value}' at index ${index}`);
}

function blobsAsArrays(row) {
  // D1 returns a BLOB column as an array of byte values, not a Buffer
  for (const key of Object.keys(row)) {
    if (Buffer.isBuffer(row[key])) row[key] = Array.from(row[key]);
  }
  return row;
}

export class D1PreparedStatement {
  constructor(database, sql, params = []) {
    this.database = database;
    this.statement = sql;
    this.params = params;
  }

  bind(...values) {
    if (values.length > MAX_BOUND_PARAMETERS) {
      throw d1Error(`too many SQL variables (${values.length} > ${MAX_BOUND_PARAMETERS}): SQLITE_ERROR`);
    }
    return new D1PreparedStatement(this.database, this.statement, values.map(toSqliteValue));
  }

  async all() {
    return this.database._execute(this);
  }

  async run() {
    return this.database._execute(this);
  }

  async first(columnName) {
    const result = this.database._execute(this);
    const row = result.results[0];
    if (row === undefined) return null;
    if (columnName === undefined || columnName === null) return row;
    if (!(columnName in row)) throw d1Error(`D1_COLUMN_NOTFOUND: Column not found (${columnName})`);
    return row[columnName];
  }

  async raw(options = {}) {
    const stmt = this.database._statement(this.statement);
    if (!stmt.reader) {
      this.database._execute(this);
      return options.columnNames ? [[]] : [];
    }
    let rows;
    try {
      rows = stmt.raw(true).all(...this.params);
    } catch (e) {
      throw sqliteError(e);
    }
    if (options.columnNames) return [stmt.columns().map((c) => c.name), ...rows];
    return rows;
  }
}

export class D1Database {
  /** @param {import("better-sqlite3").Database} db */
  constructor(db) {
    this.db = db;
    this.db.pragma("foreign_keys = ON"); // D1 enforces foreign keys
    this.statements = 0;
    this.id = Array.from(crypto.getRandomValues(new Uint8Array(16)), (b) => b.toString(16).padStart(2, "0")).join("");
    this.commits = 0; // write transactions committed on the primary
    this.replica = null; // a better-sqlite3 snapshot of the primary ...
    this.replicaAt = -1; // ... taken after this many commits
    this.replicationPaused = false;
    this.reads = { primary: 0, replica: 0 }; // session reads by where they were served
  }

  withSession(constraintOrBookmark) {
    let start = typeof constraintOrBookmark === "string" ? constraintOrBookmark.trim() : constraintOrBookmark;
    if (start === null || start === undefined || start === "") start = FIRST_UNCONSTRAINED;
    return new D1DatabaseSession(this, String(start));
  }

  /** A commit made outside the binding (the test's own SQL): replicas and bookmarks must move on. */
  noteCommit() {
    this.commits += 1;
  }

  _bookmarkAt(commit) {
    return `${commit.toString(16).padStart(8, "0")}-00000000-00000000-${this.id}`;
  }

  _commitOf(bookmark) {
    const m = BOOKMARK.exec(bookmark);
    if (!m || m[2] !== this.id) throw d1Error(`D1_SESSION_ERROR: invalid bookmark ${JSON.stringify(bookmark)}`);
    const commit = parseInt(m[1], 16);
    if (commit > this.commits) throw d1Error("D1_SESSION_ERROR: bookmark is ahead of the database");
    return commit;
  }

  _replica() {
    if (!this.replicationPaused && this.replicaAt < this.commits) {
      this.replica?.close();
      this.replica = new this.db.constructor(this.db.serialize());
      this.replicaAt = this.commits;
    }
    return this.replica;
  }

  prepare(query) {
    if (typeof query !== "string") throw d1Error("prepare() needs an SQL string");
    if (Buffer.byteLength(query) > MAX_SQL_BYTES) throw d1Error("statement too long: SQLITE_TOOBIG");
    if (TRANSACTION_SQL.test(query)) {
      // D1 refuses explicit transactions: atomicity comes from batch()
      throw d1Error(
        "To execute a transaction, please use the state.storage.transaction() or " +
          "state.storage.transactionSync() APIs instead of the SQL BEGIN TRANSACTION or SAVEPOINT statements.",
      );
    }
    return new D1PreparedStatement(this, query);
  }

  async batch(statements) {
    const list = this._asBatch(statements);
    const writes = list.some((s) => !this._statement(s.statement).readonly);
    const run = this.db.transaction(() => list.map((s) => this._run(this.db, s)));
    const results = run(); // better-sqlite3 rolls the whole transaction back when any statement throws
    if (writes) this.commits += 1;
    return results;
  }

  _asBatch(statements) {
    // Like D1, read each item's `statement`/`params` (duck-typed) and send params as JSON: a foreign
    // object (say, a Python proxy) only works if those two properties survive that trip.
    return Array.from(statements).map((s) => {
      if (s instanceof D1PreparedStatement) return s;
      const sql = s?.statement;
      if (typeof sql !== "string") throw d1Error("batch() item is not a prepared statement (no .statement)");
      const wire = JSON.parse(JSON.stringify({ params: s.params }) ?? "{}");
      return new D1PreparedStatement(this, sql, Array.isArray(wire.params) ? wire.params : []);
    });
  }

  async exec(query) {
    const started = performance.now();
    const parts = query
      .split("\n")
      .map((line) => line.trim())
      .filter((line) => line.length > 0);
    try {
      for (const line of parts) this.db.exec(line); // D1 exec runs one statement per line
    } catch (e) {
      throw sqliteError(e);
    }
    return { count: parts.length, duration: performance.now() - started };
  }

  async dump() {
    throw d1Error("dump() is not supported by this shim");
  }

  _statement(sql) {
    try {
      return this.db.prepare(sql);
    } catch (e) {
      throw sqliteError(e);
    }
  }

  _execute(prepared) {
    const result = this._run(this.db, prepared);
    if (!this._statement(prepared.statement).readonly) this.commits += 1;
    return result;
  }

  _run(conn, prepared) {
    const started = performance.now();
    let stmt;
    try {
      stmt = conn.prepare(prepared.statement);
    } catch (e) {
      throw sqliteError(e);
    }
    let results = [];
    let changes = 0;
    let lastRowId = 0;
    try {
      if (stmt.reader) {
        results = stmt.all(...prepared.params).map(blobsAsArrays);
        // INSERT/UPDATE/DELETE ... RETURNING is a reader too; changes() tells whether it wrote
        changes = /^\s*(INSERT|UPDATE|DELETE|REPLACE)\b/i.test(prepared.statement)
          ? conn.prepare("SELECT changes()").pluck().get()
          : 0;
        lastRowId = changes ? conn.prepare("SELECT last_insert_rowid()").pluck().get() : 0;
      } else {
        const info = stmt.run(...prepared.params);
        changes = info.changes;
        lastRowId = Number(info.lastInsertRowid);
      }
    } catch (e) {
      throw sqliteError(e);
    }
    this.statements += 1;
    const sizeAfter = conn.pragma("page_count", { simple: true }) * conn.pragma("page_size", { simple: true });
    return {
      success: true,
      meta: {
        served_by: "telestack-d1-shim",
        duration: performance.now() - started,
        changes,
        last_row_id: lastRowId,
        changed_db: changes > 0,
        size_after: sizeAfter,
        rows_read: results.length,
        rows_written: changes,
      },
      results,
    };
  }
}

export class D1DatabaseSession {
  /** @param {D1Database} database */
  constructor(database, bookmarkOrConstraint) {
    this.database = database;
    this.bookmarkOrConstraint = bookmarkOrConstraint;
  }

  getBookmark() {
    const b = this.bookmarkOrConstraint;
    return b === FIRST_PRIMARY || b === FIRST_UNCONSTRAINED ? null : b;
  }

  prepare(query) {
    this.database.prepare(query); // the same refusals as the binding's
    return new D1PreparedStatement(this, query);
  }

  async batch(statements) {
    const list = this.database._asBatch(statements).map((s) => new D1PreparedStatement(this, s.statement, s.params));
    const readonly = list.every((s) => this._statement(s.statement).readonly);
    if (!readonly) {
      this._minimum(); // a session whose bookmark D1 refuses fails before it writes
      const results = await this.database.batch(list);
      this._observe(this.database.commits);
      return results;
    }
    const [conn, at] = this._readTarget();
    const results = conn.transaction(() => list.map((s) => this.database._run(conn, s)))();
    this._observe(at);
    return results;
  }

  _statement(sql) {
    return this.database._statement(sql);
  }

  _execute(prepared) {
    if (!this._statement(prepared.statement).readonly) {
      this._minimum();
      const result = this.database._execute(prepared);
      this._observe(this.database.commits);
      return result;
    }
    const [conn, at] = this._readTarget();
    const result = this.database._run(conn, prepared);
    this._observe(at);
    return result;
  }

  /** The oldest commit this session may read: its bookmark's, or none yet (null = must be the primary). */
  _minimum() {
    const bookmark = this.getBookmark();
    if (bookmark !== null) return this.database._commitOf(bookmark);
    return this.bookmarkOrConstraint === FIRST_PRIMARY ? null : 0;
  }

  _readTarget() {
    const minimum = this._minimum();
    const replica = this.database._replica();
    if (minimum !== null && replica !== null && this.database.replicaAt >= minimum) {
      this.database.reads.replica += 1;
      return [replica, this.database.replicaAt];
    }
    this.database.reads.primary += 1;
    return [this.database.db, this.database.commits];
  }

  _observe(commit) {
    const bookmark = this.database._bookmarkAt(commit);
    const current = this.getBookmark();
    if (current === null || current < bookmark) this.bookmarkOrConstraint = bookmark;
  }
}
