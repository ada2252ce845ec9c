-- Placeholder on branch wt-console only: 0016 may belong to another branch of issue 12, and the
-- runner refuses gaps (src/persistence/migrate.ts). Delete this file at merge.
SELECT 1;
