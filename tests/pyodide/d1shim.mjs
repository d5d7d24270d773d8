// A D1-shaped binding over a real SQLite file (better-sqlite3), for the Pyodide compatibility test.
//
// Why the details matter: the workers SDK wraps a binding whose constructor is named `D1Database`
// (and the statements it returns) and converts arguments/results across the FFI exactly as it does
// in workerd, so the class names, result shapes and D1's refusals below are what the gateway's D1
// adapter really sees. Shapes follow Cloudflare's D1 Worker API: all()/run() -> {success, meta,
// results}, first(col?) -> row | value | null, raw({columnNames}) -> arrays, batch() = one
// transaction rolled back on any failure, exec() -> {count, duration}, errors "D1_ERROR: ...".

const MAX_BOUND_PARAMETERS = 100; // D1 limit per query
const MAX_SQL_BYTES = 100_000; // D1 limit on a statement's length
const TRANSACTION_SQL = /^\s*(BEGIN|COMMIT|END|ROLLBACK|SAVEPOINT|RELEASE)\b/i;

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
    // Like D1, read each item's `statement`/`params` (duck-typed) and send params as JSON: a foreign
    // object (say, a Python proxy) only works if those two properties survive that trip.
    const list = Array.from(statements).map((s) => {
      if (s instanceof D1PreparedStatement) return s;
      const sql = s?.statement;
      if (typeof sql !== "string") throw d1Error("batch() item is not a prepared statement (no .statement)");
      const wire = JSON.parse(JSON.stringify({ params: s.params }) ?? "{}");
      return new D1PreparedStatement(this, sql, Array.isArray(wire.params) ? wire.params : []);
    });
    const run = this.db.transaction(() => list.map((s) => this._execute(s)));
    return run(); // better-sqlite3 rolls the whole transaction back when any statement throws
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
    const started = performance.now();
    const stmt = this._statement(prepared.statement);
    let results = [];
    let changes = 0;
    let lastRowId = 0;
    try {
      if (stmt.reader) {
        results = stmt.all(...prepared.params).map(blobsAsArrays);
        // INSERT/UPDATE/DELETE ... RETURNING is a reader too; changes() tells whether it wrote
        changes = /^\s*(INSERT|UPDATE|DELETE|REPLACE)\b/i.test(prepared.statement)
          ? this.db.prepare("SELECT changes()").pluck().get()
          : 0;
        lastRowId = changes ? this.db.prepare("SELECT last_insert_rowid()").pluck().get() : 0;
      } else {
        const info = stmt.run(...prepared.params);
        changes = info.changes;
        lastRowId = Number(info.lastInsertRowid);
      }
    } catch (e) {
      throw sqliteError(e);
    }
    this.statements += 1;
    const sizeAfter = this.db.pragma("page_count", { simple: true }) * this.db.pragma("page_size", { simple: true });
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
