/**
 * The client's view of documents: the newest server state seen for each one (from any response or
 * change event, de-duplicated on version) plus the local writes not yet confirmed (latency
 * compensation). Listeners register as targets and are told which documents changed.
 */
import { mergePatch } from './merge.js';
import type { DocumentData, DocumentRecord } from './types.js';

/** The newest known server state of one document; `doc: null` is a deletion (a tombstone). */
export interface ServerState {
  version: number;
  doc: DocumentRecord | null;
  /** the state's `updated_at` (ISO), to recognise a document re-created after a deletion */
  updatedAt: string;
}

/** A local write applied to listeners before the server confirms it. */
export interface Mutation {
  collection: string;
  id: string;
  kind: 'create' | 'set' | 'patch' | 'delete';
  data?: DocumentData;
}

export interface Target {
  readonly collection: string;
  /** the server state of `id` changed */
  serverChanged(id: string): void;
  /** a local write was added, confirmed or rolled back */
  localChanged(id: string): void;
}

const key = (collection: string, id: string): string => `${collection}/${id}`;

export class LocalStore {
  private readonly server = new Map<string, ServerState>();
  private readonly pending = new Map<string, Mutation[]>();
  private readonly targets = new Set<Target>();

  /** a server state was recorded (persistence keeps it) */
  onServerState: (collection: string, id: string, state: ServerState) => void = () => {};

  constructor(private readonly userId: () => string | null) {}

  register(target: Target): () => void {
    this.targets.add(target);
    return () => this.targets.delete(target);
  }

  known(collection: string, id: string): ServerState | undefined {
    return this.server.get(key(collection, id));
  }

  /**
   * Record a server state unless a newer one is known: versions order the states of a document;
   * a state younger than a deletion (re-created with the same id, versions restart at 1) also wins.
   * At the same version, a state that shows or hides the document wins too: a change to a document
   * the access rule looks up (a team's members) lets this reader in or out without a new version
   * (`removed`, or the document as an `updated` event). Returns whether it was applied (false = a
   * duplicate or an older state).
   */
  applyServer(collection: string, id: string, version: number, doc: DocumentRecord | null, updatedAt: string): boolean {
    const k = key(collection, id);
    const known = this.server.get(k);
    if (known) {
      const recreated = known.doc === null && doc !== null && updatedAt > known.updatedAt;
      const access = version === known.version && (known.doc === null) !== (doc === null);
      if (version <= known.version && !recreated && !access) return false;
    }
    // a tombstone remembers the last live state's time when the deletion's own is unknown (a 204)
    const state = { version, doc, updatedAt: updatedAt || known?.updatedAt || '' };
    this.server.set(k, state);
    this.onServerState(collection, id, state);
    for (const t of this.targets) if (t.collection === collection) t.serverChanged(id);
    return true;
  }

  /** A fetched "no such document" (404): nothing newer than any version. */
  applyMissing(collection: string, id: string): void {
    const k = key(collection, id);
    if (this.server.has(k)) return;
    this.server.set(k, { version: 0, doc: null, updatedAt: '' });
    for (const t of this.targets) if (t.collection === collection) t.serverChanged(id);
  }

  /** ids of every document of `collection` with a known server state (for answers from the cache) */
  ids(collection: string): string[] {
    const prefix = `${collection}/`;
    return [...this.server.keys()].filter((k) => k.startsWith(prefix)).map((k) => k.slice(prefix.length));
  }

  /** Forget every server state (another user signed in: what the last one could read is not theirs). */
  clear(): void {
    this.server.clear();
  }

  addMutations(ms: Mutation[]): void {
    for (const m of ms) {
      const k = key(m.collection, m.id);
      this.pending.set(k, [...(this.pending.get(k) ?? []), m]);
    }
    this.notifyLocal(ms);
  }

  removeMutations(ms: Mutation[]): void {
    for (const m of ms) {
      const k = key(m.collection, m.id);
      const rest = (this.pending.get(k) ?? []).filter((x) => x !== m);
      if (rest.length) this.pending.set(k, rest);
      else this.pending.delete(k);
    }
    this.notifyLocal(ms);
  }

  hasPending(collection: string, id: string): boolean {
    return this.pending.has(key(collection, id));
  }

  pendingIds(collection: string): string[] {
    const prefix = `${collection}/`;
    return [...this.pending.keys()].filter((k) => k.startsWith(prefix)).map((k) => k.slice(prefix.length));
  }

  /** The server state with the pending local writes applied; undefined when nothing is known. */
  effective(collection: string, id: string): DocumentRecord | null | undefined {
    const base = this.server.get(key(collection, id));
    let doc = base?.doc;
    for (const m of this.pending.get(key(collection, id)) ?? []) doc = applyMutation(doc, m, this.userId());
    return doc;
  }

  private notifyLocal(ms: Mutation[]): void {
    for (const m of ms) for (const t of this.targets) if (t.collection === m.collection) t.localChanged(m.id);
  }
}

function applyMutation(doc: DocumentRecord | null | undefined, m: Mutation, userId: string | null): DocumentRecord | null | undefined {
  switch (m.kind) {
    case 'delete':
      return null;
    case 'patch':
      return doc ? { ...doc, data: mergePatch(doc.data, m.data ?? {}) as DocumentData } : doc;
    case 'create':
    case 'set': {
      const now = new Date().toISOString();
      const base: DocumentRecord = doc ?? {
        id: m.id,
        collection: m.collection,
        owner_id: userId,
        version: 0,
        created_at: now,
        updated_at: now,
        data: {},
      };
      return { ...base, data: m.data ?? {} };
    }
  }
}
