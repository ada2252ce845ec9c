-- Foundation: accounts, relying-party clients, signing keys, instance secrets and the
-- oidc-provider model store. Written for PostgreSQL 13+ so the server and PGlite both accept it.

CREATE TABLE accounts (
  id                  text PRIMARY KEY,
  -- Exactly one address per account, stored normalised (trimmed, NFC, lower-case).
  email               text NOT NULL,
  email_verified      boolean NOT NULL DEFAULT false,
  name                text,
  nickname            text,
  picture             text,
  locale              text,
  zoneinfo            text,
  status              text NOT NULL DEFAULT 'active'
                      CONSTRAINT accounts__status CHECK (status IN ('active', 'deactivated', 'closed')),
  -- PHC string: the algorithm and its parameters travel with the hash.
  password_hash       text,
  password_changed_at timestamptz,
  created_at          timestamptz NOT NULL DEFAULT now(),
  updated_at          timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX accounts__email ON accounts (lower(email));

CREATE TABLE clients (
  client_id     text PRIMARY KEY,
  kind          text NOT NULL CONSTRAINT clients__kind CHECK (kind IN ('web', 'native', 'service')),
  name          text NOT NULL,
  -- Sealed with SECRET_KEY (AES-256-GCM); NULL for public clients.
  secret_sealed text,
  first_party   boolean NOT NULL DEFAULT false,
  -- Registration metadata by its OIDC Dynamic Client Registration names (redirect_uris, ...).
  metadata      jsonb NOT NULL DEFAULT '{}'::jsonb,
  created_at    timestamptz NOT NULL DEFAULT now(),
  updated_at    timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE signing_keys (
  kid                text PRIMARY KEY,
  alg                text NOT NULL,
  public_jwk         jsonb NOT NULL,
  private_jwk_sealed text NOT NULL,
  created_at         timestamptz NOT NULL DEFAULT now(),
  -- Published from creation, signs from activates_at (so every instance publishes it first).
  activates_at       timestamptz NOT NULL,
  -- Set when a newer key of the same algorithm takes over; still published until then
  -- plus the longest lifetime of anything it signed.
  unpublish_at       timestamptz
);
CREATE INDEX signing_keys__unpublish_at ON signing_keys (unpublish_at);

CREATE TABLE instance_secrets (
  name         text PRIMARY KEY,
  sealed_value text NOT NULL,
  created_at   timestamptz NOT NULL DEFAULT now()
);

-- Every oidc-provider model (Session, Interaction, AuthorizationCode, AccessToken, RefreshToken,
-- Grant, ...). The id is stored only as a SHA-256 hash: a copy of this table does not hand out
-- working tokens, codes or session cookies.
CREATE TABLE oidc_payloads (
  model          text NOT NULL,
  id_hash        text NOT NULL,
  payload        jsonb NOT NULL,
  grant_id       text,
  session_uid    text,
  user_code_hash text,
  expires_at     timestamptz,
  consumed_at    timestamptz,
  CONSTRAINT oidc_payloads__pkey PRIMARY KEY (model, id_hash)
);
CREATE INDEX oidc_payloads__grant_id ON oidc_payloads (grant_id) WHERE grant_id IS NOT NULL;
CREATE INDEX oidc_payloads__session_uid ON oidc_payloads (session_uid) WHERE session_uid IS NOT NULL;
CREATE INDEX oidc_payloads__user_code_hash ON oidc_payloads (user_code_hash) WHERE user_code_hash IS NOT NULL;
CREATE INDEX oidc_payloads__expires_at ON oidc_payloads (expires_at) WHERE expires_at IS NOT NULL;
