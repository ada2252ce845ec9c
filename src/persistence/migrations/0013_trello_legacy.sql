-- Legacy Trello accounts (docs/flows/trello-migration.md). Imported apart from provider accounts
-- and linked to one, irreversibly, in the transaction that creates or links that account.

CREATE TABLE trello_members (
  member_id         text PRIMARY KEY,
  username          text NOT NULL,
  full_name         text,
  -- bcrypt ($2a$/$2b$/$2y$); NULL for members who only ever used Google. Once linked it never
  -- logs in again; it is kept only to recognise the old password and say what to use instead.
  password_hash     text,
  google_sub        text,
  google_email      text,
  -- The Trello Enterprise that manages the account, if any: it decides about address changes.
  enterprise_id     text,
  enterprise_name   text,
  linked_account_id text UNIQUE REFERENCES accounts (id),
  linked_at         timestamptz,
  -- How it was linked: password (lazy, at login), google, manual (settings), bulk (CLI).
  linked_by         text,
  imported_at       timestamptz NOT NULL,
  updated_at        timestamptz NOT NULL
);
-- "Update account" in settings finds a member by its Trello username too.
CREATE INDEX trello_members__username ON trello_members (lower(username));
CREATE UNIQUE INDEX trello_members__google_sub ON trello_members (google_sub) WHERE google_sub IS NOT NULL;
-- The bulk migration walks unlinked members in id order, in batches.
CREATE INDEX trello_members__unlinked ON trello_members (member_id) WHERE linked_account_id IS NULL;

CREATE TABLE trello_member_emails (
  member_id    text NOT NULL REFERENCES trello_members (member_id) ON DELETE CASCADE,
  email        text NOT NULL,
  verified     boolean NOT NULL,
  is_primary   boolean NOT NULL,
  last_used_at timestamptz,
  added_at     timestamptz,
  PRIMARY KEY (member_id, email)
);
CREATE INDEX trello_member_emails__email ON trello_member_emails (lower(email));

-- Addresses removed from an account when it was linked: reserved for it (nobody can register or
-- claim them) and refused at login, with a notice to every address of the account.
CREATE TABLE retired_emails (
  email      text NOT NULL,
  account_id text NOT NULL REFERENCES accounts (id),
  retired_at timestamptz NOT NULL,
  reason     text NOT NULL
);
CREATE UNIQUE INDEX retired_emails__email ON retired_emails (lower(email));
CREATE INDEX retired_emails__account_id ON retired_emails (account_id);

-- Upstream identities (Google, later company SSO) linked to accounts.
CREATE TABLE account_identities (
  provider   text NOT NULL,
  subject    text NOT NULL,
  account_id text NOT NULL REFERENCES accounts (id),
  email      text,
  created_at timestamptz NOT NULL,
  PRIMARY KEY (provider, subject)
);
CREATE INDEX account_identities__account_id ON account_identities (account_id);

-- "Member linked" events for the Trello relying party: a signed webhook, retried with backoff
-- (decision 0014). Written in the linking transaction.
CREATE TABLE trello_link_events (
  id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  member_id       text NOT NULL,
  account_id      text NOT NULL,
  created_at      timestamptz NOT NULL,
  attempts        integer NOT NULL DEFAULT 0,
  next_attempt_at timestamptz NOT NULL,
  delivered_at    timestamptz,
  failed_at       timestamptz,
  last_error      text
);
CREATE INDEX trello_link_events__due ON trello_link_events (next_attempt_at) WHERE delivered_at IS NULL AND failed_at IS NULL;
