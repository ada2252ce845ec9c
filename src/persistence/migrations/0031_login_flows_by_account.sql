-- Signing an account out everywhere ends its logins in progress too (decision 0085's review): a
-- login past its password but not yet at its second step must not finish after a reset or an
-- undone address change. Looked up by account, rarely; most flows have one.
CREATE INDEX login_flows__account_id ON login_flows (account_id) WHERE account_id IS NOT NULL;
