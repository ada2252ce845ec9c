-- Mail subjects no longer carry verification codes (they are kept after the body is erased and
-- were shown in the development mailbox's log). Rows written before that still hold one.
UPDATE mail_outbox SET subject = 'Your Lanyard verification code'
WHERE template IN ('verify-email', 'trello-verify-email');
