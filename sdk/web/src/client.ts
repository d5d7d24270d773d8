import { Session } from './auth.js';
import { LocalStore } from './cache.js';
import { SIGNED_OUT, TelestackError } from './errors.js';
import { Http, type FetchLike } from './http.js';
import { defaultStorage, type KeyValueStorage } from './kv.js';
import { defaultLock, openTabChannel, type LockFn } from './locks.js';
import { Realtime } from './realtime.js';
import { memoryPersistence, type CachedDocument, type Persistence } from './persistence.js';
import { WriteQueue, type PersistedWrite } from './writes.js';

export interface ClientOptions {
  /** the gateway, e.g. `http://127.0.0.1:8787` */
  url: string;
  /** where the session is kept: `localStorage` in browsers by default, memory elsewhere */
  storage?: KeyValueStorage;
  /** the fetch to use (default: the global one) */
  fetch?: FetchLike;
  /** the WebSocket constructor for live data where there is no global one (Node 20: `ws`) */
  websocket?: unknown;
  /** overrides the realtime URL the gateway announces */
  realtimeUrl?: string;
  /** the lock that serialises token refreshes (default: Web Locks, else one per JavaScript realm) */
  lock?: LockFn;
  /** where queued writes and cached documents are kept (default: memory; `indexedDbPersistence()` survives reloads) */
  persistence?: Persistence;
  /** a queued write restored from `persistence` was refused by the server (nobody awaits its promise) */
  onWriteError?: (err: TelestackError, write: PersistedWrite) => void;
}

type EventHook = (type: string, fn: () => void) => void;

/** Anything that must stop when the signed-in user changes (live listeners). */
export interface Detachable {
  terminate(err: TelestackError): void;
  stop(): void;
}

/** One connection to a gateway: session, local document state, write queue and live channel. */
export class TelestackClient {
  readonly url: string;
  /** @internal */ readonly http: Http;
  /** @internal */ readonly session: Session;
  /** @internal */ readonly store: LocalStore;
  /** @internal */ readonly writes: WriteQueue;
  /** @internal */ readonly realtime: Realtime;
  /** @internal */ readonly active = new Set<Detachable>();
  private readonly persistence: Persistence;
  private unsaved: CachedDocument[] = [];

  constructor(options: ClientOptions) {
    this.url = options.url.replace(/\/+$/, '');
    const fetchImpl = options.fetch ?? (globalThis as { fetch?: FetchLike }).fetch?.bind(globalThis);
    if (!fetchImpl) throw new TelestackError('no_fetch', 0, 'no fetch on this platform: pass createClient({ fetch })');
    this.http = new Http(this.url, fetchImpl);
    const key = `telestack:${this.url}:session`;
    this.session = new Session(this.http, options.storage ?? defaultStorage(), key, options.lock ?? defaultLock(), openTabChannel(key));
    this.http.tokens = this.session;
    const userId = (): string | null => this.session.user?.id ?? null;
    this.store = new LocalStore(userId);
    const persistence = (this.persistence = options.persistence ?? memoryPersistence());
    this.writes = new WriteQueue(this.http, this.store, { save: (writes) => persistence.saveWrites(userId(), writes) });
    if (options.onWriteError) this.writes.onOrphanError = options.onWriteError;
    this.realtime = new Realtime(this.http, this.store, {
      ...(options.websocket ? { websocket: options.websocket } : {}),
      ...(options.realtimeUrl ? { url: options.realtimeUrl } : {}),
    });
    let current: string | null | undefined;
    this.session.onChange((user) => {
      const next = user?.id ?? null;
      if (current !== undefined && current !== next) this.userChanged();
      current = next;
    });
    this.writes.restore(this.session.ready.then(() => this.restore(userId())));
    this.store.onServerState = (collection, id, state) => {
      if (!this.unsaved.length) setTimeout(() => this.saveDocuments(), 50);
      this.unsaved.push({ collection, id, ...state });
    };
    // the network is back: send the queue now rather than at the end of the back-off
    this.host.addEventListener?.('online', this.onOnline);
  }

  private readonly host = globalThis as { addEventListener?: EventHook; removeEventListener?: EventHook };
  private readonly onOnline = (): void => this.writes.retryNow();

  /** What an earlier client of the same user left: its documents now, its queue returned. */
  private async restore(user: string | null): Promise<PersistedWrite[]> {
    const saved = await this.persistence.load();
    if (saved.user !== user) {
      await this.persistence.clear();
      return [];
    }
    for (const d of saved.documents) this.store.applyServer(d.collection, d.id, d.version, d.doc, d.updatedAt);
    return saved.writes;
  }

  private saveDocuments(): void {
    const documents = this.unsaved.splice(0);
    const user = this.session.user?.id ?? null;
    this.persistence.saveDocuments(user, documents).catch((err: unknown) => console.warn('telestack: documents not cached', err));
  }

  /** @internal see {@link terminate} */
  close(): void {
    for (const l of [...this.active]) l.stop();
    this.active.clear();
    this.writes.close();
    this.host.removeEventListener?.('online', this.onOnline);
    this.realtime.reset();
    this.session.close();
  }

  /** Another user (or none): live data and queued writes of the previous one end here. */
  private userChanged(): void {
    this.realtime.reset();
    this.writes.abandon();
    this.store.clear();
    this.unsaved = [];
    void this.persistence.clear();
    const err = new TelestackError(SIGNED_OUT, 401, 'the signed-in user changed; listen again');
    for (const l of [...this.active]) l.terminate(err);
    this.active.clear();
  }
}

export function createClient(options: ClientOptions): TelestackClient {
  return new TelestackClient(options);
}

/**
 * Stop the client: every listener stops (without an error callback), the realtime connection and the
 * cross-tab channel close. The session stays stored. A Node process exits only after this (or when
 * no listener was ever started).
 */
export function terminate(client: TelestackClient): void {
  client.close();
}
