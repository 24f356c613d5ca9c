-- The team each user last worked in (signed in to or switched to): the
-- next sign-in lands there again. NULL until then, and again when that team
-- is deleted. PostgreSQL dialect.

ALTER TABLE users ADD COLUMN last_team_id TEXT REFERENCES teams (id) ON DELETE SET NULL;
