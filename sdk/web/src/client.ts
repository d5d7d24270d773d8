import { Session } from './auth.js';
import { LocalStore } from './cache.js';
import { SIGNED_OUT, TelestackError } from './errors.js';
import { Http, type FetchLike } from './http.js';
import { defaultStorage, type KeyValueStorage } from './kv.js';
import { defaultLock, openTabChannel, type LockFn } from './locks.js';
import { Realtime } from './realtime.js';
import { memoryPendingWrites, WriteQueue, type PendingWriteStore, type PersistedWrite } from './writes.js';

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
  /** where queued writes are kept (default: memory, see docs/sdk.md) */
  pendingWrites?: PendingWriteStore;
  /** a queued write restored from `pendingWrites` was refused by the server (nobody awaits its promise) */
  onWriteError?: (err: TelestackError, write: PersistedWrite) => void;
}

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

  constructor(options: ClientOptions) {
    this.url = options.url.replace(/\/+$/, '');
    const fetchImpl = options.fetch ?? (globalThis as { fetch?: FetchLike }).fetch?.bind(globalThis);
    if (!fetchImpl) throw new TelestackError('no_fetch', 0, 'no fetch on this platform: pass createClient({ fetch })');
    this.http = new Http(this.url, fetchImpl);
    const key = `telestack:${this.url}:session`;
    this.session = new Session(this.http, options.storage ?? defaultStorage(), key, options.lock ?? defaultLock(), openTabChannel(key));
    this.http.tokens = this.session;
    this.store = new LocalStore(() => this.session.user?.id ?? null);
    this.writes = new WriteQueue(this.http, this.store, options.pendingWrites ?? memoryPendingWrites());
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
    void this.session.ready.then(() => this.writes.restore());
  }

  /** @internal see {@link terminate} */
  close(): void {
    for (const l of [...this.active]) l.stop();
    this.active.clear();
    this.realtime.reset();
    this.session.close();
  }

  /** Another user (or none): live data and queued writes of the previous one end here. */
  private userChanged(): void {
    this.realtime.reset();
    this.writes.abandon();
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
