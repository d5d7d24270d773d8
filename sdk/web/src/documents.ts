/** Reads and writes of documents, Firestore-style functions over references. */
import type { TelestackClient } from './client.js';
import { TelestackError } from './errors.js';
import { CollectionReference, DocumentReference, newId, Query } from './refs.js';
import { DocumentSnapshot, QuerySnapshot } from './snapshot.js';
import type { DocumentData, DocumentRecord } from './types.js';
import type { WriteOp, WriteResult } from './writes.js';

/** Optimistic concurrency: the write applies only if the document is still at this version (If-Match). */
export interface WriteOptions {
  ifVersion?: number;
}

const docPath = (ref: DocumentReference): string =>
  `/v1/collections/${encodeURIComponent(ref.collection)}/documents/${encodeURIComponent(ref.id)}`;
const queryPath = (q: Query): string => `/v1/collections/${encodeURIComponent(q.collection)}/query`;

export async function getDoc<T extends DocumentData>(ref: DocumentReference<T>): Promise<DocumentSnapshot<T>> {
  const { client } = ref;
  let record: DocumentRecord | null = null;
  try {
    record = (await client.http.request({ method: 'GET', path: docPath(ref) })).body as DocumentRecord;
    client.store.applyServer(ref.collection, ref.id, record.version, record, record.updated_at);
  } catch (err) {
    if (!(err instanceof TelestackError) || err.code !== 'not_found') throw err;
    client.store.applyMissing(ref.collection, ref.id);
  }
  return new DocumentSnapshot<T>(client, ref.collection, ref.id, record as DocumentRecord<T> | null, {
    fromCache: false,
    hasPendingWrites: false,
  });
}

/** Create a document with a new id; resolves with its reference once the server has it. */
export async function addDoc<T extends DocumentData>(coll: CollectionReference<T>, data: T): Promise<DocumentReference<T>> {
  const ref = new DocumentReference<T>(coll.client, coll.collection, newId());
  await write(ref, { op: 'create', collection: ref.collection, id: ref.id, data });
  return ref;
}

/**
 * Replace the document's body, creating the document when it does not exist. Without `ifVersion`
 * that is a PUT then, on 404, a create: two requests, not one atomic upsert (the gateway has none).
 */
export function setDoc<T extends DocumentData>(ref: DocumentReference<T>, data: T, options: WriteOptions = {}): Promise<number> {
  return write(ref, withVersion({ op: 'set', collection: ref.collection, id: ref.id, data }, options));
}

/** Apply an RFC 7386 JSON merge patch (`null` removes a key). */
export function updateDoc<T extends DocumentData>(ref: DocumentReference<T>, patch: DocumentData, options: WriteOptions = {}): Promise<number> {
  return write(ref, withVersion({ op: 'patch', collection: ref.collection, id: ref.id, data: patch }, options));
}

export function deleteDoc(ref: DocumentReference, options: WriteOptions = {}): Promise<number> {
  return write(ref, withVersion({ op: 'delete', collection: ref.collection, id: ref.id }, options));
}

/** Resolves with the document's new version once the server confirmed the write. */
async function write(ref: DocumentReference, op: WriteOp): Promise<number> {
  const [result] = await ref.client.writes.enqueue({ batch: false, ops: [op] });
  return (result as WriteResult).version;
}

function withVersion(op: WriteOp, options: WriteOptions): WriteOp {
  return options.ifVersion === undefined ? op : { ...op, ifVersion: options.ifVersion };
}

/** One page of the query's results (at most its `limit`, 20 by default; follow `nextCursor` for more). */
export async function getDocs<T extends DocumentData>(q: Query<T>): Promise<QuerySnapshot<T>> {
  const { client } = q;
  const reply = await client.http.request({ method: 'POST', path: queryPath(q), body: q.wire });
  const page = reply.body as { documents: DocumentRecord<T>[]; next_cursor: string | null };
  const meta = { fromCache: false, hasPendingWrites: false };
  for (const d of page.documents) client.store.applyServer(d.collection, d.id, d.version, d, d.updated_at);
  const docs = page.documents.map((d) => new DocumentSnapshot<T>(client, q.collection, d.id, d, meta));
  return new QuerySnapshot<T>(docs, meta, page.next_cursor);
}

/** How many documents the query matches (that the caller may read), ignoring limit and cursor. */
export async function getCount(q: Query): Promise<number> {
  const body = { ...q.wire, limit: 0, count: true };
  delete body.cursor;
  const reply = await q.client.http.request({ method: 'POST', path: queryPath(q), body });
  return (reply.body as { count: number }).count;
}

/** Several writes committed all together or not at all (`POST /v1/batch`, at most 100). */
export class WriteBatch {
  private readonly ops: WriteOp[] = [];
  private committed = false;

  constructor(private readonly client: TelestackClient) {}

  create<T extends DocumentData>(ref: DocumentReference<T>, data: T): this {
    return this.add({ op: 'create', collection: ref.collection, id: ref.id, data });
  }

  /** Replace an existing document's body (inside a batch there is no create-when-missing: use `create`). */
  set<T extends DocumentData>(ref: DocumentReference<T>, data: T, options: WriteOptions = {}): this {
    return this.add(withVersion({ op: 'replace', collection: ref.collection, id: ref.id, data }, options));
  }

  update(ref: DocumentReference, patch: DocumentData, options: WriteOptions = {}): this {
    return this.add(withVersion({ op: 'patch', collection: ref.collection, id: ref.id, data: patch }, options));
  }

  delete(ref: DocumentReference, options: WriteOptions = {}): this {
    return this.add(withVersion({ op: 'delete', collection: ref.collection, id: ref.id }, options));
  }

  /** Resolves with each write's new version, in order. */
  async commit(): Promise<number[]> {
    if (this.committed) throw new TelestackError('invalid_request', 0, 'this batch was already committed');
    this.committed = true;
    const results = await this.client.writes.enqueue({ batch: true, ops: [...this.ops] });
    return results.map((r) => r.version);
  }

  private add(op: WriteOp): this {
    if (this.committed) throw new TelestackError('invalid_request', 0, 'this batch was already committed');
    this.ops.push(op);
    return this;
  }
}

export function writeBatch(client: TelestackClient): WriteBatch {
  return new WriteBatch(client);
}
