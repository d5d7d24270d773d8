-- Realtime for documents whose readers a looked-up document decides (worker/dependent_events.py).
-- A write to a looked-up document (a team) stages, in its own batch and before the write, the readers
-- of each document whose read rule looks it up (the team's tasks); after the write it compares them
-- with the readers now, writes an outbox event for each document whose readers changed, and deletes
-- its staged rows. The table is therefore empty outside a write's batch.
CREATE TABLE dependent_readers (
  collection TEXT NOT NULL,
  doc_id TEXT NOT NULL,
  readers TEXT NOT NULL,  -- JSON array: who could read the document before the write
  PRIMARY KEY (collection, doc_id)
) WITHOUT ROWID;
