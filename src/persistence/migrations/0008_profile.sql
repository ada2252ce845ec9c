-- Profile fields beyond the OIDC standard claims, and who may see each field.

ALTER TABLE accounts ADD COLUMN job_title text;
ALTER TABLE accounts ADD COLUMN department text;
ALTER TABLE accounts ADD COLUMN organization_name text;
ALTER TABLE accounts ADD COLUMN location text;
-- field name → 'anyone' | 'organization' | 'private'; a missing field has its default visibility.
ALTER TABLE accounts ADD COLUMN profile_visibility jsonb NOT NULL DEFAULT '{}'::jsonb;
