-- Mail bodies in a table of their own, deleted once the message has been accepted
-- (docs/decisions/0054-mail-outbox-without-growth.md). Erasing the body by UPDATE left a dead
-- copy of every message in mail_outbox (a 196,000-mail run: 630 MB, 561 MB of it dead); a row
-- deleted from a table that holds only the messages still waiting is space the next VACUUM hands
-- back to the next messages, so the table stays the size of the queue.

CREATE TABLE mail_outbox_bodies (
  mail_id     text PRIMARY KEY REFERENCES mail_outbox (id) ON DELETE CASCADE,
  -- Rendered text and HTML, sealed with SECRET_KEY (they can hold one-time links).
  body_sealed text NOT NULL
);

INSERT INTO mail_outbox_bodies (mail_id, body_sealed)
SELECT id, body_sealed FROM mail_outbox WHERE body_sealed IS NOT NULL;

ALTER TABLE mail_outbox DROP COLUMN body_sealed;

-- The retention sweep deletes sent messages' records, oldest first.
CREATE INDEX mail_outbox__sent ON mail_outbox (sent_at) WHERE status = 'sent';
