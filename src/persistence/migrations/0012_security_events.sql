-- The security audit trail (docs/flows/security-activity.md): append-only. Rows are inserted,
-- read, and deleted only when their account is erased; an UPDATE is refused by the database.

CREATE TABLE security_events (
  id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  occurred_at timestamptz NOT NULL,
  type        text NOT NULL,
  -- Why, for failures (wrong_password, unknown_account, throttled …).
  reason      text,
  account_id  text,
  client_id   text,
  ip          text,
  user_agent  text,
  request_id  text,
  detail      jsonb
);
CREATE INDEX security_events__account_id ON security_events (account_id, id DESC) WHERE account_id IS NOT NULL;

CREATE FUNCTION security_events_refuse_update() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION 'security_events is append-only';
END
$$;
CREATE TRIGGER security_events__append_only BEFORE UPDATE ON security_events
  FOR EACH ROW EXECUTE FUNCTION security_events_refuse_update();
