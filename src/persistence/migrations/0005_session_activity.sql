-- What the "Sessions" settings page shows about each browser session: device, address, last use.
-- One row per oidc-provider session uid, written when an authorization completes.

CREATE TABLE session_activity (
  session_uid  text PRIMARY KEY,
  account_id   text NOT NULL,
  user_agent   text,
  ip           text,
  created_at   timestamptz NOT NULL,
  last_seen_at timestamptz NOT NULL
);
CREATE INDEX session_activity__account_id ON session_activity (account_id);
