-- Organizations, their admins, verified domains and the accounts they manage (issue 12,
-- docs/flows/organizations.md, docs/decisions/0028-domain-verification.md).

CREATE TABLE organizations (
  -- org_…: opaque, never reused.
  id         text PRIMARY KEY,
  name       text NOT NULL CONSTRAINT organizations__name CHECK (length(name) BETWEEN 1 AND 100),
  created_at timestamptz NOT NULL,
  created_by text NOT NULL REFERENCES accounts (id)
);

-- Who runs an organization. An account can be admin or member of several organizations.
CREATE TABLE organization_members (
  organization_id text NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
  account_id      text NOT NULL REFERENCES accounts (id),
  role            text NOT NULL CONSTRAINT organization_members__role CHECK (role IN ('admin', 'member')),
  added_at        timestamptz NOT NULL,
  -- NULL for the creator (nobody added them).
  added_by        text REFERENCES accounts (id),
  PRIMARY KEY (organization_id, account_id)
);
-- "My organizations": every organization of one account.
CREATE INDEX organization_members__account_id ON organization_members (account_id);

-- Admin invitations: a link mailed to an address, accepted by signing in with that address.
-- Only a keyed hash (HMAC with the verification-code key) of the link's token is stored.
CREATE TABLE organization_invitations (
  id              text PRIMARY KEY,
  organization_id text NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
  -- Normalised like accounts.email.
  email           text NOT NULL,
  role            text NOT NULL CONSTRAINT organization_invitations__role CHECK (role IN ('admin', 'member')),
  token_hash      text NOT NULL UNIQUE,
  invited_by      text NOT NULL REFERENCES accounts (id),
  created_at      timestamptz NOT NULL,
  expires_at      timestamptz NOT NULL,
  accepted_at     timestamptz,
  accepted_by     text REFERENCES accounts (id)
);
-- One open invitation per address and organization (a new one replaces it).
CREATE UNIQUE INDEX organization_invitations__open ON organization_invitations (organization_id, lower(email)) WHERE accepted_at IS NULL;

-- Domains an organization claims. `verification_token` is public by design (it is published
-- in DNS or on the web server); it ties the proof to this organization and this domain.
CREATE TABLE organization_domains (
  -- dom_…
  id                 text PRIMARY KEY,
  organization_id    text NOT NULL REFERENCES organizations (id),
  -- Normalised: lower-case ASCII (IDN as punycode), no trailing dot (src/organizations/domain-name.ts).
  domain             text NOT NULL CONSTRAINT organization_domains__domain CHECK (domain = lower(domain) AND length(domain) <= 253),
  verification_token text NOT NULL,
  -- pending: never proven; verified: proven, last re-check passed; failing: proven once, the
  -- last re-check failed — it still manages its accounts, but claims no new ones.
  state              text NOT NULL CONSTRAINT organization_domains__state CHECK (state IN ('pending', 'verified', 'failing')),
  -- How ownership was last proven: a DNS TXT record or the HTTPS file.
  method             text CONSTRAINT organization_domains__method CHECK (method IN ('dns', 'https')),
  added_at           timestamptz NOT NULL,
  added_by           text NOT NULL REFERENCES accounts (id),
  verified_at        timestamptz,
  last_checked_at    timestamptz,
  last_error         text,
  failing_since      timestamptz,
  CONSTRAINT organization_domains__verified_has_date CHECK (state = 'pending' OR verified_at IS NOT NULL),
  CONSTRAINT organization_domains__failing_has_date CHECK ((state = 'failing') = (failing_since IS NOT NULL)),
  UNIQUE (organization_id, domain)
);
-- A domain is held by at most one organization once proven, and a failing domain is still held
-- (its accounts stay managed): nobody else can verify it meanwhile.
CREATE UNIQUE INDEX organization_domains__held ON organization_domains (domain) WHERE state IN ('verified', 'failing');
-- The re-check worker walks held domains, least recently checked first.
CREATE INDEX organization_domains__recheck ON organization_domains (last_checked_at NULLS FIRST) WHERE state IN ('verified', 'failing');

-- Who manages an account besides its owner: at most one manager of each kind, so two at most —
-- an organization (by a verified domain of the account's address) and a Trello Enterprise (from
-- the legacy import). Rows are added by claiming and by the import, and removed only by an
-- explicit release, never because a domain's re-check failed (decision 0028): the foreign keys
-- below have no ON DELETE action, so a domain or organization still managing accounts cannot
-- be deleted by accident.
CREATE TABLE account_managers (
  account_id       text NOT NULL REFERENCES accounts (id),
  kind             text NOT NULL CONSTRAINT account_managers__kind CHECK (kind IN ('organization', 'trello_enterprise')),
  -- kind = organization: the organization and the verified domain that claimed the account.
  organization_id  text REFERENCES organizations (id),
  domain_id        text REFERENCES organization_domains (id),
  -- kind = trello_enterprise: the Enterprise as the import names it, and the member it came from.
  enterprise_id    text,
  enterprise_name  text,
  trello_member_id text REFERENCES trello_members (member_id),
  since            timestamptz NOT NULL,
  PRIMARY KEY (account_id, kind),
  CONSTRAINT account_managers__shape CHECK (
    (kind = 'organization' AND organization_id IS NOT NULL AND enterprise_id IS NULL AND enterprise_name IS NULL AND trello_member_id IS NULL)
    OR (kind = 'trello_enterprise' AND enterprise_id IS NOT NULL AND organization_id IS NULL AND domain_id IS NULL)
  )
);
CREATE INDEX account_managers__organization_id ON account_managers (organization_id) WHERE organization_id IS NOT NULL;
CREATE INDEX account_managers__domain_id ON account_managers (domain_id) WHERE domain_id IS NOT NULL;
CREATE INDEX account_managers__enterprise_id ON account_managers (enterprise_id) WHERE enterprise_id IS NOT NULL;
