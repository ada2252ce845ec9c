-- A pending change of an account's address: it takes effect only when the new address is verified.

CREATE TABLE email_changes (
  account_id text PRIMARY KEY CONSTRAINT email_changes__account_id REFERENCES accounts (id) ON DELETE CASCADE,
  new_email  text NOT NULL,
  token_hash text NOT NULL,
  expires_at timestamptz NOT NULL,
  created_at timestamptz NOT NULL
);
CREATE UNIQUE INDEX email_changes__token_hash ON email_changes (token_hash);
