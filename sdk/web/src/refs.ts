/** References and query constraints, Firestore-style: plain values that name what to read or write. */
import type { TelestackClient } from './client.js';
import type { DocumentData, OrderClause, Scalar, WhereClause, WhereOp, WireQuery } from './types.js';

export class DocumentReference<T extends DocumentData = DocumentData> {
  readonly type = 'document';
  constructor(
    readonly client: TelestackClient,
    readonly collection: string,
    readonly id: string,
  ) {}

  get path(): string {
    return `${this.collection}/${this.id}`;
  }
  /** @internal phantom to keep T */
  declare readonly _data?: T;
}

export class Query<T extends DocumentData = DocumentData> {
  readonly type: 'query' | 'collection' = 'query';
  constructor(
    readonly client: TelestackClient,
    readonly collection: string,
    /** the query in the gateway's wire format (docs/api.md, Query grammar) */
    readonly wire: WireQuery,
  ) {}
  /** @internal phantom to keep T */
  declare readonly _data?: T;
}

export class CollectionReference<T extends DocumentData = DocumentData> extends Query<T> {
  override readonly type = 'collection';
  constructor(client: TelestackClient, collection: string) {
    super(client, collection, {});
  }
}

export type QueryConstraint =
  | { kind: 'where'; clause: WhereClause }
  | { kind: 'orderBy'; clause: OrderClause }
  | { kind: 'limit'; n: number }
  | { kind: 'startAfter'; cursor: string };

export function collection<T extends DocumentData = DocumentData>(client: TelestackClient, name: string): CollectionReference<T> {
  return new CollectionReference<T>(client, name);
}

/** `doc(client, 'notes', id)`, or `doc(collectionRef)` for a new random id, or `doc(collectionRef, id)`. */
export function doc<T extends DocumentData = DocumentData>(client: TelestackClient, collection: string, id: string): DocumentReference<T>;
export function doc<T extends DocumentData = DocumentData>(coll: CollectionReference<T>, id?: string): DocumentReference<T>;
export function doc<T extends DocumentData = DocumentData>(
  first: TelestackClient | CollectionReference<T>,
  second?: string,
  third?: string,
): DocumentReference<T> {
  if (first instanceof CollectionReference) return new DocumentReference<T>(first.client, first.collection, second ?? newId());
  return new DocumentReference<T>(first, second!, third!);
}

export function where(field: string, op: WhereOp, value: Scalar | Scalar[]): QueryConstraint {
  return { kind: 'where', clause: [field, op, value] };
}

export function orderBy(field: string, direction: 'asc' | 'desc' = 'asc'): QueryConstraint {
  return { kind: 'orderBy', clause: direction === 'asc' ? field : [field, 'desc'] };
}

export function limit(n: number): QueryConstraint {
  return { kind: 'limit', n };
}

/** Resume after a previous page: pass its `QuerySnapshot.nextCursor` (the same orderBy is required). */
export function startAfter(cursor: string): QueryConstraint {
  return { kind: 'startAfter', cursor };
}

export function query<T extends DocumentData>(base: Query<T>, ...constraints: QueryConstraint[]): Query<T> {
  const wire: WireQuery = { ...base.wire };
  for (const c of constraints) {
    if (c.kind === 'where') wire.where = [...(wire.where ?? []), c.clause];
    else if (c.kind === 'orderBy') wire.order_by = [...(wire.order_by ?? []), c.clause];
    else if (c.kind === 'limit') wire.limit = c.n;
    else wire.cursor = c.cursor;
  }
  return new Query<T>(base.client, base.collection, wire);
}

const ID_ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';

/** A random 20-character id (the gateway's alphabet), made here so a new document is known before it is sent. */
export function newId(): string {
  const bytes = new Uint8Array(20);
  const crypto = (globalThis as { crypto?: { getRandomValues(a: Uint8Array): Uint8Array } }).crypto;
  if (crypto) crypto.getRandomValues(bytes);
  else for (let i = 0; i < bytes.length; i++) bytes[i] = Math.floor(Math.random() * 256);
  let id = '';
  for (const b of bytes) id += ID_ALPHABET[b % ID_ALPHABET.length];
  return id;
}
