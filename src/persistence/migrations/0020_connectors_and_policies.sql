-- A company's identity providers and its authentication policies (issue 13, docs/flows/sso.md,
-- docs/decisions/0033-sso-connectors-and-policies.md).

-- An organization's upstream identity provider: OpenID Connect (discovery-based) or SAML 2.0.
CREATE TABLE connectors (
  -- con_…: opaque, never reused; it names the connector in URLs (SAML metadata and ACS, the
  -- OIDC redirect) and in provenance, so it never changes.
  id              text PRIMARY KEY,
  organization_id text NOT NULL REFERENCES organizations (id),
  kind            text NOT NULL CONSTRAINT connectors__kind CHECK (kind IN ('oidc', 'saml')),
  name            text NOT NULL CONSTRAINT connectors__name CHECK (length(name) BETWEEN 1 AND 100),
  -- The settings that are not secret (issuer, client id, scopes, claim mapping; IdP entity id,
  -- SSO URL, IdP certificates, IdP-initiated login allowed). Shape per kind: src/federation/connectors.ts.
  config          jsonb NOT NULL,
  -- The secrets (an OIDC client secret; the SAML service provider's keys), sealed with SECRET_KEY.
  sealed_secrets  text,
  enabled         boolean NOT NULL DEFAULT true,
  created_at      timestamptz NOT NULL,
  created_by      text NOT NULL REFERENCES accounts (id),
  updated_at      timestamptz NOT NULL,
  -- The console's health line: the last login (or test) that worked, the last that did not and why.
  last_success_at timestamptz,
  last_failure_at timestamptz,
  last_failure    text
);
CREATE INDEX connectors__organization_id ON connectors (organization_id);

-- The verified domains a connector answers for: an upstream identity whose address is on none
-- of them is refused, and home-realm discovery goes by them.
CREATE TABLE connector_domains (
  connector_id text NOT NULL REFERENCES connectors (id) ON DELETE CASCADE,
  domain_id    text NOT NULL REFERENCES organization_domains (id) ON DELETE CASCADE,
  PRIMARY KEY (connector_id, domain_id)
);
CREATE INDEX connector_domains__domain_id ON connector_domains (domain_id);

-- An organization's authentication policies. Each managed account follows the policy it is
-- assigned to, or the organization's default one; an organization without policies sets no rules.
CREATE TABLE authentication_policies (
  -- pol_…
  id                    text PRIMARY KEY,
  organization_id       text NOT NULL REFERENCES organizations (id),
  name                  text NOT NULL CONSTRAINT authentication_policies__name CHECK (length(name) BETWEEN 1 AND 100),
  is_default            boolean NOT NULL DEFAULT false,
  -- password: email and password (and Google); sso: only through `connector_id`.
  login_method          text NOT NULL CONSTRAINT authentication_policies__login_method CHECK (login_method IN ('password', 'sso')),
  connector_id          text REFERENCES connectors (id),
  two_step_required     boolean NOT NULL DEFAULT false,
  password_min_length   integer CONSTRAINT authentication_policies__password_min_length CHECK (password_min_length BETWEEN 8 AND 128),
  password_max_age_days integer CONSTRAINT authentication_policies__password_max_age_days CHECK (password_max_age_days BETWEEN 1 AND 3650),
  idle_timeout_seconds  integer CONSTRAINT authentication_policies__idle_timeout_seconds CHECK (idle_timeout_seconds BETWEEN 300 AND 31536000),
  max_session_seconds   integer CONSTRAINT authentication_policies__max_session_seconds CHECK (max_session_seconds BETWEEN 300 AND 31536000),
  -- "Sign everyone out": logins made before this instant no longer count for accounts under it.
  reauthenticate_after  timestamptz,
  created_at            timestamptz NOT NULL,
  updated_at            timestamptz NOT NULL,
  CONSTRAINT authentication_policies__sso_has_connector CHECK ((login_method = 'sso') = (connector_id IS NOT NULL)),
  UNIQUE (organization_id, name)
);
-- At most one default per organization.
CREATE UNIQUE INDEX authentication_policies__default ON authentication_policies (organization_id) WHERE is_default;
CREATE INDEX authentication_policies__connector_id ON authentication_policies (connector_id) WHERE connector_id IS NOT NULL;

-- Which policy an account follows, when not its organization's default. An account has one
-- organization manager at most, so one row at most; a row left from an organization that no
-- longer manages the account is ignored (the loader matches the policy's organization).
CREATE TABLE authentication_policy_members (
  account_id text PRIMARY KEY REFERENCES accounts (id),
  policy_id  text NOT NULL REFERENCES authentication_policies (id) ON DELETE CASCADE,
  added_at   timestamptz NOT NULL
);
CREATE INDEX authentication_policy_members__policy_id ON authentication_policy_members (policy_id);
