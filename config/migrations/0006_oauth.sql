-- Sign-in through an identity provider (worker/oauth.py). Both tables hold short-lived, single-use
-- records: each is deleted as it is read (DELETE ... RETURNING), so a replayed state or code finds
-- nothing, whichever Worker isolate or gateway process receives it.

-- A flow between POST /v1/auth/oauth/{provider}/start and the provider's redirect to our callback.
CREATE TABLE oauth_flows (
  state_hash    TEXT PRIMARY KEY,  -- sha256 hex of `state`; the state itself travels only in URLs
  provider      TEXT NOT NULL,
  redirect_uri  TEXT NOT NULL,     -- the app's, checked against the allowlist at start
  app_challenge TEXT NOT NULL,     -- the app's PKCE S256 challenge, checked when it redeems the code
  code_verifier TEXT NOT NULL,     -- our PKCE verifier for the provider; useless without its code
  nonce         TEXT NOT NULL,
  expires_at    INTEGER NOT NULL   -- unix s
);

-- A one-time code handed to the app's redirect URI, exchanged by POST /v1/auth/oauth/token.
CREATE TABLE oauth_codes (
  code_hash     TEXT PRIMARY KEY,  -- sha256 hex of the code
  user_id       TEXT NOT NULL,
  email         TEXT NOT NULL,
  time_joined   INTEGER NOT NULL,  -- unix ms, as the core reports it
  new_user      INTEGER NOT NULL CHECK (new_user IN (0, 1)),
  app_challenge TEXT NOT NULL,
  expires_at    INTEGER NOT NULL
);

CREATE INDEX oauth_flows_expiry ON oauth_flows (expires_at);
CREATE INDEX oauth_codes_expiry ON oauth_codes (expires_at);
