-- Sign-up flows: an address being verified by a 6-digit code or a link, tied to the OIDC
-- interaction that started it. Code and link are stored only as keyed hashes.

CREATE TABLE signup_flows (
  id              text PRIMARY KEY,
  interaction_uid text NOT NULL,
  email           text NOT NULL,
  code_hash       text NOT NULL,
  link_hash       text NOT NULL,
  attempts        integer NOT NULL DEFAULT 0,
  verified_at     timestamptz,
  completed_at    timestamptz,
  expires_at      timestamptz NOT NULL,
  created_at      timestamptz NOT NULL
);
CREATE INDEX signup_flows__interaction_uid ON signup_flows (interaction_uid);
CREATE UNIQUE INDEX signup_flows__link_hash ON signup_flows (link_hash);
CREATE INDEX signup_flows__expires_at ON signup_flows (expires_at);
