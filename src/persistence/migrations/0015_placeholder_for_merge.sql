-- Placeholder on branch wt-orgs only: the numbers 0015 and 0016 belong to other branches of
-- issue 11, and the runner refuses gaps (src/persistence/migrate.ts). Delete this file at merge.
SELECT 1;
