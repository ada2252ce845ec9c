-- Two-step verification (docs/flows/two-step.md): one TOTP factor per account and its
-- single-use recovery codes.

CREATE TABLE totp_factors (
  account_id     text PRIMARY KEY REFERENCES accounts (id) ON DELETE CASCADE,
  -- The shared secret, sealed with SECRET_KEY and bound to the account (src/shared/crypto.ts).
  secret_sealed  text NOT NULL,
  -- When the first correct code switched it on. A secret being enrolled is never stored: it
  -- waits sealed in the cookie of the browser that asked (src/identity/two-step.ts).
  confirmed_at   timestamptz,
  -- The last RFC 6238 time step accepted: a code of that step or an older one is a replay.
  last_time_step bigint NOT NULL DEFAULT 0,
  created_at     timestamptz NOT NULL
);

CREATE TABLE recovery_codes (
  account_id text NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
  -- Keyed hash of the normalised code; the codes themselves are shown once and never stored.
  code_hash  text NOT NULL,
  used_at    timestamptz,
  created_at timestamptz NOT NULL,
  PRIMARY KEY (account_id, code_hash)
);

-- Set by an operator (and, later, by an organization's policy): the next login asks the person
-- to turn two-step verification on before it continues.
ALTER TABLE accounts ADD COLUMN two_step_required boolean NOT NULL DEFAULT false;
