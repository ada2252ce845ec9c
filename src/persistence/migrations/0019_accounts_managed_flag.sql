-- Whether an account has any manager (`account_managers`), kept on the account row by a trigger.
-- The decision point reads the managers with every login and every token use; most accounts have
-- none, and with this flag their read skips the managers subquery (docs/benchmarks.md: about a
-- quarter of the account read on the embedded engine). The trigger runs in the writer's
-- transaction, so the flag is never out of step with the table.
ALTER TABLE accounts ADD COLUMN managed boolean NOT NULL DEFAULT false;

UPDATE accounts SET managed = true WHERE id IN (SELECT account_id FROM account_managers);

CREATE FUNCTION accounts_managed_sync() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP IN ('INSERT', 'UPDATE') THEN
    UPDATE accounts SET managed = true WHERE id = NEW.account_id AND NOT managed;
  END IF;
  IF TG_OP IN ('DELETE', 'UPDATE') THEN
    UPDATE accounts SET managed = EXISTS (SELECT 1 FROM account_managers WHERE account_id = OLD.account_id)
     WHERE id = OLD.account_id;
  END IF;
  RETURN NULL;
END;
$$;

CREATE TRIGGER account_managers__managed_flag
AFTER INSERT OR UPDATE OF account_id OR DELETE ON account_managers
FOR EACH ROW EXECUTE FUNCTION accounts_managed_sync();
