/**
 * Local writes: applied to listeners at once (latency compensation), then sent to the gateway one
 * at a time in the order they were made. A write the server refuses is rolled back and its promise
 * rejects with the server's error; a write that cannot reach the server (network error) stays queued
 * and is retried with back-off, so the app's promise stays pending until the server answers.
 */
import type { LocalStore, Mutation } from './cache.js';
import { isNetworkError, SIGNED_OUT, TelestackError } from './errors.js';
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

/**
 * Where queued writes survive a reload. Only {@link memoryPendingWrites} exists today: the queue lasts
 * as long as the client object (an IndexedDB implementation can be plugged in here).
 */
export interface PendingWriteStore {
  load(): Promise<PersistedWrite[]>;
  save(writes: PersistedWrite[]): Promise<void>;
}

export function memoryPendingWrites(): PendingWriteStore {
  let saved: PersistedWrite[] = [];
  return {
    load: async () => saved,
    save: async (writes) => {
      saved = writes;
    },
  };
}

interface Entry {
  write: PersistedWrite;
  mutations: Mutation[];
  resolve(results: WriteResult[]): void;
  reject(err: unknown): void;
}

const RETRY_MS = [250, 1000, 2000, 5000, 10000, 30000];

export class WriteQueue {
  private readonly queue: Entry[] = [];
  private running = false;
  private wake: (() => void) | null = null;
  /** writes that reached the server's refusal with nobody awaiting them (replayed from persistence) */
  onOrphanError: (err: TelestackError, write: PersistedWrite) => void = () => {};

  constructor(
    private readonly http: Http,
    private readonly store: LocalStore,
    private readonly persistence: PendingWriteStore,
  ) {}

  /** Re-queue what a previous client left in the persistence store. */
  async restore(): Promise<void> {
    for (const write of await this.persistence.load()) {
      void this.enqueue(write).catch((err: unknown) => {
        if (err instanceof TelestackError) this.onOrphanError(err, write);
      });
    }
  }

  enqueue(write: PersistedWrite): Promise<WriteResult[]> {
    const mutations = write.ops.map(toMutation);
    const done = new Promise<WriteResult[]>((resolve, reject) => {
      this.queue.push({ write, mutations, resolve, reject });
    });
    this.store.addMutations(mutations);
    void this.persist();
    void this.run();
    return done;
  }

  get size(): number {
    return this.queue.length;
  }

  /** Retry now (e.g. the network came back). */
  retryNow(): void {
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
      while (this.queue.length) {
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
          entry.reject(err);
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

  private persist(): Promise<void> {
    return this.persistence.save(this.queue.map((e) => e.write));
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
