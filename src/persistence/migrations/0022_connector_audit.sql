-- The organization audit trail names connectors and authentication policies as targets
-- (issue 13: an admin registering, editing, linking or testing a company identity provider, or
-- changing a policy, is recorded like any other admin action; decision 0029). Both new target
-- types in one migration, so the two branches of issue 13 need not each redefine the constraint.
ALTER TABLE organization_events DROP CONSTRAINT organization_events__target_type;
ALTER TABLE organization_events ADD CONSTRAINT organization_events__target_type
  CHECK (target_type IN ('organization', 'domain', 'invitation', 'account', 'connector', 'policy'));
