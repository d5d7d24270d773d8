/**
 * What a client keeps across reloads: the queue of writes the server has not confirmed, and the
 * server state of the documents it has seen (so that listeners have something to show offline).
 * Off by default: `memoryPersistence()` lasts as long as the client. `indexedDbPersistence()` keeps
 * both in the browser's IndexedDB. Both belong to one user: a client whose session is another
 * user's (or none) clears them instead of using them.
 */
import { TelestackError } from './errors.js';
import type { DocumentRecord } from './types.js';
import type { PersistedWrite } from './writes.js';

/** A document's newest known server state; `doc: null` is a deletion. */
export interface CachedDocument {
  collection: string;
  id: string;
  version: number;
  doc: DocumentRecord | null;
  updatedAt: string;
}

export interface PersistedState {
  /** the user id the queue and the documents belong to (null: nobody signed in) */
  user: string | null;
  writes: PersistedWrite[];
  documents: CachedDocument[];
}

/** The store behind `createClient({ persistence })`. Writes to it are applied in call order. */
export interface Persistence {
  load(): Promise<PersistedState>;
  /** replaces the queue (oldest first) */
  saveWrites(user: string | null, writes: PersistedWrite[]): Promise<void>;
  /** adds or replaces these documents (keyed by collection and id) */
  saveDocuments(user: string | null, documents: CachedDocument[]): Promise<void>;
  /** forgets the queue and every document */
  clear(): Promise<void>;
}

const docKey = (d: CachedDocument): string => `${d.collection}/${d.id}`;

/** Keeps everything in memory, for the life of the object (the default). */
export function memoryPersistence(): Persistence {
  let user: string | null = null;
  let writes: PersistedWrite[] = [];
  const documents = new Map<string, CachedDocument>();
  return {
    load: async () => ({ user, writes, documents: [...documents.values()] }),
    saveWrites: async (u, ws) => {
      user = u;
      writes = ws;
    },
    saveDocuments: async (u, ds) => {
      user = u;
      for (const d of ds) documents.set(docKey(d), d);
    },
    clear: async () => {
      user = null;
      writes = [];
      documents.clear();
    },
  };
}

// The slice of IndexedDB used here (declared, not taken from lib "DOM": the core stays DOM-free).
interface IdbRequest<T = unknown> {
  result: T;
  error: unknown;
  onsuccess: (() => void) | null;
  onerror: (() => void) | null;
}
interface IdbStore {
  put(value: unknown, key: string): void;
  get(key: string): IdbRequest;
  getAll(): IdbRequest<unknown[]>;
  clear(): void;
}
interface IdbTransaction {
  objectStore(name: string): IdbStore;
  error: unknown;
  oncomplete: (() => void) | null;
  onerror: (() => void) | null;
  onabort: (() => void) | null;
}
interface IdbDatabase {
  createObjectStore(name: string): void;
  transaction(stores: string[], mode: 'readonly' | 'readwrite'): IdbTransaction;
}
interface IdbFactory {
  open(name: string, version: number): IdbRequest<IdbDatabase> & { onupgradeneeded: (() => void) | null };
}

const META = 'meta';
const DOCS = 'documents';

/**
 * Keeps the queue and the documents in IndexedDB, database `name` (one per gateway an app uses).
 * Throws `unsupported` on first use where there is no IndexedDB (Node, React Native).
 */
export function indexedDbPersistence(name = 'telestack'): Persistence {
  let opened: Promise<IdbDatabase> | null = null;
  const open = (): Promise<IdbDatabase> =>
    (opened ??= new Promise((resolve, reject) => {
      const idb = (globalThis as { indexedDB?: IdbFactory }).indexedDB;
      if (!idb) return reject(new TelestackError('unsupported', 0, 'no IndexedDB on this platform'));
      const req = idb.open(name, 1);
      req.onupgradeneeded = () => {
        req.result.createObjectStore(META);
        req.result.createObjectStore(DOCS);
      };
      req.onsuccess = () => resolve(req.result);
      req.onerror = () => reject(req.error);
    }));
  /** one transaction; resolves when it commits (transactions on the same stores run in creation order) */
  const run = async <T>(mode: 'readonly' | 'readwrite', body: (t: IdbTransaction) => () => T): Promise<T> => {
    const t = (await open()).transaction([META, DOCS], mode);
    const result = body(t);
    return new Promise((resolve, reject) => {
      t.oncomplete = () => resolve(result());
      t.onerror = t.onabort = () => reject(t.error);
    });
  };
  return {
    load: () =>
      run('readonly', (t) => {
        const user = t.objectStore(META).get('user');
        const writes = t.objectStore(META).get('writes');
        const docs = t.objectStore(DOCS).getAll();
        return () => ({
          user: (user.result as string | null | undefined) ?? null,
          writes: (writes.result as PersistedWrite[] | undefined) ?? [],
          documents: docs.result as CachedDocument[],
        });
      }),
    saveWrites: (user, writes) =>
      run('readwrite', (t) => {
        t.objectStore(META).put(user, 'user');
        t.objectStore(META).put(writes, 'writes');
        return () => undefined;
      }),
    saveDocuments: (user, documents) =>
      run('readwrite', (t) => {
        t.objectStore(META).put(user, 'user');
        const store = t.objectStore(DOCS);
        for (const d of documents) store.put(d, docKey(d));
        return () => undefined;
      }),
    clear: () =>
      run('readwrite', (t) => {
        t.objectStore(META).clear();
        t.objectStore(DOCS).clear();
        return () => undefined;
      }),
  };
}
