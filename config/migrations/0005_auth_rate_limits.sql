-- Sliding-window logs of auth attempts (worker/rate_limits.py): one row per counted attempt, per bucket.
-- A bucket is '<action>:account:<sha256>' or '<action>:address:<sha256>': never the email or address
-- itself. Rows older than the longest window are pruned by later attempts, so the table stays small.
CREATE TABLE auth_rate_limits (
  bucket TEXT NOT NULL,
  at_ms INTEGER NOT NULL);                  -- unix ms of the attempt
CREATE INDEX auth_rate_limits_bucket ON auth_rate_limits(bucket, at_ms);
CREATE INDEX auth_rate_limits_age ON auth_rate_limits(at_ms);
