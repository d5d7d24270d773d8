/**
 * The gateway's query semantics, on the client: what a live query applies to each change event.
 *
 * The gateway runs queries in SQLite (worker/store.py), so this mirrors SQLite, not JavaScript:
 * a field is read like `json_extract` (missing or JSON null -> NULL); comparisons on a document field
 * stay within its JSON type (true is not 1, an array or object never equals text); NULL never equals anything; ORDER BY puts NULL first, then numbers, then
 * text in UTF-8 byte order (= code point order, not JavaScript's UTF-16 order); `< <= > >=` on a
 * document field only match fields of the value's own type (numbers or text), on a metadata field
 * they compare across types. tests/conformance/query_semantics.json holds the rows both sides run.
 */
import type { DocumentRecord, JsonValue, OrderClause, Scalar, WhereClause, WireQuery } from './types.js';

/** A value as SQLite sees it. */
export type SqlValue = null | number | string;

const META: Record<string, (d: DocumentRecord) => SqlValue> = {
  $id: (d) => d.id,
  $owner_id: (d) => d.owner_id,
  $version: (d) => d.version,
  $created_at: (d) => isoMillis(d.created_at),
  $updated_at: (d) => isoMillis(d.updated_at),
};

type Segment = string | number;
const KEY = /^[A-Za-z_][A-Za-z0-9_]{0,63}$/;
const INDEX = /^(0|[1-9][0-9]{0,5})$/;

export interface OrderKey {
  field: string;
  desc: boolean;
}

/** A parsed query: filters, the full order (with the `$id` tie-break), limit and cursor keys. */
export interface Plan {
  filters: WhereClause[];
  order: OrderKey[];
  limit: number;
  after: SqlValue[] | null;
}

export function plan(query: WireQuery): Plan {
  return {
    filters: query.where ?? [],
    order: orderKeys(query.order_by),
    limit: query.limit ?? 20,
    after: query.cursor ? cursorKeys(query.cursor) : null,
  };
}

/** The order_by with `$id` appended as the tie-break, as the gateway does (and nothing after `$id`). */
export function orderKeys(orderBy: OrderClause[] | undefined): OrderKey[] {
  const keys: OrderKey[] = [];
  for (const item of orderBy ?? []) {
    const [field, dir] = typeof item === 'string' ? [item, 'asc'] : item;
    keys.push({ field, desc: dir === 'desc' });
    if (field === '$id') return keys;
  }
  keys.push({ field: '$id', desc: false });
  return keys;
}

function segments(field: string): Segment[] {
  const out: Segment[] = [];
  for (const part of field.split('.')) {
    if (KEY.test(part)) out.push(part);
    else if (out.length && INDEX.test(part)) out.push(Number(part));
    else throw new Error(`invalid field path ${JSON.stringify(field)}`);
  }
  return out;
}

/** `json_type(data, path) IS NOT NULL` and the raw JSON value there. */
function lookup(data: JsonValue, field: string): { present: boolean; value: JsonValue } {
  let cur: JsonValue = data;
  for (const seg of segments(field)) {
    if (typeof seg === 'number') {
      if (!Array.isArray(cur) || seg >= cur.length) return { present: false, value: null };
      cur = cur[seg] as JsonValue;
    } else {
      if (cur === null || typeof cur !== 'object' || Array.isArray(cur) || !Object.prototype.hasOwnProperty.call(cur, seg)) {
        return { present: false, value: null };
      }
      cur = cur[seg] as JsonValue;
    }
  }
  return { present: true, value: cur };
}

/** What `json_extract` returns for a JSON value. */
export function sqlOf(value: JsonValue | undefined): SqlValue {
  if (value === null || value === undefined) return null;
  if (typeof value === 'boolean') return value ? 1 : 0;
  if (typeof value === 'number' || typeof value === 'string') return value;
  return JSON.stringify(value);
}

/** A bound parameter: Python binds True/False as 1/0. */
function bound(value: Scalar): SqlValue {
  return typeof value === 'boolean' ? (value ? 1 : 0) : value;
}

export function fieldValue(doc: DocumentRecord, field: string): SqlValue {
  const meta = META[field];
  if (meta) return meta(doc);
  return sqlOf(lookup(doc.data, field).value);
}

/** SQLite's ORDER BY comparison: NULL < numbers < text; text by code point. */
export function compareSql(a: SqlValue, b: SqlValue): number {
  const ra = rank(a);
  const rb = rank(b);
  if (ra !== rb) return ra - rb;
  if (typeof a === 'number' && typeof b === 'number') return a < b ? -1 : a > b ? 1 : 0;
  if (typeof a === 'string' && typeof b === 'string') return compareText(a, b);
  return 0;
}

function rank(v: SqlValue): number {
  return v === null ? 0 : typeof v === 'number' ? 1 : 2;
}

/** UTF-8 byte order: UTF-16 order with surrogates moved above U+E000..U+FFFF. */
export function compareText(a: string, b: string): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    let x = a.charCodeAt(i);
    let y = b.charCodeAt(i);
    if (x !== y) {
      if (x >= 0xd800 && y >= 0xd800) {
        x = x < 0xe000 ? x + 0x2000 : x - 0x800;
        y = y < 0xe000 ? y + 0x2000 : y - 0x800;
      }
      return x < y ? -1 : 1;
    }
  }
  return a.length === b.length ? 0 : a.length < b.length ? -1 : 1;
}

/** SQL `=`: NULL on either side is not equal; different types never are. */
function sqlEquals(a: SqlValue, b: SqlValue): boolean {
  return a !== null && b !== null && rank(a) === rank(b) && compareSql(a, b) === 0;
}

/** The JSON type a filter compares within (worker/store.py `json_type`): true is not 1, and an array or
 * object never equals a scalar, not even its own JSON text. Numbers are one type (integer or real). */
function kindOf(v: JsonValue | undefined): string {
  if (v === null || v === undefined) return 'null';
  if (typeof v === 'boolean') return v ? 'true' : 'false';
  if (typeof v === 'number') return 'number';
  if (typeof v === 'string') return 'text';
  return Array.isArray(v) ? 'array' : 'object';
}

/** `json_extract(..) = ? AND json_type(..) = kind(?)`: equal and of the same JSON type. */
function typedEquals(raw: JsonValue | undefined, value: Scalar): boolean {
  return value !== null && kindOf(raw) === kindOf(value) && sqlEquals(sqlOf(raw), bound(value));
}

export function matchesFilter(doc: DocumentRecord, [field, op, value]: WhereClause): boolean {
  if (op === 'exists') return lookup(doc.data, field).present === value;
  if (op === 'array-contains') {
    const arr = lookup(doc.data, field).value;
    return Array.isArray(arr) && arr.some((e) => typedEquals(e, value as Scalar));
  }
  const v = fieldValue(doc, field);
  if ((op === '==' || op === '!=') && value === null) return op === '==' ? v === null : v !== null;
  if (v === null) return false;
  if (field in META) return matchesMeta(v, op, value);
  const raw = lookup(doc.data, field).value;
  switch (op) {
    case '==':
      return typedEquals(raw, value as Scalar);
    case '!=':
      return !typedEquals(raw, value as Scalar);
    case 'in':
      return (value as Scalar[]).some((x) => typedEquals(raw, x));
    case 'not-in':
      return !(value as Scalar[]).some((x) => typedEquals(raw, x));
    default: {
      // a document field's range stays within the value's JSON type (worker/store.py)
      if (kindOf(raw) !== kindOf(value as Scalar)) return false;
      return compares(compareSql(v, bound(value as Scalar)), op);
    }
  }
}

/** A metadata column has one SQL type: plain SQL comparison, across types for ranges. */
function matchesMeta(v: SqlValue, op: WhereClause[1], value: WhereClause[2]): boolean {
  switch (op) {
    case '==':
      return sqlEquals(v, bound(value as Scalar));
    case '!=':
      return !sqlEquals(v, bound(value as Scalar));
    case 'in':
      return (value as Scalar[]).some((x) => sqlEquals(v, bound(x)));
    case 'not-in':
      return !(value as Scalar[]).some((x) => sqlEquals(v, bound(x)));
    default:
      return compares(compareSql(v, bound(value as Scalar)), op);
  }
}

function compares(c: number, op: WhereClause[1]): boolean {
  return op === '<' ? c < 0 : op === '<=' ? c <= 0 : op === '>' ? c > 0 : c >= 0;
}

export function sortKeys(doc: DocumentRecord, order: OrderKey[]): SqlValue[] {
  return order.map((k) => fieldValue(doc, k.field));
}

/** Compare two rows' sort keys in the query's order. */
export function compareKeys(a: SqlValue[], b: SqlValue[], order: OrderKey[]): number {
  for (let i = 0; i < order.length; i++) {
    const c = compareSql(a[i] ?? null, b[i] ?? null);
    if (c !== 0) return order[i]!.desc ? -c : c;
  }
  return 0;
}

/** Does the document belong to the query's result (before the limit)? */
export function matches(doc: DocumentRecord, p: Plan): boolean {
  if (!p.filters.every((f) => matchesFilter(doc, f))) return false;
  return p.after === null || compareKeys(sortKeys(doc, p.order), p.after, p.order) > 0;
}

/** The query's answer over a set of documents: filter, sort, limit. */
export function run(docs: Iterable<DocumentRecord>, p: Plan): DocumentRecord[] {
  const rows = [...docs].filter((d) => matches(d, p)).map((d) => ({ d, k: sortKeys(d, p.order) }));
  rows.sort((x, y) => compareKeys(x.k, y.k, p.order));
  return rows.slice(0, p.limit).map((r) => r.d);
}

/** The sort keys inside a gateway cursor (base64url JSON `{"o": fingerprint, "k": [...]}`). */
export function cursorKeys(cursor: string): SqlValue[] {
  const b64 = cursor.replace(/-/g, '+').replace(/_/g, '/');
  const binary = atob(b64 + '='.repeat((4 - (b64.length % 4)) % 4));
  const bytes = Uint8Array.from(binary, (c) => c.charCodeAt(0));
  const doc = JSON.parse(utf8(bytes)) as { k?: unknown };
  if (!Array.isArray(doc.k)) throw new Error('malformed cursor');
  return doc.k as SqlValue[];
}

function utf8(bytes: Uint8Array): string {
  let out = '';
  for (let i = 0; i < bytes.length; ) {
    const b = bytes[i++]!;
    let cp = b;
    if (b >= 0xf0) cp = ((b & 7) << 18) | ((bytes[i++]! & 63) << 12) | ((bytes[i++]! & 63) << 6) | (bytes[i++]! & 63);
    else if (b >= 0xe0) cp = ((b & 15) << 12) | ((bytes[i++]! & 63) << 6) | (bytes[i++]! & 63);
    else if (b >= 0xc0) cp = ((b & 31) << 6) | (bytes[i++]! & 63);
    out += String.fromCodePoint(cp);
  }
  return out;
}

function isoMillis(iso: string): number | null {
  const ms = Date.parse(iso);
  return Number.isNaN(ms) ? null : ms;
}
