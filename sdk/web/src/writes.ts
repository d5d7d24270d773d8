/**
 * Local writes: applied to listeners at once (latency compensation), then sent to the gateway one
 * at a time in the order they were made. A write the server refuses is rolled back and its promise
 * rejects with the server's error; a write that cannot reach the server (network error) stays queued
 * and is retried with back-off, so the app's promise stays pending until the server answers.
 *
 * Each refusal is reported exactly once, as Firestore does, and never to a listener's error callback
 * (that callback ends the listener; listeners just see the rolled-back state): to the write's
 * promise, or, for a write restored from persistence (its promise died with the page that made it),
 * to `onOrphanError` (the client's `onWriteError`).
 */
import type { LocalStore, Mutation } from './cache.js';
import { asTelestackError, isNetworkError, SIGNED_OUT, TelestackError } from './errors.js';
import type { Http, HttpReply } from './http.js';
import type { DocumentData, DocumentRecord } from './types.js';

/** One write as sent; `set` (single writes only) replaces the document or creates it when missing. */
export interface WriteOp {
  op: 'create' | 'set' | 'replace' | 'patch' | 'delete';
  collection: string;
  id: string;
  data?: DocumentData;
  ifVersion?: number;
}

/** What the server confirmed for one write: the new state (null = deleted) at `version`. */
export interface WriteResult {
  collection: string;
  id: string;
  version: number;
  doc: DocumentRecord | null;
}

/** A queued write as persisted: a single write or a batch (all or nothing). */
export interface PersistedWrite {
  batch: boolean;
  ops: WriteOp[];
}

/** Where the queue is kept (the client's `Persistence`, bound to the signed-in user). */
export interface QueueStore {
  save(writes: PersistedWrite[]): Promise<void>;
}

interface Entry {
  write: PersistedWrite;
  mutations: Mutation[];
  done: Promise<WriteResult[]>;
  resolve(results: WriteResult[]): void;
  reject(err: unknown): void;
}

const RETRY_MS = [250, 1000, 2000, 5000, 10000, 30000];

export class WriteQueue {
  private readonly queue: Entry[] = [];
  private running = false;
  private wake: (() => void) | null = null;
  private restoring: Promise<void> = Promise.resolve();
  private closed = false;
  /** a restored write (its promise died with the page that made it) was refused by the server */
  onOrphanError: (err: TelestackError, write: PersistedWrite) => void = (err, write) =>
    console.warn('telestack: a queued write from an earlier session was refused', err, write);

  constructor(
    private readonly http: Http,
    private readonly store: LocalStore,
    private readonly persistence: QueueStore,
  ) {}

  /**
   * Put the writes a previous client left (made before any write of this one) at the head of the
   * queue. Nothing is sent or saved before they are in: the order of writes is the order they were made.
   */
  restore(saved: Promise<PersistedWrite[]>): void {
    this.restoring = saved.then(
      (writes) => {
        const entries = writes.map((write) => this.entry(write));
        for (const e of entries) e.done.catch((err: TelestackError) => this.onOrphanError(err, e.write));
        this.queue.unshift(...entries);
        for (const e of entries) this.store.addMutations(e.mutations);
      },
      (err: unknown) => console.warn('telestack: the saved write queue could not be read', err),
    );
    void this.persist();
    void this.run();
  }

  enqueue(write: PersistedWrite): Promise<WriteResult[]> {
    const e = this.entry(write);
    this.queue.push(e);
    this.store.addMutations(e.mutations);
    void this.persist();
    void this.run();
    return e.done;
  }

  private entry(write: PersistedWrite): Entry {
    const e = { write, mutations: write.ops.map(toMutation) } as Entry;
    e.done = new Promise<WriteResult[]>((resolve, reject) => {
      e.resolve = resolve;
      e.reject = reject;
    });
    return e;
  }

  get size(): number {
    return this.queue.length;
  }

  /** Retry now (e.g. the network came back). */
  retryNow(): void {
    this.wake?.();
  }

  /** The client stopped: nothing more is sent; the queue stays persisted for the next client. */
  close(): void {
    this.closed = true;
    this.wake?.();
  }

  /** Sign-out: every queued write is rolled back and rejected. */
  abandon(): void {
    for (const e of this.queue.splice(0)) {
      this.store.removeMutations(e.mutations);
      e.reject(new TelestackError(SIGNED_OUT, 401, 'signed out before the write reached the server'));
    }
    void this.persist();
  }

  private async run(): Promise<void> {
    if (this.running) return;
    this.running = true;
    let failures = 0;
    try {
      await this.restoring;
      while (this.queue.length && !this.closed) {
        const entry = this.queue[0]!;
        let results: WriteResult[];
        try {
          results = await this.send(entry.write);
        } catch (err) {
          if (isNetworkError(err)) {
            await this.pause(RETRY_MS[Math.min(failures++, RETRY_MS.length - 1)]!);
            continue;
          }
          if (this.queue[0] === entry) this.queue.shift();
          this.store.removeMutations(entry.mutations);
          void this.persist();
          entry.reject(asTelestackError(err));
          continue;
        }
        failures = 0;
        if (this.queue[0] === entry) this.queue.shift();
        for (const r of results) {
          this.store.applyServer(r.collection, r.id, r.version, r.doc, r.doc?.updated_at ?? '');
        }
        this.store.removeMutations(entry.mutations);
        void this.persist();
        entry.resolve(results);
      }
    } finally {
      this.running = false;
    }
  }

  private pause(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.wake = null;
        resolve();
      }, ms);
      this.wake = () => {
        clearTimeout(timer);
        this.wake = null;
        resolve();
      };
    });
  }

  private async persist(): Promise<void> {
    await this.restoring;
    const writes = this.queue.map((e) => e.write);
    await this.persistence.save(writes).catch((err: unknown) => console.warn('telestack: the write queue could not be saved', err));
  }

  private async send(write: PersistedWrite): Promise<WriteResult[]> {
    if (write.batch) {
      const reply = await this.http.request({ method: 'POST', path: '/v1/batch', body: { writes: write.ops.map(batchItem) } });
      const results = (reply.body as { results: BatchResult[] }).results;
      return results.map((r) =>
        r.op === 'delete'
          ? { collection: r.collection, id: r.id, version: r.version, doc: null }
          : docResult(r.document),
      );
    }
    const op = write.ops[0]!;
    return [await this.sendOne(op)];
  }

  private async sendOne(op: WriteOp): Promise<WriteResult> {
    const path = `/v1/collections/${encodeURIComponent(op.collection)}/documents`;
    const docPath = `${path}/${encodeURIComponent(op.id)}`;
    const headers: Record<string, string> = op.ifVersion === undefined ? {} : { 'if-match': `"${op.ifVersion}"` };
    switch (op.op) {
      case 'create':
        return docResult((await this.http.request({ method: 'POST', path, body: { id: op.id, data: op.data } })).body);
      case 'replace':
        return docResult((await this.http.request({ method: 'PUT', path: docPath, headers, body: { data: op.data } })).body);
      case 'set':
        try {
          return docResult((await this.http.request({ method: 'PUT', path: docPath, headers, body: { data: op.data } })).body);
        } catch (err) {
          // no upsert on the gateway: create when missing (not atomic; a racing create gives already_exists)
          if (!(err instanceof TelestackError) || err.code !== 'not_found' || op.ifVersion !== undefined) throw err;
          return docResult((await this.http.request({ method: 'POST', path, body: { id: op.id, data: op.data } })).body);
        }
      case 'patch':
        return docResult((await this.http.request({ method: 'PATCH', path: docPath, headers, body: { data: op.data } })).body);
      case 'delete': {
        const reply: HttpReply = await this.http.request({ method: 'DELETE', path: docPath, headers });
        return { collection: op.collection, id: op.id, version: etagVersion(reply), doc: null };
      }
    }
  }
}

type BatchResult =
  | { op: 'delete'; collection: string; id: string; version: number }
  | { op: 'create' | 'replace' | 'patch'; document: DocumentRecord };

function docResult(body: unknown): WriteResult {
  const doc = body as DocumentRecord;
  return { collection: doc.collection, id: doc.id, version: doc.version, doc };
}

function etagVersion(reply: HttpReply): number {
  const etag = reply.headers.get('etag') ?? '';
  const n = Number(etag.replace(/^W\//, '').replace(/"/g, ''));
  return Number.isFinite(n) ? n : 0;
}

/** The `/v1/batch` wire form of one write. */
export function batchItem(op: WriteOp): Record<string, unknown> {
  const wireOp = op.op === 'set' ? 'replace' : op.op;
  const item: Record<string, unknown> = { op: wireOp, collection: op.collection, id: op.id };
  if (op.op !== 'delete') item.data = op.data;
  if (op.ifVersion !== undefined) item.if_match = op.ifVersion;
  return item;
}

function toMutation(op: WriteOp): Mutation {
  const kind = op.op === 'replace' ? 'set' : op.op;
  return op.data === undefined ? { collection: op.collection, id: op.id, kind } : { collection: op.collection, id: op.id, kind, data: op.data };
}
