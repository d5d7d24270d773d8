-- Documents: one row per (collection, id). `data` is the JSON body (text, written by worker/jsoncodec.py),
-- `version` starts at 1 and grows by one per committed write (it is the ETag),
-- timestamps are unix milliseconds. Per-collection expression indexes are generated from
-- config/collections/*.yaml by worker/migrations.py (recorded as `index:<collection>:<hash>`).
CREATE TABLE documents (
  collection TEXT NOT NULL,
  id TEXT NOT NULL,
  owner_id TEXT,
  data TEXT NOT NULL,
  version INTEGER NOT NULL CHECK (version >= 1),
  created_at INTEGER NOT NULL,
  updated_at INTEGER NOT NULL,
  PRIMARY KEY (collection, id)
);
-- RLS-scoped listing in id order (the default order) without a sort.
CREATE INDEX documents_owner ON documents(collection, owner_id, id);
