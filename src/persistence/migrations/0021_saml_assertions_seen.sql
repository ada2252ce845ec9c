-- SAML assertions already used (issue 13, decision 0036): each assertion id is accepted once per
-- connector (SAML 2.0 Profiles §4.1.4.5, one-time use of bearer assertions). A row lives as long
-- as its assertion could still be accepted — the earliest of its NotOnOrAfter times and its
-- maximum age, plus the allowed clock skew — and the sweeper deletes it afterwards.
--
-- Keyed by SHA-256 of the connector id and the assertion id: the id is chosen by the IdP (any
-- length), the hash keeps the key small and fixed. No foreign key to the connector: the rows
-- expire within minutes, and a connector's deletion must not wait on them.

CREATE TABLE saml_assertions_seen (
  id_hash      text PRIMARY KEY,
  connector_id text NOT NULL,
  expires_at   timestamptz NOT NULL,
  created_at   timestamptz NOT NULL
);
CREATE INDEX saml_assertions_seen__expires_at ON saml_assertions_seen (expires_at);
