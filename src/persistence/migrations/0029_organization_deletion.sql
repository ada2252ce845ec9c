-- Deleting an organization (docs/decisions/0077-deleting-an-organization.md). What is only the
-- organization's own is deleted with it — domains, identity providers, policies, admins,
-- invitations — but its row stays, marked `deleted_at`, holding the audit trail, which is
-- append-only (decision 0029) and outlives the organization as it outlives any of its admins.
ALTER TABLE organizations ADD COLUMN deleted_at timestamptz;

-- Nothing new attaches to a deleted organization, whatever path writes it and however it races
-- the deletion — not even a record to its audit trail, whose last record is the deletion: the
-- locking read waits for a deletion in flight (which holds the row FOR UPDATE) and then reads the
-- row as that deletion left it. The error has a SQLSTATE of its own, LY404, which the HTTP layer
-- answers as the 404 every other request about the organization gets (src/http/error-handler.ts).
CREATE FUNCTION organization_must_be_live() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF NEW.organization_id IS NULL THEN
    RETURN NEW;
  END IF;
  PERFORM 1 FROM organizations WHERE id = NEW.organization_id AND deleted_at IS NULL FOR KEY SHARE;
  IF NOT FOUND THEN
    RAISE EXCEPTION 'organization % is deleted', NEW.organization_id USING ERRCODE = 'LY404';
  END IF;
  RETURN NEW;
END;
$$;

CREATE TRIGGER organization_members__live BEFORE INSERT ON organization_members
  FOR EACH ROW EXECUTE FUNCTION organization_must_be_live();
CREATE TRIGGER organization_invitations__live BEFORE INSERT ON organization_invitations
  FOR EACH ROW EXECUTE FUNCTION organization_must_be_live();
CREATE TRIGGER organization_domains__live BEFORE INSERT ON organization_domains
  FOR EACH ROW EXECUTE FUNCTION organization_must_be_live();
CREATE TRIGGER connectors__live BEFORE INSERT ON connectors
  FOR EACH ROW EXECUTE FUNCTION organization_must_be_live();
CREATE TRIGGER authentication_policies__live BEFORE INSERT ON authentication_policies
  FOR EACH ROW EXECUTE FUNCTION organization_must_be_live();
CREATE TRIGGER account_managers__live BEFORE INSERT OR UPDATE OF organization_id ON account_managers
  FOR EACH ROW EXECUTE FUNCTION organization_must_be_live();
CREATE TRIGGER organization_events__live BEFORE INSERT ON organization_events
  FOR EACH ROW EXECUTE FUNCTION organization_must_be_live();
