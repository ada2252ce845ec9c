-- No statistics for the protocol payloads (docs/decisions/0064-embedded-engine-autovacuum.md).
-- Nothing filters or joins on the payload column: lookups go by (model, id_hash), the session's
-- uid, the grant and the account. Its values are wide jsonb documents, and computing their
-- statistics was most of an ANALYZE of the table (12,000 rows: 214-350 ms, 85 ms without them).
-- A server's autovacuum does the same work in the background; the embedded engine does it on its
-- one connection, in front of every request.
ALTER TABLE oidc_payloads ALTER COLUMN payload SET STATISTICS 0;
