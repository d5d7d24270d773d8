/**
 * Live data: `onSnapshot(docRef | query, next, error?)`.
 *
 * A listener subscribes to its collection's channel first, then fetches (so no event falls between
 * the two), then applies every change event to its result: a document listener takes the newest
 * version, a query listener evaluates the query on the client (evaluate.ts, the server's semantics)
 * and refetches when it cannot know the answer locally: a result under its limit while more
 * documents exist on the server, or a reconnect whose missed events Centrifugo could not recover.
 * Local writes show at once (latency compensation, `metadata.hasPendingWrites`).
 */
import type { Target } from './cache.js';
import type { Detachable, TelestackClient } from './client.js';
import { asTelestackError as asError, isNetworkError, TelestackError } from './errors.js';
import { compareKeys, matches, plan as planOf, run, sortKeys, type Plan, type SqlValue } from './evaluate.js';
import type { ChannelWatcher } from './realtime.js';
import { DocumentReference, type Query } from './refs.js';
import { DocumentSnapshot, QuerySnapshot, type SnapshotMetadata } from './snapshot.js';
import type { DocumentData, DocumentRecord, WireQuery } from './types.js';

export type Unsubscribe = () => void;
type ErrorCallback = (err: TelestackError) => void;

/** Extra documents fetched past the limit so that a few leaving the result need no refetch. */
const SLACK = 10;
const RETRY_MS = 2000;

export function onSnapshot<T extends DocumentData>(
  ref: DocumentReference<T>,
  next: (snap: DocumentSnapshot<T>) => void,
  error?: ErrorCallback,
): Unsubscribe;
export function onSnapshot<T extends DocumentData>(
  q: Query<T>,
  next: (snap: QuerySnapshot<T>) => void,
  error?: ErrorCallback,
): Unsubscribe;
export function onSnapshot(
  target: DocumentReference | Query,
  next: ((snap: DocumentSnapshot) => void) | ((snap: QuerySnapshot) => void),
  error?: ErrorCallback,
): Unsubscribe {
  const listener =
    target instanceof DocumentReference
      ? new DocListener(target.client, target.collection, target.id, next as (s: DocumentSnapshot) => void, error)
      : new QueryListener(target.client, target.collection, target.wire, next as (s: QuerySnapshot) => void, error);
  listener.start();
  return () => listener.stop();
}

abstract class Listener implements Target, ChannelWatcher, Detachable {
  protected live = false;
  protected fetched = false;
  private fetching: Promise<void> | null = null;
  private fetchAgain = false;
  private stopped = false;
  private scheduled = false;
  private lastSignature = '';
  private unregister: (() => void) | null = null;
  private unwatch: (() => void) | null = null;

  constructor(
    protected readonly client: TelestackClient,
    readonly collection: string,
    private readonly error: ErrorCallback | undefined,
  ) {}

  start(): void {
    this.client.active.add(this);
    this.unregister = this.client.store.register(this);
    void this.watch();
  }

  stop(): void {
    this.stopped = true;
    this.client.active.delete(this);
    this.unregister?.();
    this.unwatch?.();
  }

  terminate(err: TelestackError): void {
    this.stop();
    this.error?.(err);
  }

  private async watch(): Promise<void> {
    try {
      const unwatch = await this.client.realtime.watch(this.collection, this);
      if (this.stopped) unwatch();
      else this.unwatch = unwatch;
    } catch (err) {
      if (this.stopped) return;
      if (isNetworkError(err)) {
        this.useCache(); // show what is known, marked fromCache, and try again
        this.schedule();
        setTimeout(() => !this.stopped && void this.watch(), RETRY_MS);
        return;
      }
      this.terminate(asError(err));
    }
  }

  online(gap: boolean): void {
    this.live = true;
    if (gap || !this.fetched) void this.refetch();
    else this.schedule();
  }

  offline(): void {
    this.live = false;
    this.schedule();
  }

  failed(err: TelestackError): void {
    this.terminate(err);
  }

  abstract serverChanged(id: string): void;

  localChanged(): void {
    this.schedule();
  }

  /** Fetch the current answer from the server; one at a time, re-run when asked again meanwhile. */
  protected refetch(): Promise<void> {
    if (this.fetching) {
      this.fetchAgain = true;
      return this.fetching;
    }
    this.fetching = (async () => {
      do {
        this.fetchAgain = false;
        try {
          await this.load();
          this.fetched = true;
        } catch (err) {
          if (this.stopped) return;
          if (!isNetworkError(err)) return this.terminate(asError(err));
          this.live = false; // offline: the channel's next "subscribed" refetches
          this.useCache();
        }
      } while (this.fetchAgain && !this.stopped);
    })().finally(() => {
      this.fetching = null;
      this.schedule();
    });
    return this.fetching;
  }

  protected get isFetching(): boolean {
    return this.fetching !== null;
  }

  protected abstract load(): Promise<void>;
  /** offline before the first answer: answer from the documents the client knows (persisted ones too) */
  protected useCache(): void {}
  /** the snapshot to deliver and a signature of it (nothing is delivered twice) */
  protected abstract view(meta: SnapshotMetadata): { snapshot: unknown; signature: string } | null;
  protected abstract deliver(snapshot: unknown): void;

  protected schedule(): void {
    if (this.scheduled) return;
    this.scheduled = true;
    queueMicrotask(() => {
      this.scheduled = false;
      if (this.stopped || this.isFetching) return;
      const v = this.view({ fromCache: !this.live || !this.fetched, hasPendingWrites: false });
      if (!v || v.signature === this.lastSignature) return;
      this.lastSignature = v.signature;
      try {
        this.deliver(v.snapshot);
      } catch (err) {
        console.warn('telestack: an onSnapshot callback threw', err);
      }
    });
  }
}

class DocListener extends Listener {
  constructor(
    client: TelestackClient,
    collection: string,
    private readonly id: string,
    private readonly next: (snap: DocumentSnapshot) => void,
    error: ErrorCallback | undefined,
  ) {
    super(client, collection, error);
  }

  serverChanged(id: string): void {
    if (id === this.id) this.schedule();
  }

  protected async load(): Promise<void> {
    const { http, store } = this.client;
    const path = `/v1/collections/${encodeURIComponent(this.collection)}/documents/${encodeURIComponent(this.id)}`;
    try {
      const doc = (await http.request({ method: 'GET', path })).body as DocumentRecord;
      store.applyServer(this.collection, this.id, doc.version, doc, doc.updated_at);
    } catch (err) {
      if (!(err instanceof TelestackError) || err.code !== 'not_found') throw err;
      store.applyMissing(this.collection, this.id);
    }
  }

  protected view(meta: SnapshotMetadata): { snapshot: unknown; signature: string } | null {
    const { store } = this.client;
    const doc = store.effective(this.collection, this.id);
    if (doc === undefined) return null;
    const metadata = { ...meta, hasPendingWrites: store.hasPending(this.collection, this.id) };
    const snapshot = new DocumentSnapshot(this.client, this.collection, this.id, doc, metadata);
    return { snapshot, signature: JSON.stringify([doc, metadata]) };
  }

  protected deliver(snapshot: unknown): void {
    this.next(snapshot as DocumentSnapshot);
  }
}

class QueryListener extends Listener {
  private readonly plan: Plan;
  /** ids of the documents the server state puts in the fetched window */
  private members = new Set<string>();
  /** the fetched window held every matching document */
  private complete = false;
  /** the sort keys of the window's last document, when the window is not complete */
  private boundary: SqlValue[] | null = null;
  private readonly touched = new Set<string>();
  /** answering from the known documents until the first fetch lands */
  private cached = false;

  constructor(
    client: TelestackClient,
    collection: string,
    private readonly wire: WireQuery,
    private readonly next: (snap: QuerySnapshot) => void,
    error: ErrorCallback | undefined,
  ) {
    super(client, collection, error);
    this.plan = planOf(wire);
  }

  serverChanged(id: string): void {
    if (this.cached && !this.fetched) {
      this.settle(id);
      this.schedule();
    }
    if (this.isFetching || !this.fetched) {
      this.touched.add(id); // settled once the fetch lands
      return;
    }
    this.settle(id);
    if (!this.complete && this.members.size < this.plan.limit) void this.refetch();
    this.schedule();
  }

  /** Is `doc` (server state) inside the window this listener can answer for? */
  private inWindow(doc: DocumentRecord): boolean {
    if (!matches(doc, this.plan)) return false;
    return this.complete || this.boundary === null || compareKeys(sortKeys(doc, this.plan.order), this.boundary, this.plan.order) <= 0;
  }

  private settle(id: string): void {
    const doc = this.client.store.known(this.collection, id)?.doc;
    if (doc && this.inWindow(doc)) this.members.add(id);
    else this.members.delete(id);
  }

  protected override useCache(): void {
    if (this.fetched) return;
    this.cached = true;
    this.complete = true;
    this.boundary = null;
    this.members = new Set();
    for (const id of this.client.store.ids(this.collection)) this.settle(id);
  }

  protected async load(): Promise<void> {
    const { http, store } = this.client;
    this.touched.clear();
    const limit = this.plan.limit === 0 ? 0 : Math.min(200, this.plan.limit + SLACK);
    const body = { ...this.wire, limit, count: false };
    const path = `/v1/collections/${encodeURIComponent(this.collection)}/query`;
    const page = (await http.request({ method: 'POST', path, body })).body as {
      documents: DocumentRecord[];
      next_cursor: string | null;
    };
    for (const d of page.documents) store.applyServer(d.collection, d.id, d.version, d, d.updated_at);
    this.complete = page.next_cursor === null;
    const last = page.documents[page.documents.length - 1];
    this.boundary = this.complete || !last ? null : sortKeys(last, this.plan.order);
    this.members = new Set(page.documents.map((d) => d.id));
    for (const id of [...this.members, ...this.touched]) this.settle(id);
    this.touched.clear();
    if (!this.complete && this.members.size < this.plan.limit) this.fetchAgainLater();
  }

  private fetchAgainLater(): void {
    queueMicrotask(() => void this.refetch());
  }

  protected view(meta: SnapshotMetadata): { snapshot: unknown; signature: string } | null {
    if (!this.fetched && !this.cached) return null;
    const { store } = this.client;
    const candidates = new Set([...this.members, ...store.pendingIds(this.collection)]);
    const docs: DocumentRecord[] = [];
    let pending = false;
    for (const id of candidates) {
      const local = store.hasPending(this.collection, id);
      const doc = store.effective(this.collection, id);
      if (local && this.members.has(id)) pending = true;
      if (!doc) continue;
      if (!this.members.has(id) && !this.inWindow(doc)) continue;
      docs.push(doc);
    }
    const result = run(docs, this.plan);
    pending ||= result.some((d) => store.hasPending(this.collection, d.id));
    const metadata = { ...meta, hasPendingWrites: pending };
    const snaps = result.map(
      (d) => new DocumentSnapshot(this.client, this.collection, d.id, d, { ...metadata, hasPendingWrites: store.hasPending(this.collection, d.id) }),
    );
    const signature = JSON.stringify([result.map((d) => [d.id, d.version, store.hasPending(this.collection, d.id) ? d.data : 0]), metadata]);
    return { snapshot: new QuerySnapshot(snaps, metadata, null), signature };
  }

  protected deliver(snapshot: unknown): void {
    this.next(snapshot as QuerySnapshot);
  }
}

