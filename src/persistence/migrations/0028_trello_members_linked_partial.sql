-- One index entry less for every member imported (issue 14, "Data at scale"): the uniqueness of
-- linked_account_id (one member per account, decision 0013) only concerns linked members, so
-- its index holds those only. As a table constraint it held an entry for every member, NULL
-- included — a write per imported member that no lookup ever reads.
ALTER TABLE trello_members DROP CONSTRAINT trello_members_linked_account_id_key;
CREATE UNIQUE INDEX trello_members__linked_account ON trello_members (linked_account_id) WHERE linked_account_id IS NOT NULL;
