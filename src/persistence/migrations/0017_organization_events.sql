-- The audit trail of organization admins' actions (issue 12, docs/flows/organizations.md,
-- decision 0029): who did what to which target, when, from where. Append-only: an UPDATE or a
-- DELETE is refused by the database. Kept apart from security_events, which is an account's own
-- trail (shown to its owner, erased with the account); this one belongs to the organization.

CREATE TABLE organization_events (
  id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  organization_id text NOT NULL REFERENCES organizations (id),
  occurred_at     timestamptz NOT NULL,
  -- The admin who acted; NULL for Lanyard itself (the domain re-check). The account row
  -- outlives erasure (anonymised), so the reference stays valid and shows the erased marker.
  actor_id        text REFERENCES accounts (id),
  -- organization.created, domain.added, domain.verified, domain.verification_failed,
  -- domain.removed, invitation.sent, invitation.revoked, invitation.accepted, admin.removed, admin.left
  action          text NOT NULL CONSTRAINT organization_events__action CHECK (action ~ '^[a-z_]+\.[a-z_]+$'),
  -- What it was done to: a domain (dom_…), an invitation (its id), an account (acc_…).
  target_type     text CONSTRAINT organization_events__target_type CHECK (target_type IN ('organization', 'domain', 'invitation', 'account')),
  target_id       text,
  -- The target as people read it when it happened: the domain name, the invited address.
  target_label    text CONSTRAINT organization_events__target_label CHECK (length(target_label) <= 320),
  detail          jsonb,
  ip              text,
  request_id      text
);
-- The organization's log, newest first, paged by id (keyset).
CREATE INDEX organization_events__organization_id ON organization_events (organization_id, id DESC);

CREATE FUNCTION organization_events_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION 'organization_events is append-only';
END
$$;
CREATE TRIGGER organization_events__append_only BEFORE UPDATE OR DELETE ON organization_events
  FOR EACH ROW EXECUTE FUNCTION organization_events_refuse_change();
