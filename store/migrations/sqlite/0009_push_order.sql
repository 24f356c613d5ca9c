-- The commit a push's branch pointed at before it: with the pushed commit
-- (commit_id), the chain of before and after commits by which a queued
-- webhook deployment ends on the newest push whatever order the
-- deliveries arrive in. Empty for older rows and for other events.
-- SQLite dialect.

ALTER TABLE webhook_deliveries ADD COLUMN before_commit TEXT NOT NULL DEFAULT '';
