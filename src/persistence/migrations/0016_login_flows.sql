-- Login flows (docs/flows/login.md, decision 0026): one row per login interaction that has
-- something to remember between two requests — the account a first factor proved, the methods
-- done so far (RFC 8176 amr), the step the person is at, the failed tries at that step, and a
-- Trello member's pending review, offer or link. A plain password login without a second step
-- finishes in the request that proved it and writes no row.
--
-- Keyed by SHA-256 of the interaction's uid, as the engine's own rows are keyed by a hash of
-- their id (decision 0004): the uid is what the browser's interaction cookie carries, and a
-- copy of this table must not lead anyone to a live interaction. The row lives as long as the
-- interaction (capped per step in code), and the sweeper deletes it afterwards; lookups ignore
-- expired rows already.

CREATE TABLE login_flows (
  uid_hash    text PRIMARY KEY,
  step        text NOT NULL,
  account_id  text REFERENCES accounts (id) ON DELETE CASCADE,
  amr         text[] NOT NULL DEFAULT '{}',
  attempts    integer NOT NULL DEFAULT 0,
  -- A Trello member's state in this login: the member proven by its Trello password (with the
  -- argon2id of that password, and a new address's keyed code hash), or the link both sides
  -- proved, made when the login finishes.
  trello      jsonb,
  expires_at  timestamptz NOT NULL,
  updated_at  timestamptz NOT NULL
);
CREATE INDEX login_flows__expires_at ON login_flows (expires_at);
