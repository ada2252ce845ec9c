-- Transactional outbox for email (docs/decisions/0009-mail-outbox.md): a message is written in the
-- same transaction as the change that causes it and delivered afterwards by the delivery worker.

CREATE TABLE mail_outbox (
  id              text PRIMARY KEY,
  recipient       text NOT NULL,
  template        text NOT NULL,
  subject         text NOT NULL,
  -- Rendered text and HTML, sealed with SECRET_KEY (they can hold one-time links);
  -- erased once the message has been accepted by the mail server.
  body_sealed     text,
  status          text NOT NULL DEFAULT 'pending'
                  CONSTRAINT mail_outbox__status CHECK (status IN ('pending', 'sending', 'sent', 'failed')),
  attempts        integer NOT NULL DEFAULT 0,
  next_attempt_at timestamptz NOT NULL,
  locked_until    timestamptz,
  last_error      text,
  sent_at         timestamptz,
  created_at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX mail_outbox__due ON mail_outbox (next_attempt_at) WHERE status IN ('pending', 'sending');
CREATE INDEX mail_outbox__failed ON mail_outbox (created_at) WHERE status = 'failed';
