-- Authentication policies' upkeep (issue 13, docs/flows/organizations.md "Authentication
-- policies", docs/decisions/0038-authentication-policies.md).

-- The organization's audit trail names a policy (and a connector) as what an admin acted on.
-- Migration 0021 (the connectors' branch of issue 13) defines the same set; restated here, the
-- same, so this holds whichever of the two branches lands first.
ALTER TABLE organization_events DROP CONSTRAINT organization_events__target_type;
ALTER TABLE organization_events ADD CONSTRAINT organization_events__target_type
  CHECK (target_type IN ('organization', 'domain', 'invitation', 'account', 'policy', 'connector'));

-- An account an organization no longer manages (released, or erased: erasure forgets its
-- managers) keeps no assignment to that organization's policies: a row left behind would put the
-- account back under the old policy if the organization managed it again one day. Kept by a
-- trigger, in the writer's transaction, so every path that ends management — today's and later
-- ones — takes the assignment with it.
CREATE FUNCTION authentication_policy_members_release() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF OLD.kind = 'organization' AND (TG_OP = 'DELETE' OR NEW.organization_id IS DISTINCT FROM OLD.organization_id OR NEW.account_id <> OLD.account_id) THEN
    DELETE FROM authentication_policy_members pm
     USING authentication_policies p
     WHERE pm.account_id = OLD.account_id AND pm.policy_id = p.id AND p.organization_id = OLD.organization_id;
  END IF;
  RETURN NULL;
END;
$$;

CREATE TRIGGER account_managers__policy_members
AFTER UPDATE OR DELETE ON account_managers
FOR EACH ROW EXECUTE FUNCTION authentication_policy_members_release();
