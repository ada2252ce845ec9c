-- Closing an account: deactivated at once, erased after a grace period unless the owner logs in.

ALTER TABLE accounts ADD COLUMN closed_at timestamptz;
ALTER TABLE accounts ADD COLUMN delete_after timestamptz;
ALTER TABLE accounts ADD COLUMN erased_at timestamptz;
CREATE INDEX accounts__delete_after ON accounts (delete_after) WHERE delete_after IS NOT NULL AND erased_at IS NULL;
