-- Password reset links (only a hash of each token is stored) and the account behind each
-- protocol row, so every session, grant and token of an account can be found and revoked.

CREATE TABLE password_reset_tokens (
  token_hash text PRIMARY KEY,
  account_id text NOT NULL CONSTRAINT password_reset_tokens__account_id REFERENCES accounts (id) ON DELETE CASCADE,
  created_at timestamptz NOT NULL,
  expires_at timestamptz NOT NULL,
  used_at    timestamptz
);
CREATE INDEX password_reset_tokens__account ON password_reset_tokens (account_id);

ALTER TABLE oidc_payloads ADD COLUMN account_id text;
CREATE INDEX oidc_payloads__account_id ON oidc_payloads (account_id, model) WHERE account_id IS NOT NULL;
