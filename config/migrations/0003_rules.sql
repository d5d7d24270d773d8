-- Access rules and realtime readers.
-- A document's readers are computed in its write's batch (worker/rule_sql.py readers): `readers` is the
-- JSON array of user ids who may read the document after the write, `prior_readers` before it (both
-- NULL for collections whose events go to the owner or to a shared channel). The publisher sends the
-- event to `readers` and a removal event to `prior_readers` minus `readers`.
ALTER TABLE outbox ADD COLUMN readers TEXT;
ALTER TABLE outbox ADD COLUMN prior_readers TEXT;
-- The last version of each deleted id, so a document created again under the same id continues the
-- version sequence (versions never repeat per id; clients de-duplicate events by version).
-- One small row per deleted id, kept for good.
CREATE TABLE tombstones (
  collection TEXT NOT NULL,
  id TEXT NOT NULL,
  version INTEGER NOT NULL,
  deleted_at INTEGER NOT NULL,
  PRIMARY KEY (collection, id)
) WITHOUT ROWID;
