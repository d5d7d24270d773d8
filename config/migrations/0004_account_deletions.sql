-- Account deletions: one row per user whose deletion was asked for (worker/account.py).
-- The row is written before anything is deleted and marked finished only after every step,
-- so an interrupted deletion is visible (`ops account-deletions`) and a retry completes it.
CREATE TABLE account_deletions (
  user_id TEXT PRIMARY KEY,
  requested_at INTEGER NOT NULL,          -- unix ms
  requested_by TEXT NOT NULL CHECK (requested_by IN ('user', 'admin')),
  documents_deleted INTEGER NOT NULL DEFAULT 0,
  objects_deleted INTEGER NOT NULL DEFAULT 0,
  attempts INTEGER NOT NULL DEFAULT 0,
  finished_at INTEGER                     -- unix ms; NULL = not (yet) complete
);
