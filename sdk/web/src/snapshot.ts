import { DocumentReference } from './refs.js';
import type { TelestackClient } from './client.js';
import type { DocumentData, DocumentRecord } from './types.js';

/** Firestore's snapshot metadata: is the data possibly stale, does it include unconfirmed local writes. */
export interface SnapshotMetadata {
  /** true when the data was not confirmed current by the server (e.g. the live channel is reconnecting) */
  fromCache: boolean;
  /** true when a local write not yet confirmed by the server is applied to this data */
  hasPendingWrites: boolean;
}

export class DocumentSnapshot<T extends DocumentData = DocumentData> {
  readonly ref: DocumentReference<T>;

  constructor(
    client: TelestackClient,
    collection: string,
    readonly id: string,
    /** the stored document (null when it does not exist) */
    readonly record: DocumentRecord<T> | null,
    readonly metadata: SnapshotMetadata,
  ) {
    this.ref = new DocumentReference<T>(client, collection, id);
  }

  exists(): boolean {
    return this.record !== null;
  }

  data(): T | undefined {
    return this.record?.data;
  }

  /** The server version this snapshot is based on (0 for a document not yet on the server). */
  get version(): number {
    return this.record?.version ?? 0;
  }
}

export class QuerySnapshot<T extends DocumentData = DocumentData> {
  constructor(
    readonly docs: DocumentSnapshot<T>[],
    readonly metadata: SnapshotMetadata,
    /** the cursor of the next page (`startAfter`), or null on the last page */
    readonly nextCursor: string | null,
  ) {}

  get size(): number {
    return this.docs.length;
  }

  get empty(): boolean {
    return this.docs.length === 0;
  }

  forEach(fn: (doc: DocumentSnapshot<T>) => void): void {
    this.docs.forEach(fn);
  }
}
