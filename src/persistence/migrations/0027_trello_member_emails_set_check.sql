-- A Trello member's addresses keep pointing at a member, checked once per statement instead of
-- once per row (issue 14, "Data at scale"; docs/decisions/0065-trello-addresses-checked-per-statement.md).
--
-- The foreign key's check runs a query per inserted address and locks the member's row
-- (FOR KEY SHARE: a write to the member's tuple and a WAL record each), which was a quarter of
-- the legacy import's time on the server. The same rule, set-based: after each statement that
-- inserts addresses, one anti-join of the statement's rows against trello_members by primary key.
-- Members are never deleted (erasure updates them) and their id never changes; should either
-- happen, the same triggers below keep what the foreign key kept: a deleted member's addresses
-- go with it (ON DELETE CASCADE) and an id cannot change under its addresses.

ALTER TABLE trello_member_emails DROP CONSTRAINT trello_member_emails_member_id_fkey;

CREATE FUNCTION trello_member_emails_have_members() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF EXISTS (SELECT 1 FROM written w WHERE NOT EXISTS (SELECT 1 FROM trello_members m WHERE m.member_id = w.member_id)) THEN
    RAISE EXCEPTION 'an address of a Trello member that does not exist'
      USING ERRCODE = 'foreign_key_violation', TABLE = 'trello_member_emails', CONSTRAINT = 'trello_member_emails_member_id_fkey';
  END IF;
  RETURN NULL;
END;
$$;

-- Inserts, an upsert's inserted rows included. An update keeps the address's member (below), so
-- it needs no check: the foreign key skipped those too, and a re-import updates many addresses.
CREATE TRIGGER trello_member_emails__members_on_insert
AFTER INSERT ON trello_member_emails REFERENCING NEW TABLE AS written
FOR EACH STATEMENT EXECUTE FUNCTION trello_member_emails_have_members();

CREATE FUNCTION trello_members_take_addresses() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  DELETE FROM trello_member_emails e USING gone g WHERE e.member_id = g.member_id;
  RETURN NULL;
END;
$$;

CREATE TRIGGER trello_members__addresses_on_delete
AFTER DELETE ON trello_members REFERENCING OLD TABLE AS gone
FOR EACH STATEMENT EXECUTE FUNCTION trello_members_take_addresses();

CREATE FUNCTION trello_members_keep_id() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF NEW.member_id IS DISTINCT FROM OLD.member_id THEN
    RAISE EXCEPTION 'a Trello member''s id, and the member of an address, do not change'
      USING ERRCODE = 'foreign_key_violation', TABLE = TG_TABLE_NAME, CONSTRAINT = 'trello_member_emails_member_id_fkey';
  END IF;
  RETURN NEW;
END;
$$;

-- Each fires only for an UPDATE that names member_id in its SET list, which none of ours does:
-- neither a member's id nor an address's member ever changes.
CREATE TRIGGER trello_members__keep_id
BEFORE UPDATE OF member_id ON trello_members
FOR EACH ROW EXECUTE FUNCTION trello_members_keep_id();

CREATE TRIGGER trello_member_emails__keep_member
BEFORE UPDATE OF member_id ON trello_member_emails
FOR EACH ROW EXECUTE FUNCTION trello_members_keep_id();
