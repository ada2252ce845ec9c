-- Managed accounts (issue 12, docs/flows/organizations.md, docs/decisions/0030-management-as-a-relation.md).

-- Management is read from `account_managers` alone from now on: the Trello Enterprises the import
-- recorded on linked members move into it (the member rows keep their enterprise columns, which
-- the migration pages still read before a member is linked).
INSERT INTO account_managers (account_id, kind, enterprise_id, enterprise_name, trello_member_id, since)
SELECT linked_account_id, 'trello_enterprise', enterprise_id, enterprise_name, member_id, COALESCE(linked_at, updated_at)
FROM trello_members
WHERE linked_account_id IS NOT NULL AND enterprise_id IS NOT NULL
ON CONFLICT (account_id, kind) DO NOTHING;

-- The domain of an account's address: claiming on verification finds every account on a domain
-- (the claim preview and the claim), and an admin's list filters by it, without a scan.
CREATE INDEX accounts__email_domain ON accounts (lower(split_part(email, '@', -1)));
