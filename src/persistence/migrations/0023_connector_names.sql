-- A connector's name is how admins tell connectors apart (the connectors page, the policy form's
-- choice of connector): unique within its organization, whatever the case.
CREATE UNIQUE INDEX connectors__organization_name ON connectors (organization_id, lower(name));
