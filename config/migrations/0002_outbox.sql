-- Change events, appended in the same batch as the document write they describe.
-- worker/realtime.py publishes pending rows (sent_at IS NULL) in seq order and marks them sent.
CREATE TABLE outbox (
  seq INTEGER PRIMARY KEY AUTOINCREMENT,   -- commit order
  collection TEXT NOT NULL, doc_id TEXT NOT NULL, owner_id TEXT,
  version INTEGER NOT NULL,
  op TEXT NOT NULL CHECK (op IN ('created','updated','deleted')),
  payload TEXT NOT NULL,                    -- JSON object: the event body
  created_at INTEGER NOT NULL,              -- unix ms
  sent_at INTEGER,                          -- NULL = not yet published
  attempts INTEGER NOT NULL DEFAULT 0,
  last_error TEXT);
CREATE INDEX outbox_pending ON outbox(seq) WHERE sent_at IS NULL;
