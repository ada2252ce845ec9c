-- "This wasn't me": the link an email change sends to the old address (decision 0085). It puts
-- the old address back and locks out whoever made the change — every session ends, the password
-- is cleared, what was added around the change to sign in with (an authenticator, a linked Google
-- or company login) is removed — and mails a link to set a new password. One row per change, the
-- token as a SHA-256 hash; it works once, until `expires_at`, and is swept after.
CREATE TABLE email_change_undos (
  token_hash text PRIMARY KEY,
  account_id text NOT NULL CONSTRAINT email_change_undos__account_id REFERENCES accounts (id) ON DELETE CASCADE,
  old_email  text NOT NULL,
  new_email  text NOT NULL,
  changed_at timestamptz NOT NULL,
  -- The organization that came to manage the account because the new address is on its domain.
  claimed_by text,
  expires_at timestamptz NOT NULL
);
CREATE INDEX email_change_undos__account_id ON email_change_undos (account_id);
CREATE INDEX email_change_undos__expires_at ON email_change_undos (expires_at);
-- Expired changes not confirmed are swept too (one row per account at most, but forever until now).
CREATE INDEX email_changes__expires_at ON email_changes (expires_at);
