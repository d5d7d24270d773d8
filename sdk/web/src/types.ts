/** The gateway's wire types (docs/api.md). */
export type JsonValue = null | boolean | number | string | JsonValue[] | { [key: string]: JsonValue };
export type DocumentData = { [key: string]: JsonValue };

/** A stored document as the gateway returns it (timestamps ISO-8601 UTC). */
export interface DocumentRecord<T extends DocumentData = DocumentData> {
  id: string;
  collection: string;
  owner_id: string | null;
  version: number;
  created_at: string;
  updated_at: string;
  data: T;
}

/** A realtime publication's body (one per committed write). */
export interface ChangeEvent {
  /** `removed`: the document still exists, but this reader may no longer read it (access rules) */
  type: 'created' | 'updated' | 'deleted' | 'removed';
  collection: string;
  id: string;
  version: number;
  owner_id: string | null;
  data: DocumentData | null;
  /** absent from gateways that predate it */
  created_at?: string;
  updated_at: string;
}

export type Scalar = string | number | boolean | null;
export type WhereOp = '==' | '!=' | '<' | '<=' | '>' | '>=' | 'in' | 'not-in' | 'array-contains' | 'exists';
export type WhereClause = [string, WhereOp, Scalar | Scalar[]];
export type OrderClause = string | [string, 'asc' | 'desc'];

/** The body of `POST /v1/collections/{c}/query`. */
export interface WireQuery {
  where?: WhereClause[];
  order_by?: OrderClause[];
  limit?: number;
  cursor?: string;
  count?: boolean;
}

export interface User {
  id: string;
  email: string | null;
}
