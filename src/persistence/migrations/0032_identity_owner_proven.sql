-- Whether the account's owner proved a company sign-in's link with their own password
-- (decision 0086). An organization admin's account with a password is signed in by a connector
-- only through a link its owner proved: a link made on the identity provider's word before the
-- account became an admin (or before this column) asks for the proof once at the next sign-in.
-- An account without a password has nothing to prove it with and goes on as before.
ALTER TABLE account_identities ADD COLUMN owner_proven boolean NOT NULL DEFAULT false;
