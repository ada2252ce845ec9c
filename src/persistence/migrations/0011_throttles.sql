-- Brute-force throttling (docs/decisions/0011-throttling-in-the-database.md): failure counters
-- shared by every instance. A key names a scope and a keyed hash of what is counted (an email
-- address, an account, a client address), never the value itself.

CREATE TABLE throttles (
  key             text PRIMARY KEY,
  failures        integer NOT NULL,
  -- Failures allowed before waiting starts, kept with the row so one statement can compute
  -- the wait inside ON CONFLICT.
  free_attempts   integer NOT NULL,
  blocked_until   timestamptz,
  last_failure_at timestamptz NOT NULL,
  -- Random token of the last attempt that was counted: RETURNING compares it to tell a counted
  -- attempt from one refused because the key was already waiting.
  last_attempt    text
);
CREATE INDEX throttles__last_failure_at ON throttles (last_failure_at);
